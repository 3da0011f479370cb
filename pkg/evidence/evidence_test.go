package evidence

import (
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/confined"
)

func opener(content string) func() (io.ReadCloser, error) {
	return func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader(content)), nil }
}

func fileEvent(path, content string) Event {
	return Event{Package: "coreutils", Path: path, Type: "file", Size: int64(len(content)),
		ExpectedMD5: "00112233445566778899aabbccddeeff", ActualMD5: "ffeeddccbbaa99887766554433221100"}
}

// Keep copies what fits the bounds and says why for what does not; the
// copy is what the reader gave, mode 0600 in a 0700 directory.
func TestKeepBounds(t *testing.T) {
	tests := []struct {
		name            string
		maxFile, maxTot int64
		already         int64 // bytes of copies kept before
		ev              Event
		content         string
		open            bool
		wantCopy        bool
		wantWhy         string
	}{
		{name: "fits", maxFile: 100, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "tampered\n"), content: "tampered\n", open: true, wantCopy: true},
		{name: "exactly the file bound", maxFile: 9, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "tampered\n"), content: "tampered\n", open: true, wantCopy: true},
		{name: "over the file bound", maxFile: 8, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "tampered\n"), content: "tampered\n", open: true, wantWhy: "more than evidence-max-file (8)"},
		{name: "over the total", maxFile: 100, maxTot: 20, already: 15, ev: fileEvent("/usr/bin/ls", "tampered\n"), content: "tampered\n", open: true, wantWhy: "the copies kept take 15 of evidence-max-total (20)"},
		{name: "copies off", maxFile: 0, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "x"), content: "x", open: true, wantWhy: "evidence-max-file is 0"},
		{name: "grew after the check", maxFile: 10, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "small"), content: "much bigger now", open: true, wantWhy: "copy failed"},
		{name: "a symlink", maxFile: 100, maxTot: 1000, ev: Event{Package: "p", Path: "/usr/bin/x", Type: "symlink", Link: "/etc/shadow"}, wantWhy: "not a regular file"},
		{name: "a FIFO", maxFile: 100, maxTot: 1000, ev: Event{Package: "p", Path: "/usr/bin/x", Type: "fifo"}, open: true, wantWhy: "not a regular file"},
		{name: "unreadable", maxFile: 100, maxTot: 1000, ev: fileEvent("/usr/bin/ls", "x"), wantWhy: "cannot open it: EIO"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if tt.already > 0 {
				if err := os.MkdirAll(filepath.Join(root, Dir), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, Dir, "old.copy"), make([]byte, tt.already), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			s := &Store{Root: root, MaxFile: tt.maxFile, MaxTotal: tt.maxTot}
			open := opener(tt.content)
			if !tt.open {
				open = func() (io.ReadCloser, error) { return nil, errors.New("EIO") }
				if tt.ev.Type != "file" {
					open = nil
				}
			}
			ev, isNew, err := s.Keep(tt.ev, open)
			if err != nil || !isNew {
				t.Fatalf("Keep() = %v, new %v", err, isNew)
			}
			evs, errs := List(root)
			if len(errs) > 0 || len(evs) != 1 || evs[0].ID != ev.ID || evs[0].Path != tt.ev.Path {
				t.Fatalf("List() = %+v, %v; want the event kept", evs, errs)
			}
			if tt.wantCopy {
				b, err := os.ReadFile(filepath.Join(root, Dir, ev.Copy))
				if err != nil || string(b) != tt.content || ev.NoCopy != "" || len(ev.CopySHA256) != 64 {
					t.Errorf("copy %q = %q, %v (no copy: %q)", ev.Copy, b, err, ev.NoCopy)
				}
				if fi, _ := os.Stat(filepath.Join(root, Dir, ev.Copy)); fi.Mode().Perm() != 0o600 {
					t.Errorf("copy mode %v, want 0600", fi.Mode())
				}
			} else if ev.Copy != "" || !strings.Contains(ev.NoCopy, tt.wantWhy) {
				t.Errorf("copy %q, no copy %q; want none because %q", ev.Copy, ev.NoCopy, tt.wantWhy)
			}
			if fi, _ := os.Stat(filepath.Join(root, Dir)); fi.Mode().Perm() != 0o700 {
				t.Errorf("directory mode %v, want 0700", fi.Mode())
			}
			copies, _ := filepath.Glob(filepath.Join(root, Dir, "*.copy"))
			want := map[bool]int{false: 0, true: 1}[tt.wantCopy] + map[bool]int{false: 0, true: 1}[tt.already > 0]
			if len(copies) != want {
				t.Errorf("copies %v, want %d (nothing half-written left)", copies, want)
			}
		})
	}
}

