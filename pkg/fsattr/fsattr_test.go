//go:build linux

package fsattr

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

func openDir(t *testing.T, root, dir string) (*Root, *Dir) {
	t.Helper()
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	d, err := r.OpenDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.Close() })
	return r, d
}

func TestSetClearImmutable(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.TempRoot(t)
	path := filepath.Join(root, "f")
	if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, d := openDir(t, root, "/")
	info, err := d.Lstat("f")
	if err != nil {
		t.Fatal(err)
	}
	if set, known := info.Immutable(); set || !known {
		t.Fatalf("Lstat().Immutable() = %v, %v; want false, true on ext4", set, known)
	}

	res, err := d.Set("f", info.Ident, Immutable, true)
	if err != nil {
		t.Fatalf("Set(on) error = %v", err)
	}
	if !res.Changed || res.Flags&Immutable == 0 {
		t.Errorf("Set(on) = %+v, want Changed with the flag", res)
	}
	if !testutil.IsImmutable(t, path) {
		t.Fatal("independent reader: flag not set")
	}
	for _, op := range []struct {
		name string
		do   func() error
	}{
		{"write", func() error { return os.WriteFile(path, []byte("y"), 0o644) }},
		{"append", func() error {
			f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"unlink", func() error { return os.Remove(path) }},
		{"rename", func() error { return os.Rename(path, path+".new") }},
		{"chmod", func() error { return os.Chmod(path, 0o600) }},
		{"link", func() error { return os.Link(path, path+".tmp") }},
	} {
		if err := op.do(); !errors.Is(err, syscall.EPERM) {
			t.Errorf("%s on immutable file: error = %v, want EPERM", op.name, err)
		}
	}
	// A second set changes nothing and moves no ctime.
	info2, _ := d.Lstat("f")
	if set, _ := info2.Immutable(); !set {
		t.Error("statx does not report the immutable attribute")
	}
	time.Sleep(10 * time.Millisecond)
	res, err = d.Set("f", info.Ident, Immutable, true)
	if err != nil || res.Changed {
		t.Errorf("second Set(on) = %+v, %v; want unchanged", res, err)
	}
	if info3, _ := d.Lstat("f"); info3.Ctime != info2.Ctime {
		t.Error("no-op Set moved ctime: an ioctl changed something")
	}

	res, err = d.Set("f", info.Ident, Immutable, false)
	if err != nil || !res.Changed {
		t.Fatalf("Set(off) = %+v, %v", res, err)
	}
	if testutil.IsImmutable(t, path) {
		t.Fatal("independent reader: flag still set")
	}
	if err := os.WriteFile(path, []byte("y"), 0o644); err != nil {
		t.Errorf("write after clearing: %v", err)
	}
}

func TestSetRefusesNonRegular(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.TempRoot(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "target"), []byte("x"), 0o644))
	must(os.Symlink("target", filepath.Join(root, "link")))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	must(unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))))
	l, err := net.Listen("unix", filepath.Join(root, "sock"))
	must(err)
	defer l.Close()

	// inotify reports every open(2) for I/O of a watched inode, and none
	// for O_PATH: the special files must never be opened for real (a
	// device's open runs its driver: a tape rewinds, a modem hangs up).
	ino, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	must(err)
	defer unix.Close(ino)
	for _, name := range []string{"fifo", "null"} {
		_, err := unix.InotifyAddWatch(ino, filepath.Join(root, name), unix.IN_OPEN)
		must(err)
	}

	_, d := openDir(t, root, "/")
	for _, name := range []string{"link", "fifo", "null", "sock"} {
		t.Run(name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() {
				_, err := d.Set(name, Ident{}, Immutable, true)
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("Set(%s) error = %v, want ErrNotRegular", name, err)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("Set(%s) blocked", name)
			}
		})
	}
	if testutil.IsImmutable(t, filepath.Join(root, "target")) {
		t.Error("symlink was followed: its target became immutable")
	}
	for _, name := range []string{"fifo", "null"} {
		if _, err := d.Open(name, Ident{}); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(%s) error = %v, want ErrNotRegular", name, err)
		}
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Read(ino, buf); n > 0 {
		t.Errorf("a FIFO or device was opened for I/O (%d bytes of inotify IN_OPEN events)", n)
	}
}

