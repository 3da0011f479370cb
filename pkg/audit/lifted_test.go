package audit

import (
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/seen"
)

// TestUnlockedVerdicts: what a sealed inode found mutable is, given what
// debseal saw of it before (pkg/seen) and the journals of dpkg runs.
func TestUnlockedVerdicts(t *testing.T) {
	id := fsattr.Ident{Dev: 1, Ino: 2}
	other := fsattr.Ident{Dev: 1, Ino: 3}
	t1 := time.Date(2026, 3, 1, 10, 0, 0, 700_000_000, time.UTC) // the relock that saw it locked
	now := time.Date(2026, 3, 2, 9, 30, 0, 100_000_000, time.UTC)
	sighting := []seen.Record{{Dev: 1, Ino: 2, Time: t1.UnixNano(), Event: seen.Relock}}
	letGo := append(sighting, seen.Record{Dev: 1, Ino: 2, Time: t1.Add(time.Hour).UnixNano(), Event: seen.Gone})
	txn := func(live, all bool, pkgs []string, inodes ...fsattr.Ident) Transaction {
		t := Transaction{Live: live, All: all, Packages: map[string]bool{}, Inodes: map[fsattr.Ident]bool{}}
		for _, p := range pkgs {
			t.Packages[p] = true
		}
		for _, i := range inodes {
			t.Inodes[i] = true
		}
		return t
	}
	tests := []struct {
		name string
		recs []seen.Record
		txns []Transaction
		want string // kind, "" for no finding
		keep bool   // the sighting stays on record for the next audit
	}{
		{"never seen locked", nil, nil, "not-locked", false},
		{"seen locked", sighting, nil, "lifted", true},
		{"seen locked, then let go", letGo, nil, "not-locked", false},
		{"seen, then unlocked by a running dpkg", sighting, []Transaction{txn(true, false, []string{"p"}, id)}, "", true},
		{"seen, then unlocked by an interrupted dpkg", sighting, []Transaction{txn(false, false, []string{"p"}, id)}, "not-locked", true},
		{"seen, unlocked by both", sighting, []Transaction{txn(false, false, nil, id), txn(true, false, nil, id)}, "", true},
		{"a new file of a package dpkg is changing", nil, []Transaction{txn(true, false, []string{"p"}, other)}, "", false},
		{"the same after an interrupted run", nil, []Transaction{txn(false, false, []string{"p"}, other)}, "not-locked", false},
		{"a running dpkg that unlocked everything", nil, []Transaction{txn(true, true, nil, other)}, "", false},
		{"lifted before a running dpkg that did not unlock it", sighting, []Transaction{txn(true, false, []string{"p"}, other)}, "lifted", true},
		{"lifted, another package's dpkg run", sighting, []Transaction{txn(true, false, []string{"q"}, other)}, "lifted", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := seen.Write(root, tt.recs); err != nil {
				t.Fatal(err)
			}
			log, errs := seen.Load(root)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			v := &lockVerdict{seen: log, txns: tt.txns, start: now.Add(-time.Minute), now: now}
			base := Finding{Package: "p:amd64", Path: "/usr/bin/x", Real: "/usr/bin/x", Source: "policy"}
			f, ok := v.unlocked(id, "p:amd64", base)
			got := ""
			if ok {
				got = f.Kind.String()
			}
			if got != tt.want {
				t.Fatalf("verdict = %q (%+v), want %q", got, f, tt.want)
			}
			if tt.want == "lifted" {
				wantSeen, wantFound := time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 9, 30, 1, 0, time.UTC)
				if !f.SeenLocked.Equal(wantSeen) || !f.FoundUnlocked.Equal(wantFound) || f.SeenBy != "relock" {
					t.Errorf("window = seen by %s at %v, found at %v; want relock, %v, %v", f.SeenBy, f.SeenLocked, f.FoundUnlocked, wantSeen, wantFound)
				}
				want := "lifted /usr/bin/x [p:amd64]: expected immutable (seen locked by relock at 2026-03-01T10:00:00Z), found mutable at 2026-03-02T09:30:01Z (policy)"
				if f.String() != want {
					t.Errorf("String() = %q\nwant       %q", f.String(), want)
				}
			}
			// What a full audit keeps for the next one.
			if err := log.Save(root, true); err != nil {
				t.Fatal(err)
			}
			next, _ := seen.Load(root)
			r, kept := next.Lookup(id.Dev, id.Ino)
			if kept != tt.keep || kept && r != sighting[0] {
				t.Errorf("after the audit's fold: %+v, %v; want the sighting kept = %v", r, kept, tt.keep)
			}
		})
	}
}

// An audit records every sealed inode it finds locked, dated at its
// start.
func TestLockedIsASighting(t *testing.T) {
	root := t.TempDir()
	log, _ := seen.Load(root)
	start := time.Unix(1000, 5)
	v := &lockVerdict{seen: log, start: start, now: start.Add(time.Second)}
	v.locked(fsattr.Ident{Dev: 1, Ino: 2})
	if err := log.Save(root, true); err != nil {
		t.Fatal(err)
	}
	next, _ := seen.Load(root)
	if r, ok := next.Lookup(1, 2); !ok || r != (seen.Record{Dev: 1, Ino: 2, Time: start.UnixNano(), Event: seen.Audit}) {
		t.Errorf("record = %+v, %v; want an audit sighting at %v", r, ok, start)
	}
	// Without a log (nothing recorded yet, or no state): no panic, no record.
	(&lockVerdict{}).locked(fsattr.Ident{Dev: 1, Ino: 2})
	if _, ok := (&lockVerdict{}).unlocked(fsattr.Ident{Dev: 1, Ino: 2}, "p", Finding{}); !ok {
		t.Error("without a log, a mutable sealed file must still be a finding")
	}
}
