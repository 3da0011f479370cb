package seal

import (
	"context"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/seen"
)

// sealedSystem is a System over the world with everything sealed, its
// state in a fresh root.
func (w *world) sealedSystem(t *testing.T) *System {
	t.Helper()
	root := t.TempDir()
	st := newState()
	st.Lock(nil, true)
	if err := st.Save(root); err != nil {
		t.Fatal(err)
	}
	return &System{Root: root, Admindir: w.db.Admindir, FS: w.fs, DB: w.db, Policy: policy.Default(), State: st, Workers: 2}
}

// A relock that fails must not be forgotten: End removes the journal and
// moves the sync stamp, so the package has to stay pending until a later
// End locks it.
func TestEndKeepsFailedRelocksPending(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b"}},
		{name: "q", files: []string{"/usr", "/usr/bin", "/usr/bin/q"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/a", "a")
		f.file("/usr/bin/b", "b")
		f.file("/usr/bin/q", "q")
	}, nil)
	s := w.sealedSystem(t)
	root := s.Root
	if err := AddPending(root, []string{"p", "q"}); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	w.fs.fail["/usr/bin/b"] = syscall.EIO
	rep, err := s.End(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 1 {
		t.Errorf("End with a failing relock: errors %v, want one", rep.Errors)
	}
	if got, _ := Pending(root); !reflect.DeepEqual(got, []string{"p"}) {
		t.Errorf("Pending after a failed relock = %v, want [p]", got)
	}
	if w.fs.nodes["/usr/bin/a"].flags&0x10 == 0 || w.fs.nodes["/usr/bin/q"].flags&0x10 == 0 {
		t.Error("the files that could be locked were not")
	}

	delete(w.fs.fail, "/usr/bin/b")
	rep, err = s.End(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Errors) != 0 || w.fs.nodes["/usr/bin/b"].flags&0x10 == 0 {
		t.Errorf("the next End did not lock the file: errors %v", rep.Errors)
	}
	if got, _ := Pending(root); len(got) != 0 {
		t.Errorf("Pending after the retry = %v, want none", got)
	}
}

// A second Begin by the same owner (a long-lived front-end whose previous
// transaction never ran its Post-Invoke) must keep what the first one
// unlocked on record, and End must relock both.
func TestBeginMergesJournalOfSameOwner(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/p"}},
		{name: "q", files: []string{"/usr", "/usr/bin", "/usr/bin/q"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/p", "p").flags = 0x10
		f.file("/usr/bin/q", "q").flags = 0x10
	}, nil)
	s := w.sealedSystem(t)
	root := s.Root
	ctx := context.Background()
	owner := Process{Pid: 4242, StartTime: 7, Via: "apt-hook"}
	for _, pkg := range []string{"p", "q"} {
		if _, err := s.Begin(ctx, Request{Remove: []string{pkg}}, owner); err != nil {
			t.Fatalf("Begin(remove %s): %v", pkg, err)
		}
	}
	j, err := findJournal(root, owner)
	if err != nil || j == nil {
		t.Fatalf("FindJournal = %v, %v", j, err)
	}
	var paths []string
	for _, e := range j.Unlocked {
		paths = append(paths, e.Path)
	}
	if len(paths) != 2 {
		t.Fatalf("journal after two Begins records %v, want both /usr/bin/p and /usr/bin/q", paths)
	}
	if _, err := s.End(ctx, j); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"/usr/bin/p", "/usr/bin/q"} {
		if w.fs.nodes[p].flags&0x10 == 0 {
			t.Errorf("%s not relocked by End", p)
		}
	}
}

