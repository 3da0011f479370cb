package confined

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

func sameSnapshot(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// every operation on debseal's own files, for a path under dir
var ops = []struct {
	name string
	do   func(r *Root, dir string) error
}{
	{"ReadFile", func(r *Root, dir string) error { _, err := r.ReadFile(dir + "/f"); return err }},
	{"ReadFileIn", func(r *Root, dir string) error {
		d, err := r.OpenDir(dir)
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = r.ReadFileIn(d, "f", 0)
		return err
	}},
	{"WriteFileAtomic", func(r *Root, dir string) error { return r.WriteFileAtomic(dir+"/f", []byte("new\n"), 0o644) }},
	{"ReplaceFile", func(r *Root, dir string) error { return r.ReplaceFile(dir+"/f", []byte("new\n"), 0o644) }},
	{"WriteFrom", func(r *Root, dir string) error {
		_, err := r.WriteFrom(dir+"/f", strings.NewReader("new\n"), 100, 0o600)
		return err
	}},
	{"WriteFiles", func(r *Root, dir string) error {
		return errors.Join(r.WriteFiles(dir, []FileData{{"f", []byte("new\n")}, {"g", []byte("new\n")}}, 0o644)...)
	}},
	{"Append", func(r *Root, dir string) error { return r.Append(dir+"/f", []byte("line\n"), 0o640) }},
	{"OpenLock", func(r *Root, dir string) error {
		f, err := r.OpenLock(dir+"/f", 0o600)
		if err == nil {
			f.Close()
		}
		return err
	}},
	{"Remove", func(r *Root, dir string) error { return r.Remove(dir + "/f") }},
	{"RemoveFiles", func(r *Root, dir string) error { return r.RemoveFiles(dir, []string{"f", "gone"}) }},
	{"ReadDir", func(r *Root, dir string) error { _, err := r.ReadDir(dir); return err }},
	{"MkdirAll", func(r *Root, dir string) error { return r.MkdirAll(dir+"/sub", 0o700) }},
	{"Chmod", func(r *Root, dir string) error { return r.Chmod(dir+"/f", 0o600) }},
	{"Chtimes", func(r *Root, dir string) error { return r.Chtimes(dir+"/f", time.Unix(1, 0), time.Unix(1, 0)) }},
	{"Lstat", func(r *Root, dir string) error { _, err := r.Lstat(dir + "/f"); return err }},
}

// A symlink where debseal's own directory is (absolute, or climbing out
// with ../..) is an error naming it, and the directory it points to is
// never read, written, chmod'ed or created in.
func TestOwnDirectorySymlinkIsRefused(t *testing.T) {
	for _, own := range []string{Own, Own + "/journal", Own + "/manifests"} {
		for _, kind := range []string{"absolute", "relative"} {
			for _, op := range ops {
				t.Run(own+"/"+kind+"/"+op.name, func(t *testing.T) {
					top := t.TempDir()
					root, decoy := filepath.Join(top, "root"), filepath.Join(top, "decoy")
					os.MkdirAll(filepath.Dir(filepath.Join(root, own)), 0o755)
					os.MkdirAll(decoy, 0o755)
					os.WriteFile(filepath.Join(decoy, "f"), []byte("host\n"), 0o644)
					target := decoy
					if kind == "relative" {
						rel, err := filepath.Rel(filepath.Dir(filepath.Join(root, own)), decoy)
						if err != nil {
							t.Fatal(err)
						}
						target = rel
					}
					link := filepath.Join(root, own)
					if err := os.Symlink(target, link); err != nil {
						t.Fatal(err)
					}
					before := testutil.TreeState(t, decoy)
					r, err := Open(root)
					if err != nil {
						t.Fatal(err)
					}
					defer r.Close()
					err = op.do(r, "/"+own)
					if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
						t.Errorf("%s through a symlinked %s = %v; want ErrSymlink naming %s", op.name, own, err, link)
					}
					if after := testutil.TreeState(t, decoy); !sameSnapshot(before, after) {
						t.Errorf("decoy changed: %v -> %v", before, after)
					}
				})
			}
		}
	}
}

