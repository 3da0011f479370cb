// Package seen keeps debseal's record of the sealed inodes it saw locked,
// and when: the evidence that tells a flag lifted behind debseal's back
// (the audit's "lifted" finding) from a file that was never locked.
//
// Every run that changes flags — lock, unlock, the relock after each dpkg
// run, a recovery — and every audit adds one batch: the inodes it saw
// locked (a sighting, dated no later than the moment it saw them: the
// run's start) and those it let go of on purpose (dated no earlier than
// the moment it did: the run's end). A batch costs what the run touched,
// never the whole system. The latest record of an inode wins. A full
// audit folds every batch it read into one of its own — what it saw
// locked, and the last sighting of each file it found unlocked — and
// removes the rest.
//
// What the records can prove is bounded by who can write them: root can
// delete or forge them (they are 0600 files under ROOT/var/lib/debseal,
// checksummed against corruption, not against root). Deleting a sighting,
// or forging a "gone" record after it, turns a lifted finding into
// not-locked; forging a sighting turns not-locked into lifted. Either way
// the unlocked file is still reported: the records only name the kind.
//
// The package owns the format and the files; what counts as locked, and
// which inodes to record, is the callers' (pkg/seal, pkg/audit, the CLI).
package seen

import (
	"bytes"
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/debseal/debseal/pkg/confined"
)

// Event says what a record stands for.
type Event uint8

// Events. Gone forgets the sightings before it; the others are sightings,
// named after the run that made them.
const (
	Gone   Event = iota // unlocked on purpose, or replaced: earlier sightings no longer count
	Lock                // debseal lock made it (or found it) immutable
	Relock              // the relock after a dpkg run, or a recovery
	Audit               // an audit found it immutable
	numEvents
)

var eventNames = [numEvents]string{"gone", "lock", "relock", "audit"}

func (e Event) String() string {
	if e < numEvents {
		return eventNames[e]
	}
	return fmt.Sprintf("Event(%d)", uint8(e))
}

// Record is one inode's event.
type Record struct {
	Dev, Ino uint64
	Time     int64 // Unix nanoseconds
	Event    Event
}

// Locked reports whether the record is a sighting of the inode locked.
func (r Record) Locked() bool { return r.Event != Gone }

// At is the record's time.
func (r Record) At() time.Time { return time.Unix(0, r.Time) }

// Dir is where the batches are kept under a root.
const Dir = confined.Own + "/seen"

const (
	magic   = "debseal-seen 1\n"
	recSize = 8 + 8 + 8 + 1 // dev ino time event
	suffix  = ".seen"
	// maxBatches is how many batches Write lets pile up before it merges
	// them into one: a system where no audit runs still keeps a bounded
	// directory, and the merge's cost is shared by that many runs.
	maxBatches = 64
)

// ErrCorrupt: a batch is damaged (it is skipped, and a full audit
// removes it).
var ErrCorrupt = errors.New("seen: batch corrupt")

var seq atomic.Uint64

// Write adds a batch with recs (nothing when recs is empty). The batch is
// written atomically but not durably: after a crash it may be missing,
// and the inodes it names are then reported as not-locked rather than
// lifted. When more than maxBatches have piled up, they are merged.
func Write(root string, recs []Record) error {
	if len(recs) == 0 {
		return nil
	}
	r, err := confined.Open(root)
	if err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	defer r.Close()
	if err := write(r, recs); err != nil {
		return err
	}
	names, err := batchNames(r)
	if err != nil || len(names) <= maxBatches {
		return err
	}
	l, errs := load(r, names)
	if err := write(r, l.recs); err != nil {
		return errors.Join(append(errs, err)...)
	}
	if err := r.RemoveFiles(Dir, l.names); err != nil {
		errs = append(errs, fmt.Errorf("seen: %w", err))
	}
	return errors.Join(errs...)
}

// write stores recs, one per inode (the latest), as a new batch.
func write(r *confined.Root, recs []Record) error {
	b := encode(latest(slices.Clone(recs)))
	if err := r.MkdirAll(Dir, 0o700); err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	name := fmt.Sprintf("%s/%016x-%d-%d%s", Dir, time.Now().UnixNano(), os.Getpid(), seq.Add(1), suffix)
	if err := r.ReplaceFile(name, b, 0o600); err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	return nil
}