// dpkg removes an installed package that a new archive conflicts with and
// replaces. If one of its files survives (an immutable flag makes the
// unlink fail with only a warning), End must report it as an orphan like
// any removal's leftover.
func TestEndReportsOrphansOfConflictingPackages(t *testing.T) {
	pkgs := []fakePkg{
		{name: "old", files: []string{"/usr", "/usr/bin", "/usr/bin/tool", "/usr/bin/old-only"}},
	}
	w := newWorld(t, pkgs, "", func(f *fakeFS) {
		f.file("/usr/bin/tool", "old tool").flags = 0x10
		f.file("/usr/bin/old-only", "left behind").flags = 0x10
	}, nil)
	s := w.sealedSystem(t)
	s.ReadDeb = func(p string) (*DebInfo, error) {
		return &DebInfo{Path: p, Package: "new", Version: "1", Arch: "all", Conflicts: "old", Replaces: "old",
			Paths: []string{"/usr/bin/tool"}}, nil
	}
	ctx := context.Background()
	rep, err := s.Begin(ctx, Request{Debs: []string{"/tmp/new_1_all.deb"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"})
	if err != nil {
		t.Fatal(err)
	}
	// dpkg's run: "new" takes /usr/bin/tool over, "old" is removed, but
	// its other file is still on disk.
	if err := writeAdmindir(w.db.Admindir, []fakePkg{
		{name: "new", files: []string{"/usr", "/usr/bin", "/usr/bin/tool"}},
	}, ""); err != nil {
		t.Fatal(err)
	}
	end, err := s.End(ctx, rep.Journal)
	if err != nil {
		t.Fatal(err)
	}
	var orphans []string
	for _, o := range end.Orphans {
		orphans = append(orphans, o.Pkg+":"+o.Path)
	}
	if !reflect.DeepEqual(orphans, []string{"old:/usr/bin/old-only"}) {
		t.Errorf("End orphans = %v, want [old:/usr/bin/old-only]", orphans)
	}
}

// End records, for the audit, what it left locked and what the
// transaction let go (pkg/seen): a file dpkg replaced, and one that could
// not be relocked, lose their sightings; a file outside the run gets none.
func TestEndRecordsWhatItSawLocked(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b", "/usr/bin/c"}},
		{name: "q", files: []string{"/usr", "/usr/bin", "/usr/bin/q"}},
	}, "", func(f *fakeFS) {
		for _, p := range []string{"/usr/bin/a", "/usr/bin/b", "/usr/bin/c", "/usr/bin/q"} {
			f.file(p, p).flags = 0x10
		}
	}, nil)
	s := w.sealedSystem(t)
	ctx := context.Background()
	id := func(p string) fsattr.Ident { return w.fs.nodes[p].info.Ident }
	oldA, b, c, q := id("/usr/bin/a"), id("/usr/bin/b"), id("/usr/bin/c"), id("/usr/bin/q")
	rep, err := s.Begin(ctx, Request{Remove: []string{"p"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"})
	if err != nil || rep.Unlocked != 3 {
		t.Fatalf("Begin: %v, unlocked %d of p's 3 files", err, rep.Unlocked)
	}
	// dpkg's run: a replaced by a new inode; b cannot be locked again.
	w.fs.file("/usr/bin/a", "/usr/bin/a")
	newA := id("/usr/bin/a")
	w.fs.fail["/usr/bin/b"] = syscall.EIO
	before := time.Now()
	end, err := s.End(ctx, rep.Journal)
	if err != nil || len(end.Errors) != 1 {
		t.Fatalf("End: %v, errors %v (want the one of b)", err, end.Errors)
	}
	l, errs := seen.Load(s.Root)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	tests := []struct {
		name string
		id   fsattr.Ident
		want seen.Event
		ok   bool
	}{
		{"a as dpkg left it", newA, seen.Relock, true},
		{"a as it was", oldA, seen.Gone, true},
		{"b, not relocked", b, seen.Gone, true},
		{"c, relocked", c, seen.Relock, true},
		{"q, outside the run", q, 0, false},
	}
	for _, tt := range tests {
		r, ok := l.Lookup(tt.id.Dev, tt.id.Ino)
		if ok != tt.ok || ok && r.Event != tt.want {
			t.Errorf("%s: record %+v, %v; want %v, %v", tt.name, r, ok, tt.want, tt.ok)
		}
		if ok && r.Locked() && r.Time < before.UnixNano() {
			t.Errorf("%s: seen at %v, before End started (%v)", tt.name, r.At(), before)
		}
	}
}