// A symlink at debseal's own file is refused too (never followed, never
// replaced), by every operation on it.
func TestOwnFileSymlinkIsRefused(t *testing.T) {
	for _, name := range []string{Own + "/sealed", "var/log/debseal.log"} {
		for _, op := range ops {
			if op.name == "ReadDir" || op.name == "MkdirAll" || op.name == "Remove" || op.name == "RemoveFiles" || op.name == "Lstat" {
				continue // not about the file itself (Remove takes the link away, harmlessly)
			}
			t.Run(name+"/"+op.name, func(t *testing.T) {
				top := t.TempDir()
				root, decoy := filepath.Join(top, "root"), filepath.Join(top, "decoy")
				os.MkdirAll(filepath.Join(root, filepath.Dir(name)), 0o755)
				os.MkdirAll(decoy, 0o755)
				os.WriteFile(filepath.Join(decoy, "f"), []byte("host\n"), 0o644)
				link := filepath.Join(root, filepath.Dir(name), "f")
				os.Symlink(filepath.Join(decoy, "f"), link)
				before := testutil.TreeState(t, decoy)
				r, err := Open(root)
				if err != nil {
					t.Fatal(err)
				}
				defer r.Close()
				err = op.do(r, "/"+filepath.Dir(name))
				if !errors.Is(err, ErrSymlink) || !strings.Contains(err.Error(), link) {
					t.Errorf("%s on a symlink = %v; want ErrSymlink naming %s", op.name, err, link)
				}
				if fi, err := os.Lstat(link); err != nil || fi.Mode()&fs.ModeSymlink == 0 {
					t.Errorf("the symlink was replaced or removed: %v", err)
				}
				if after := testutil.TreeState(t, decoy); !sameSnapshot(before, after) {
					t.Errorf("decoy changed: %v -> %v", before, after)
				}
			})
		}
	}
}

// System directories may be symlinks, resolved inside the root: an
// absolute ROOT/var/log -> /decoy means ROOT/decoy, and ../../.. stops at
// the root.
func TestSystemDirectorySymlinkStaysInside(t *testing.T) {
	for _, target := range []string{"DECOY", "../../../../../../DECOY"} {
		top := t.TempDir()
		root, decoy := filepath.Join(top, "root"), filepath.Join(top, "decoy")
		os.MkdirAll(filepath.Join(root, "var"), 0o755)
		os.MkdirAll(filepath.Join(root, "decoy"), 0o755) // where the link lands inside the root
		os.MkdirAll(decoy, 0o755)
		tgt := strings.ReplaceAll(target, "DECOY", decoy)
		if !filepath.IsAbs(tgt) {
			tgt = "../../../../../../../../../" + strings.TrimPrefix(decoy, "/")
		}
		if err := os.Symlink(tgt, filepath.Join(root, "var/log")); err != nil {
			t.Fatal(err)
		}
		r, err := Open(root)
		if err != nil {
			t.Fatal(err)
		}
		// The absolute link resolves to ROOT<decoy>: not there, so nothing
		// is written anywhere.
		err = r.Append("/var/log/debseal.log", []byte("x\n"), 0o640)
		r.Close()
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: Append through var/log -> %s = %v; want not exist (inside the root)", target, tgt, err)
		}
		if ents, _ := os.ReadDir(decoy); len(ents) != 0 {
			t.Errorf("%s: the decoy outside the root got %v", target, ents)
		}
		// With the target made inside the root, the log lands there.
		os.MkdirAll(filepath.Join(root, decoy), 0o755)
		r, _ = Open(root)
		if err := r.Append("/var/log/debseal.log", []byte("x\n"), 0o640); err != nil {
			t.Errorf("%s: Append = %v", target, err)
		}
		r.Close()
		if _, err := os.Stat(filepath.Join(root, decoy, "debseal.log")); err != nil {
			t.Errorf("%s: the log is not inside the root: %v", target, err)
		}
		if ents, _ := os.ReadDir(decoy); len(ents) != 0 {
			t.Errorf("%s: the decoy outside the root got %v", target, ents)
		}
	}
}

