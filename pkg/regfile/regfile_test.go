package regfile

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

func TestOpen(t *testing.T) {
	for _, open := range []struct {
		name string
		f    func(path string) error
	}{
		{"Open", func(path string) error {
			f, err := Open(path, "test")
			if err == nil {
				f.Close()
			}
			return err
		}},
		{"ReadFile", func(path string) error {
			b, err := ReadFile(path, "test", nil)
			if err == nil && string(b) != "x" {
				return errors.New("read " + string(b))
			}
			return err
		}},
	} {
		t.Run(open.name, func(t *testing.T) { testOpen(t, open.f) })
	}
}

func testOpen(t *testing.T, open func(path string) error) {
	dir := t.TempDir()
	reg := filepath.Join(dir, "reg")
	if err := os.WriteFile(reg, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink("reg", link); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path string
		want       error // nil: opens
	}{
		{"regular file", reg, nil},
		{"symlink to a regular file", link, nil},
		{"FIFO", fifo, ErrNotRegular},
		{"directory", dir, ErrNotRegular},
		{"missing", filepath.Join(dir, "none"), fs.ErrNotExist},
	} {
		t.Run(tt.name, func(t *testing.T) {
			done := make(chan error, 1)
			go func() { done <- open(tt.path) }()
			select {
			case err := <-done:
				if (tt.want == nil) != (err == nil) || (tt.want != nil && !errors.Is(err, tt.want)) {
					t.Errorf("open %s = %v, want %v", tt.path, err, tt.want)
				}
			case <-time.After(5 * time.Second):
				t.Fatalf("open %s blocked", tt.path)
			}
		})
	}
}
