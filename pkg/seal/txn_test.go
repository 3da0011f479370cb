package seal

import (
	"context"
	"reflect"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/policy"
)

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
	root := t.TempDir()
	st := NewState()
	st.Lock(nil, true)
	if err := st.Save(root); err != nil {
		t.Fatal(err)
	}
	if err := AddPending(root, []string{"p", "q"}); err != nil {
		t.Fatal(err)
	}
	s := &System{Root: root, Admindir: w.db.Admindir, FS: w.fs, DB: w.db, Policy: policy.Default(), State: st, Workers: 2}
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