// A FIFO (or anything but a regular file) where debseal's file should be
// is refused at once, never opened: no operation hangs.
func TestFIFOIsRefusedWithoutHanging(t *testing.T) {
	for _, op := range ops {
		switch op.name {
		case "ReadDir", "MkdirAll", "Remove", "RemoveFiles", "Lstat":
			continue
		}
		t.Run(op.name, func(t *testing.T) {
			root := t.TempDir()
			dir := filepath.Join(root, Own)
			os.MkdirAll(dir, 0o755)
			if err := syscall.Mkfifo(filepath.Join(dir, "f"), 0o644); err != nil {
				t.Fatal(err)
			}
			r, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			done := make(chan error, 1)
			go func() { done <- op.do(r, "/"+Own) }()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("%s on a FIFO = %v; want ErrNotRegular", op.name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("%s on a FIFO hangs", op.name)
			}
		})
	}
}

// A failure injected at each step of WriteFileAtomic leaves the old file
// or the new one, never a mix, a truncation or a stray temporary file.
func TestWriteFileAtomicFaults(t *testing.T) {
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		for n := 1; ; n++ {
			root := t.TempDir()
			name := Own + "/sealed"
			r, _ := Open(root)
			if err := r.WriteFileAtomic(name, []byte("old\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			seen := 0
			Fault = func(op, path string) error {
				seen++
				if seen == n {
					return errno
				}
				return nil
			}
			err := r.WriteFileAtomic(name, []byte("new\n"), 0o644)
			Fault = nil
			b, rerr := r.ReadFile(name)
			r.Close()
			if seen < n {
				if err != nil || string(b) != "new\n" {
					t.Errorf("no fault: %v, %q", err, b)
				}
				if n < 4 {
					t.Errorf("only %d faultable operations: the seam misses some", seen)
				}
				break
			}
			if !errors.Is(err, errno) {
				t.Errorf("%v at op %d: err = %v", errno, n, err)
			}
			if rerr != nil || (string(b) != "old\n" && string(b) != "new\n") {
				t.Errorf("%v at op %d: file = %q, %v; want old or new", errno, n, b, rerr)
			}
			ents, _ := os.ReadDir(filepath.Join(root, Own))
			if len(ents) != 1 {
				t.Errorf("%v at op %d: left %v", errno, n, ents)
			}
		}
	}
}

// A failure injected at each step of WriteFiles leaves each file old or
// new (a file that did not exist: absent or new), never a mix, a
// truncation or a stray temporary file; the error is reported for every
// file not replaced, and only for those.
func TestWriteFilesFaults(t *testing.T) {
	names := []string{"a", "b", "c"} // a and b exist, c is new
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		for n := 1; ; n++ {
			root := t.TempDir()
			dir := Own + "/manifests"
			r, _ := Open(root)
			for _, f := range names[:2] {
				if err := r.WriteFileAtomic(dir+"/"+f, []byte("old "+f+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var files []FileData
			for _, f := range names {
				files = append(files, FileData{Name: f, Data: []byte("new " + f + "\n")})
			}
			seen := 0
			Fault = func(op, path string) error {
				seen++
				if seen == n {
					return errno
				}
				return nil
			}
			errs := r.WriteFiles(dir, files, 0o600)
			Fault = nil
			for i, f := range names {
				b, rerr := r.ReadFile(dir + "/" + f)
				switch {
				case errors.Is(rerr, fs.ErrNotExist) && f == "c" && errs[i] != nil:
				case rerr != nil:
					t.Errorf("%v at op %d: %s: %v", errno, n, f, rerr)
				case string(b) == "new "+f+"\n" && errs[i] == nil:
				case string(b) == "new "+f+"\n" && seen >= n:
					// Renamed, then the directory's fsync failed: new,
					// but not known to be durable, so an error.
				case string(b) == "old "+f+"\n" && errs[i] != nil:
				default:
					t.Errorf("%v at op %d: %s = %q with error %v; want old with an error or new", errno, n, f, b, errs[i])
				}
				if errs[i] != nil && !errors.Is(errs[i], errno) {
					t.Errorf("%v at op %d: %s: error %v", errno, n, f, errs[i])
				}
			}
			ents, _ := os.ReadDir(filepath.Join(root, dir))
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Errorf("%v at op %d: left %s", errno, n, e.Name())
				}
			}
			r.Close()
			if seen < n {
				if err := errors.Join(errs...); err != nil {
					t.Errorf("no fault: %v", err)
				}
				// create, chmod, write per file, one syncfs, a rename per
				// file, one fsync of the directory.
				if want := 3*len(names) + 1 + len(names) + 1; seen != want {
					t.Errorf("%d faultable operations, want %d: the seam misses some, or the flushes are not batched", seen, want)
				}
				break
			}
		}
	}
}

// RemoveFiles removes files of one directory, not directories, and takes
// a file already gone for done.
func TestRemoveFiles(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, Own, "seen")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o700)
	for _, f := range []string{"a", "b", "keep"} {
		os.WriteFile(filepath.Join(dir, f), nil, 0o600)
	}
	r, err := Open(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if err := r.RemoveFiles(Own+"/seen", []string{"a", "b", "never-there"}); err != nil {
		t.Errorf("RemoveFiles = %v", err)
	}
	for _, tc := range []struct {
		name  string
		names []string
	}{{"a directory", []string{"sub"}}, {"a path", []string{"../sealed"}}, {"dot-dot", []string{".."}}} {
		if err := r.RemoveFiles(Own+"/seen", tc.names); err == nil {
			t.Errorf("RemoveFiles(%s) succeeded", tc.name)
		}
	}
	ents, _ := os.ReadDir(dir)
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != "keep sub" {
		t.Errorf("left %v, want keep and sub", left)
	}
}