// encode renders a batch: the magic line, the records, and the SHA-256 of
// everything before it.
func encode(recs []Record) []byte {
	b := make([]byte, 0, len(magic)+len(recs)*recSize+sha256.Size)
	b = append(b, magic...)
	le := binary.LittleEndian
	for _, rec := range recs {
		b = le.AppendUint64(b, rec.Dev)
		b = le.AppendUint64(b, rec.Ino)
		b = le.AppendUint64(b, uint64(rec.Time))
		b = append(b, byte(rec.Event))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// decode parses one batch.
func decode(b []byte, path string) ([]Record, error) {
	body, ok := bytes.CutPrefix(b, []byte(magic))
	if !ok || len(body) < sha256.Size || (len(body)-sha256.Size)%recSize != 0 {
		return nil, fmt.Errorf("%w: %s: bad header or size", ErrCorrupt, path)
	}
	if sum := sha256.Sum256(b[:len(b)-sha256.Size]); !bytes.Equal(sum[:], body[len(body)-sha256.Size:]) {
		return nil, fmt.Errorf("%w: %s: checksum mismatch", ErrCorrupt, path)
	}
	body = body[:len(body)-sha256.Size]
	le := binary.LittleEndian
	out := make([]Record, 0, len(body)/recSize)
	for ; len(body) > 0; body = body[recSize:] {
		rec := Record{Dev: le.Uint64(body), Ino: le.Uint64(body[8:]), Time: int64(le.Uint64(body[16:])), Event: Event(body[24])}
		if rec.Event >= numEvents {
			return nil, fmt.Errorf("%w: %s: unknown event %d", ErrCorrupt, path, rec.Event)
		}
		out = append(out, rec)
	}
	return out, nil
}

// latest sorts recs by inode and keeps each inode's latest record; at the
// same time, Gone wins (the conservative verdict: not-locked).
func latest(recs []Record) []Record {
	slices.SortFunc(recs, func(a, b Record) int {
		switch {
		case a.Dev != b.Dev:
			return cmp.Compare(a.Dev, b.Dev)
		case a.Ino != b.Ino:
			return cmp.Compare(a.Ino, b.Ino)
		case a.Time != b.Time:
			return cmp.Compare(a.Time, b.Time)
		}
		return -cmp.Compare(a.Event, b.Event) // Gone last among equals
	})
	out := recs[:0]
	for i, rec := range recs {
		if i+1 < len(recs) && recs[i+1].Dev == rec.Dev && recs[i+1].Ino == rec.Ino {
			continue
		}
		out = append(out, rec)
	}
	return out
}

// Log is what every batch says — the latest record of each inode — and
// what this run adds.
type Log struct {
	recs  []Record // sorted by (Dev, Ino), one per inode
	names []string // the batches they came from (file names in Dir)
	mu    sync.Mutex
	fresh []Record
}

// Load reads every batch of a root. A damaged batch is skipped and
// reported among the errors (the rest still count); a missing directory
// is an empty log.
func Load(root string) (*Log, []error) {
	r, err := confined.Open(root)
	if err != nil {
		return &Log{}, []error{fmt.Errorf("seen: %w", err)}
	}
	defer r.Close()
	names, err := batchNames(r)
	if err != nil {
		return &Log{}, []error{err}
	}
	return load(r, names)
}

func batchNames(r *confined.Root) ([]string, error) {
	ents, err := r.ReadDir(Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seen: %w", err)
	}
	var names []string
	for _, e := range ents {
		if strings.HasSuffix(e.Name, suffix) && e.Info.IsRegular() {
			names = append(names, e.Name)
		}
	}
	return names, nil
}

func load(r *confined.Root, names []string) (*Log, []error) {
	l := &Log{names: names}
	var errs []error
	for _, n := range names {
		p := Dir + "/" + n
		b, err := r.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue // merged or folded meanwhile: its records are in a newer batch
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("seen: %w", err))
			continue
		}
		recs, err := decode(b, r.Join(p))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		l.recs = append(l.recs, recs...)
	}
	l.recs = latest(l.recs)
	return l, errs
}

// Len is the number of inodes the log knows.
func (l *Log) Len() int {
	if l == nil {
		return 0
	}
	return len(l.recs)
}

// Lookup returns an inode's latest record.
func (l *Log) Lookup(dev, ino uint64) (Record, bool) {
	if l == nil {
		return Record{}, false
	}
	i, ok := slices.BinarySearchFunc(l.recs, [2]uint64{dev, ino}, func(r Record, k [2]uint64) int {
		if r.Dev != k[0] {
			return cmp.Compare(r.Dev, k[0])
		}
		return cmp.Compare(r.Ino, k[1])
	})
	if !ok {
		return Record{}, false
	}
	return l.recs[i], true
}

// Add records what this run saw, for Save. Safe for concurrent use.
func (l *Log) Add(recs ...Record) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.fresh = append(l.fresh, recs...)
	l.mu.Unlock()
}

// Save writes what this run added as a batch. With fold (a full audit,
// which added a record for every inode whose record still matters), the
// batches Load read are removed afterwards: the new batch replaces them.
// Batches written by others meanwhile are kept.
func (l *Log) Save(root string, fold bool) error {
	r, err := confined.Open(root)
	if err != nil {
		return fmt.Errorf("seen: %w", err)
	}
	defer r.Close()
	if len(l.fresh) > 0 {
		if err := write(r, l.fresh); err != nil {
			return err
		}
	}
	if fold && len(l.names) > 0 {
		if err := r.RemoveFiles(Dir, l.names); err != nil {
			return fmt.Errorf("seen: %w", err)
		}
	}
	return nil
}