// The same finding met again (a refused upgrade, retried) is recorded
// once; another content of the same file is a new event.
func TestKeepOnce(t *testing.T) {
	root := t.TempDir()
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s := &Store{Root: root, MaxFile: 100, MaxTotal: 1000, Now: func() time.Time { now = now.Add(time.Second); return now }}
	a, isNew, err := s.Keep(fileEvent("/usr/bin/ls", "one"), opener("one"))
	if err != nil || !isNew {
		t.Fatal(err, isNew)
	}
	again, isNew, err := s.Keep(fileEvent("/usr/bin/ls", "one"), opener("one"))
	if err != nil || isNew || again.ID != a.ID {
		t.Errorf("Keep(the same) = %s, new %v, %v; want %s, not new", again.ID, isNew, err, a.ID)
	}
	other := fileEvent("/usr/bin/ls", "two!")
	other.ActualMD5 = "0123456789abcdef0123456789abcdef"
	b, isNew, err := s.Keep(other, opener("two!"))
	if err != nil || !isNew || b.ID == a.ID {
		t.Errorf("Keep(another content) = %s, new %v, %v", b.ID, isNew, err)
	}
	evs, _ := List(root)
	if len(evs) != 2 || evs[0].ID != a.ID || evs[1].ID != b.ID {
		t.Errorf("List() = %v, want %s then %s", evs, a.ID, b.ID)
	}
}

// A symlink planted where the evidence directory is: Keep fails, naming
// it, and writes nothing where it points.
func TestKeepRefusesSymlinkedDir(t *testing.T) {
	top := t.TempDir()
	root, decoy := filepath.Join(top, "root"), filepath.Join(top, "decoy")
	os.MkdirAll(filepath.Join(root, confined.Own), 0o755)
	os.MkdirAll(decoy, 0o755)
	if err := os.Symlink(decoy, filepath.Join(root, Dir)); err != nil {
		t.Fatal(err)
	}
	s := &Store{Root: root, MaxFile: 100, MaxTotal: 1000}
	_, _, err := s.Keep(fileEvent("/usr/bin/ls", "x"), opener("x"))
	if !errors.Is(err, confined.ErrSymlink) {
		t.Errorf("Keep() through a symlinked directory = %v, want ErrSymlink", err)
	}
	if ents, _ := os.ReadDir(decoy); len(ents) != 0 {
		t.Errorf("written through the symlink: %v", ents)
	}
	if _, errs := List(root); len(errs) == 0 || !errors.Is(errs[0], confined.ErrSymlink) {
		t.Errorf("List() = %v, want ErrSymlink", errs)
	}
}

func TestClear(t *testing.T) {
	root := t.TempDir()
	s := &Store{Root: root, MaxFile: 100, MaxTotal: 1000}
	a, _, _ := s.Keep(fileEvent("/usr/bin/a", "a"), opener("a"))
	b, _, _ := s.Keep(fileEvent("/usr/bin/b", "b"), opener("b"))
	if a.Copy == "" || b.Copy == "" {
		t.Fatal("no copies")
	}
	if _, err := Clear(root, []string{"nope"}); !errors.Is(err, ErrUnknown) {
		t.Errorf("Clear(unknown) = %v, want ErrUnknown", err)
	}
	if _, err := Clear(root, []string{"../x"}); !errors.Is(err, ErrUnknown) {
		t.Errorf("Clear(../x) = %v, want ErrUnknown", err)
	}
	removed, err := Clear(root, []string{a.ID})
	if err != nil || len(removed) != 1 || removed[0] != a.ID {
		t.Fatalf("Clear(a) = %v, %v", removed, err)
	}
	if _, err := os.Stat(filepath.Join(root, Dir, a.Copy)); !os.IsNotExist(err) {
		t.Errorf("a's copy is still there: %v", err)
	}
	if evs, _ := List(root); len(evs) != 1 || evs[0].ID != b.ID {
		t.Errorf("after Clear(a): %v", evs)
	}
	os.WriteFile(filepath.Join(root, Dir, "orphan.copy"), []byte("x"), 0o600)
	os.WriteFile(filepath.Join(root, Dir, "bad.json"), []byte("{"), 0o600)
	if _, errs := List(root); len(errs) != 1 || !strings.Contains(errs[0].Error(), "bad.json is corrupt") {
		t.Errorf("List() errors = %v, want bad.json named", errs)
	}
	if _, err := Clear(root, nil); err != nil {
		t.Fatal(err)
	}
	if ents, _ := os.ReadDir(filepath.Join(root, Dir)); len(ents) != 0 {
		t.Errorf("Clear(all) left %v", ents)
	}
	if removed, err := Clear(t.TempDir(), nil); err != nil || len(removed) != 0 {
		t.Errorf("Clear() without a directory = %v, %v", removed, err)
	}
}
