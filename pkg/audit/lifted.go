package audit

import (
	"fmt"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/seen"
)

// Transaction is what one dpkg run's journal (pkg/seal) says it unlocked:
// what explains a sealed file the audit finds mutable.
type Transaction struct {
	// Live: its process still runs, so dpkg is at work. A transaction
	// whose process is gone was interrupted; recovery relocks what it
	// unlocked.
	Live bool
	// All: it unlocked every sealed file.
	All bool
	// Packages are the names of the packages it unlocked or installs:
	// dpkg writes their new files, unlocked until the run's end.
	Packages map[string]bool
	// Inodes are the inodes it unlocked.
	Inodes map[fsattr.Ident]bool
}

// lockVerdict is what the lock table's verdicts need beyond the flags.
type lockVerdict struct {
	seen  *seen.Log     // the sightings before this audit; this audit's are added to it
	txns  []Transaction // the journals
	start time.Time     // when the audit began: the date of its own sightings
	now   time.Time     // when it found a file mutable (after every look)
}

// named reports whether a journal names the inode (debseal unlocked it).
func (v *lockVerdict) named(id fsattr.Ident) bool {
	for _, t := range v.txns {
		if t.Inodes[id] {
			return true
		}
	}
	return false
}

// unlocked decides what a sealed inode found mutable is:
//
//   - unlocked by a live transaction (its journal names the inode):
//     dpkg is at work, no finding;
//   - unlocked by an interrupted transaction: not-locked (debseal unlocked
//     it, recovery relocks it; not evidence of anyone else);
//   - seen locked since the last time debseal let it go (pkg/seen): lifted,
//     with the window;
//   - a file of a package a live transaction installs or changes, never
//     seen locked: dpkg wrote it and has not finished, no finding;
//   - anything else: not-locked (never locked, or let go on purpose and
//     not locked again).
//
// A lift is caught even during a dpkg run: a file seen locked that no
// journal names was not unlocked by debseal. The sighting of an inode a
// journal names, or a lifted one, is kept for the next audit (the record
// of a lift persists until the file is locked again or let go).
func (v *lockVerdict) unlocked(id fsattr.Ident, pkg string, base Finding) (Finding, bool) {
	rec, seenOK := v.seen.Lookup(id.Dev, id.Ino)
	seenOK = seenOK && rec.Locked()
	named, live, pkgLive := false, false, false
	name, _, _ := strings.Cut(pkg, ":")
	for _, t := range v.txns {
		if t.Inodes[id] {
			named = true
			live = live || t.Live
		}
		if t.Live && (t.All || t.Packages[name]) {
			pkgLive = true
		}
	}
	if seenOK {
		v.seen.Add(rec) // keep the evidence for the next audit
	}
	f := base
	f.Kind, f.Expected, f.Actual = NotLocked, "immutable", "mutable"
	switch {
	case named && live:
		return f, false
	case named:
		return f, true
	case seenOK:
		f.Kind = Lifted
		f.SeenLocked = rec.At().Truncate(time.Second).UTC()
		f.SeenBy = rec.Event.String()
		f.FoundUnlocked = ceilSecond(v.now).UTC()
		f.Expected = fmt.Sprintf("immutable (seen locked by %s at %s)", f.SeenBy, f.SeenLocked.Format(time.RFC3339))
		f.Actual = fmt.Sprintf("mutable at %s", f.FoundUnlocked.Format(time.RFC3339))
		return f, true
	case pkgLive:
		return f, false
	}
	return f, true
}

// locked records a sealed inode found immutable.
func (v *lockVerdict) locked(id fsattr.Ident) {
	v.seen.Add(seen.Record{Dev: id.Dev, Ino: id.Ino, Time: v.start.UnixNano(), Event: seen.Audit})
}

func ceilSecond(t time.Time) time.Time {
	if r := t.Truncate(time.Second); !r.Equal(t) {
		return r.Add(time.Second)
	}
	return t
}
