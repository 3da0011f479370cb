package dpkgdb

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// TestMissingStatusIsEmpty: dpkg treats an admindir without a status file
// as an empty database (a fresh --admindir, dpkg's own test suite); so
// does Open. The journal still applies on top.
func TestMissingStatusIsEmpty(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(dir)
	if err != nil {
		t.Fatalf("Open(admindir without status) = %v, want an empty database", err)
	}
	if len(db.Packages) != 0 {
		t.Errorf("Packages = %v, want none", db.Packages)
	}
	if err := os.MkdirAll(filepath.Join(dir, "updates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "updates", "0000"), []byte("Package: a\nStatus: install ok half-installed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err = Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(db.Packages) != 1 || db.Packages[0].Name != "a" {
		t.Errorf("Packages = %v, want a from the journal", db.Packages)
	}
	// Only absence is forgiven.
	if err := os.Mkdir(filepath.Join(dir, "status"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir); !errors.Is(err, ErrNotRegular) {
		t.Errorf("Open(status is a directory) = %v, want ErrNotRegular", err)
	}
}

// TestSpecialFilesRefused puts a FIFO (and, for the status file, a socket
// and a device) where each database file belongs. Every read must fail
// quickly with an error naming the file, never block: a FIFO nobody
// writes would hang the reader, and with it the dpkg run of a hook.
func TestSpecialFilesRefused(t *testing.T) {
	status := "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n" +
		"Maintainer: m\nDescription: d\n"
	tests := []struct {
		name string
		file string // relative to the admindir
		kind string // fifo, socket, chardev
		read func(db *DB, a *Package) error
	}{
		{"status", "status", "fifo", nil},
		{"status socket", "status", "socket", nil},
		{"status device", "status", "chardev", nil},
		{"journal", "updates/0001", "fifo", nil},
		{"info format", "info/format", "fifo", nil},
		{"list", "info/a.list", "fifo", func(db *DB, a *Package) error { _, err := db.Files(a); return err }},
		{"list for Listing", "info/a.list", "fifo", func(db *DB, a *Package) error {
			if got := db.Listing([]string{"/x"}); len(got) != 0 {
				return errors.New("Listing read a FIFO")
			}
			_, err := db.Files(a)
			return err
		}},
		{"md5sums", "info/a.md5sums", "fifo", func(db *DB, a *Package) error { _, _, err := db.MD5Sums(a); return err }},
		{"conffiles", "info/a.conffiles", "fifo", func(db *DB, a *Package) error { _, err := db.ReadInfo(a, "conffiles"); return err }},
		{"postinst", "info/a.postinst", "fifo", func(db *DB, a *Package) error { _, err := db.ReadInfo(a, "postinst"); return err }},
		{"diversions", "diversions", "fifo", func(db *DB, a *Package) error { _, err := db.Diversions(); return err }},
		{"statoverride", "statoverride", "fifo", func(db *DB, a *Package) error { _, err := db.StatOverrides(); return err }},
		{"file triggers", "triggers/File", "fifo", func(db *DB, a *Package) error { _, err := db.Triggers(); return err }},
		{"explicit trigger", "triggers/ldconfig", "fifo", func(db *DB, a *Package) error { _, err := db.Triggers(); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"info", "updates", "triggers"} {
				if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "info", "a.list"), []byte("/.\n/x\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, tt.file)
			os.Remove(path)
			makeSpecial(t, path, tt.kind)

			done := make(chan error, 1)
			go func() {
				db, err := Open(dir)
				if err == nil && tt.read != nil {
					err = tt.read(db, db.Lookup("a")[0])
				}
				done <- err
			}()
			select {
			case err := <-done:
				if !errors.Is(err, ErrNotRegular) || !strings.Contains(err.Error(), path) {
					t.Errorf("error = %v, want ErrNotRegular naming %s", err, path)
				}
			case <-time.After(5 * time.Second):
				// Unblock the reader so the test binary can exit.
				if f, err := os.OpenFile(path, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
					f.Close()
				}
				t.Fatalf("reading the database with a %s at %s blocked", tt.kind, tt.file)
			}
		})
	}
}

func makeSpecial(t *testing.T, path, kind string) {
	t.Helper()
	switch kind {
	case "fifo":
		if err := unix.Mkfifo(path, 0o644); err != nil {
			t.Fatal(err)
		}
	case "socket":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer unix.Close(fd)
		if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
			t.Fatal(err)
		}
	case "chardev":
		testutil.RequireRoot(t)
		// /dev/null's numbers: opening it would not block, but it is not
		// a database file either.
		if err := unix.Mknod(path, unix.S_IFCHR|0o644, int(unix.Mkdev(1, 3))); err != nil {
			t.Fatal(err)
		}
	}
	if st, err := os.Lstat(path); err != nil || st.Mode().IsRegular() {
		t.Fatalf("makeSpecial %s: %v %v", path, st, err)
	}
}