func TestSetChecksPlannedInode(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.TempRoot(t)
	p := filepath.Join(root, "f")
	if err := os.WriteFile(p, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, d := openDir(t, root, "/")
	planned, err := d.Lstat("f")
	if err != nil {
		t.Fatal(err)
	}
	// The file is replaced (as dpkg does) between plan and apply.
	if err := os.WriteFile(p+".new", []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(p+".new", p); err != nil {
		t.Fatal(err)
	}
	if _, err := d.Set("f", planned.Ident, Immutable, true); !errors.Is(err, ErrChanged) {
		t.Errorf("Set() on replaced file: error = %v, want ErrChanged", err)
	}
	if testutil.IsImmutable(t, p) {
		t.Error("the replacement inode was locked")
	}
}

func TestRootConfinesSymlinks(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.TempRoot(t)
	if err := os.MkdirAll(filepath.Join(root, "usr/lib"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "usr/lib/os-release"), []byte("sandbox"), 0o644); err != nil {
		t.Fatal(err)
	}
	// Absolute symlinks, as merged-/usr systems have them: they must
	// resolve inside the root, never to the host's /usr/lib.
	if err := os.Symlink("/usr/lib", filepath.Join(root, "lib")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../usr/lib", filepath.Join(root, "escape")); err != nil {
		t.Fatal(err)
	}
	var want unix.Stat_t
	if err := unix.Lstat(filepath.Join(root, "usr/lib/os-release"), &want); err != nil {
		t.Fatal(err)
	}
	r, err := OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, dir := range []string{"/lib", "/escape", "/usr/lib"} {
		d, err := r.OpenDir(dir)
		if err != nil {
			t.Fatalf("OpenDir(%s): %v", dir, err)
		}
		info, err := d.Lstat("os-release")
		d.Close()
		if err != nil {
			t.Fatalf("Lstat(%s/os-release): %v", dir, err)
		}
		if info.Ino != want.Ino || info.Dev != want.Dev {
			t.Errorf("%s/os-release resolved outside the root (ino %d, want %d)", dir, info.Ino, want.Ino)
		}
	}
}

func TestUnsupportedNamesFilesystem(t *testing.T) {
	testutil.RequireRoot(t)
	// /proc files have no inode flags: the error must say so and name the
	// filesystem.
	r, err := OpenRoot("/")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	d, err := r.OpenDir("/proc/self")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	_, err = d.Flags("status", Ident{})
	var ue *UnsupportedError
	if !errors.As(err, &ue) || !errors.Is(err, ErrNotSupported) || ue.FS != "proc" {
		t.Errorf("Flags(/proc/self/status) error = %v, want UnsupportedError on proc", err)
	}
}

func TestInvalidNames(t *testing.T) {
	root := t.TempDir()
	_, d := openDir(t, root, "/")
	for _, name := range []string{"", ".", "..", "a/b"} {
		if _, err := d.Lstat(name); !errors.Is(err, unix.EINVAL) {
			t.Errorf("Lstat(%q) error = %v, want EINVAL", name, err)
		}
		if _, err := d.Set(name, Ident{}, Immutable, true); !errors.Is(err, unix.EINVAL) {
			t.Errorf("Set(%q) error = %v, want EINVAL", name, err)
		}
	}
}

// Real names a directory inside the root with its symlinks resolved, also
// when the root itself is reached through a symlink (dpkg --root /chroot
// where /chroot -> /srv/chroot): merged-/usr aliases depend on it.
func TestDirReal(t *testing.T) {
	base := t.TempDir()
	realRoot := filepath.Join(base, "real")
	for _, d := range []string{"usr/bin", "usr/lib"} {
		if err := os.MkdirAll(filepath.Join(realRoot, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for link, to := range map[string]string{"bin": "usr/bin", "lib": "/usr/lib"} {
		if err := os.Symlink(to, filepath.Join(realRoot, link)); err != nil {
			t.Fatal(err)
		}
	}
	link := filepath.Join(base, "link")
	if err := os.Symlink(realRoot, link); err != nil {
		t.Fatal(err)
	}
	for _, root := range []string{realRoot, link} {
		r, err := OpenRoot(root)
		if err != nil {
			t.Fatal(err)
		}
		for dir, want := range map[string]string{"/bin": "/usr/bin", "/lib": "/usr/lib", "/usr/bin": "/usr/bin", "/": "/"} {
			d, err := r.OpenDir(dir)
			if err != nil {
				t.Fatal(err)
			}
			got, err := d.Real()
			d.Close()
			if err != nil || got != want {
				t.Errorf("root %s: Real(%s) = %q, %v; want %q", root, dir, got, err, want)
			}
		}
		r.Close()
	}
}

func TestOpenPath(t *testing.T) {
	testutil.RequireRoot(t)
	root := testutil.TempRoot(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(filepath.Join(root, "file"), []byte("content"), 0o640))
	must(os.Symlink("file", filepath.Join(root, "link")))
	must(os.Mkdir(filepath.Join(root, "dir"), 0o755))
	must(unix.Mkfifo(filepath.Join(root, "fifo"), 0o644))
	must(unix.Mknod(filepath.Join(root, "null"), unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))))
	// Swapped in for a regular file after OpenPath: the handle keeps
	// naming the file, and the FIFO that now has its name is never opened.
	must(os.WriteFile(filepath.Join(root, "swapped"), []byte("before"), 0o644))
	must(unix.Mkfifo(filepath.Join(root, "swapfifo"), 0o644))

	ino, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	must(err)
	defer unix.Close(ino)
	for _, name := range []string{"fifo", "null", "swapfifo"} {
		_, err := unix.InotifyAddWatch(ino, filepath.Join(root, name), unix.IN_OPEN)
		must(err)
	}
	_, d := openDir(t, root, "/")
	tests := []struct {
		name    string
		mode    uint32 // S_IFMT bits
		swap    string // renamed over name after OpenPath
		content string // what OpenRaw reads ("": it must refuse)
		link    string
	}{
		{name: "file", mode: unix.S_IFREG, content: "content"},
		{name: "link", mode: unix.S_IFLNK, link: "file"},
		{name: "dir", mode: unix.S_IFDIR},
		{name: "fifo", mode: unix.S_IFIFO},
		{name: "null", mode: unix.S_IFCHR},
		{name: "swapped", mode: unix.S_IFREG, swap: "swapfifo", content: "before"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pf, err := d.OpenPath(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			defer pf.Close()
			want, err := d.Lstat(tt.name)
			if err != nil {
				t.Fatal(err)
			}
			if pf.Info.Mode&unix.S_IFMT != tt.mode || pf.Info.Ident != want.Ident || pf.Info.Size != want.Size {
				t.Errorf("OpenPath(%s).Info = mode %o ident %v size %d, want mode %o and Lstat's %v %d",
					tt.name, pf.Info.Mode, pf.Info.Ident, pf.Info.Size, tt.mode, want.Ident, want.Size)
			}
			if tt.swap != "" {
				must(os.Rename(filepath.Join(root, tt.swap), filepath.Join(root, tt.name)))
			}
			if tt.link != "" {
				if got, err := pf.Readlink(); err != nil || got != tt.link {
					t.Errorf("Readlink() = %q, %v, want %q", got, err, tt.link)
				}
			}
			f, err := pf.OpenRaw()
			if tt.content == "" {
				if !errors.Is(err, ErrNotRegular) {
					t.Errorf("OpenRaw() error = %v, want ErrNotRegular", err)
				}
				if err == nil {
					f.Close()
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			buf := make([]byte, 64)
			n, err := f.Read(buf)
			if err != nil || string(buf[:n]) != tt.content {
				t.Errorf("Read() = %q, %v, want %q", buf[:n], err, tt.content)
			}
			if _, err := pf.Flags(); err != nil && !errors.Is(err, ErrNotSupported) {
				t.Errorf("Flags() error = %v", err)
			}
		})
	}
	buf := make([]byte, 4096)
	if n, _ := unix.Read(ino, buf); n > 0 {
		t.Errorf("a FIFO or device was opened for I/O (%d bytes of inotify IN_OPEN events)", n)
	}
}
