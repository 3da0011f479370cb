//go:build !linux

package confined

import (
	"io"
	"io/fs"
	"os"
	"time"

	"github.com/debseal/debseal/pkg/fsattr"
)

// debseal is Linux-only; this stub keeps vet and editors working elsewhere.

// Root is unavailable on this system.
type Root struct{}

// Open always fails with fsattr.ErrNotSupported.
func Open(root string) (*Root, error) { return nil, fsattr.ErrNotSupported }

// Close does nothing.
func (r *Root) Close() error { return nil }

// Path is empty.
func (r *Root) Path() string { return "" }

// Join is empty.
func (r *Root) Join(name string) string { return "" }

// OpenDir always fails.
func (r *Root) OpenDir(dir string) (*fsattr.Dir, error) { return nil, fsattr.ErrNotSupported }

// FileData is one file for WriteFiles.
type FileData struct {
	Name string
	Data []byte
}

// WriteFiles always fails.
func (r *Root) WriteFiles(dir string, files []FileData, perm fs.FileMode) []error {
	errs := make([]error, len(files))
	for i := range errs {
		errs[i] = fsattr.ErrNotSupported
	}
	return errs
}

// MkdirAll always fails.
func (r *Root) MkdirAll(dir string, perm fs.FileMode) error { return fsattr.ErrNotSupported }

// Open always fails.
func (r *Root) Open(name string) (*os.File, error) { return nil, fsattr.ErrNotSupported }

// ReadFile always fails.
func (r *Root) ReadFile(name string) ([]byte, error) { return nil, fsattr.ErrNotSupported }

// WriteFileAtomic always fails.
func (r *Root) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	return fsattr.ErrNotSupported
}

// WriteFrom always fails.
func (r *Root) WriteFrom(name string, src io.Reader, limit int64, perm fs.FileMode) (int64, error) {
	return 0, fsattr.ErrNotSupported
}

// ReplaceFile always fails.
func (r *Root) ReplaceFile(name string, data []byte, perm fs.FileMode) error {
	return fsattr.ErrNotSupported
}

// Append always fails.
func (r *Root) Append(name string, data []byte, perm fs.FileMode) error {
	return fsattr.ErrNotSupported
}

// OpenLock always fails.
func (r *Root) OpenLock(name string, perm fs.FileMode) (*os.File, error) {
	return nil, fsattr.ErrNotSupported
}

// Remove always fails.
func (r *Root) Remove(name string) error { return fsattr.ErrNotSupported }

// ReadDir always fails.
func (r *Root) ReadDir(dir string) ([]DirEntry, error) { return nil, fsattr.ErrNotSupported }

// Lstat always fails.
func (r *Root) Lstat(name string) (fsattr.Info, error) { return fsattr.Info{}, fsattr.ErrNotSupported }

// Chtimes always fails.
func (r *Root) Chtimes(name string, atime, mtime time.Time) error { return fsattr.ErrNotSupported }

// Chmod always fails.
func (r *Root) Chmod(name string, perm fs.FileMode) error { return fsattr.ErrNotSupported }

// RemoveFiles always fails.
func (r *Root) RemoveFiles(dir string, names []string) error { return fsattr.ErrNotSupported }