// WriteFrom streams a reader into a file, atomically: more than its limit
// leaves no file and no temporary one behind; a fault at any step leaves
// the old file or the new one.
func TestWriteFrom(t *testing.T) {
	big := strings.Repeat("x", 200<<10) // several reads
	tests := []struct {
		name    string
		in      string
		limit   int64
		wantErr error
	}{
		{"empty", "", 10, nil},
		{"exactly the limit", "0123456789", 10, nil},
		{"several reads", big, int64(len(big)), nil},
		{"one byte over", "0123456789a", 10, ErrTooBig},
		{"far over", big, 1000, ErrTooBig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			r, err := Open(root)
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			name := Own + "/evidence/x.copy"
			n, err := r.WriteFrom(name, strings.NewReader(tt.in), tt.limit, 0o600)
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("WriteFrom() = %d, %v; want %v", n, err, tt.wantErr)
			}
			ents, _ := os.ReadDir(filepath.Join(root, Own, "evidence"))
			if tt.wantErr != nil {
				if len(ents) != 0 {
					t.Errorf("WriteFrom over the limit left %v", ents)
				}
				return
			}
			b, err := os.ReadFile(filepath.Join(root, name))
			if err != nil || string(b) != tt.in || n != int64(len(tt.in)) {
				t.Errorf("WriteFrom() = %d; file has %d bytes (%v), want %d", n, len(b), err, len(tt.in))
			}
			if fi, _ := os.Stat(filepath.Join(root, name)); fi.Mode().Perm() != 0o600 || len(ents) != 1 {
				t.Errorf("mode %v, directory %v", fi.Mode(), ents)
			}
		})
	}
	for _, errno := range []syscall.Errno{syscall.ENOSPC, syscall.EIO} {
		for n := 1; ; n++ {
			root := t.TempDir()
			name := Own + "/evidence/x.copy"
			r, _ := Open(root)
			if _, err := r.WriteFrom(name, strings.NewReader("old\n"), 10, 0o600); err != nil {
				t.Fatal(err)
			}
			seen := 0
			Fault = func(op, path string) error {
				if seen++; seen == n {
					return errno
				}
				return nil
			}
			_, err := r.WriteFrom(name, strings.NewReader("new\n"), 10, 0o600)
			Fault = nil
			b, rerr := r.ReadFile(name)
			r.Close()
			if seen < n {
				if err != nil || string(b) != "new\n" {
					t.Errorf("no fault: %v, %q", err, b)
				}
				break
			}
			if !errors.Is(err, errno) {
				t.Errorf("%v at op %d: err = %v", errno, n, err)
			}
			if rerr != nil || (string(b) != "old\n" && string(b) != "new\n") {
				t.Errorf("%v at op %d: file = %q, %v; want old or new", errno, n, b, rerr)
			}
			if ents, _ := os.ReadDir(filepath.Join(root, Own, "evidence")); len(ents) != 1 {
				t.Errorf("%v at op %d: left %v", errno, n, ents)
			}
		}
	}
}
