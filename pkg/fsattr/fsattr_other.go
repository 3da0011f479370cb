//go:build !linux

package fsattr

import "os"

// debseal is Linux-only; this stub keeps vet and editors working elsewhere.

// Root is unavailable on this system.
type Root struct{ Path string }

// Dir is unavailable on this system.
type Dir struct{ Path string }

// OpenRoot always fails with ErrNotSupported.
func OpenRoot(path string) (*Root, error) { return nil, ErrNotSupported }

// OpenDir always fails with ErrNotSupported.
func (r *Root) OpenDir(rel string) (*Dir, error) { return nil, ErrNotSupported }

// Close does nothing.
func (r *Root) Close() error { return nil }

// Real is the root's path (not resolved on this system).
func (r *Root) Real() string { return r.Path }

// Ident always fails with ErrNotSupported.
func (d *Dir) Ident() (Ident, error) { return Ident{}, ErrNotSupported }

// Lstat always fails with ErrNotSupported.
func (d *Dir) Lstat(name string) (Info, error) { return Info{}, ErrNotSupported }

// Set always fails with ErrNotSupported.
func (d *Dir) Set(name string, want Ident, flag uint32, on bool) (Result, error) {
	return Result{}, ErrNotSupported
}

// Flags always fails with ErrNotSupported.
func (d *Dir) Flags(name string, want Ident) (uint32, error) { return 0, ErrNotSupported }

// Close does nothing.
func (d *Dir) Close() error { return nil }

// Open always fails with ErrNotSupported.
func (d *Dir) Open(name string, want Ident) (*os.File, error) { return nil, ErrNotSupported }

// Readlink always fails with ErrNotSupported.
func (d *Dir) Readlink(name string) (string, error) { return "", ErrNotSupported }

// RawFile is unavailable on this system.
type RawFile struct{ Info Info }

// OpenRaw always fails with ErrNotSupported.
func (d *Dir) OpenRaw(name string, want Ident) (*RawFile, error) { return nil, ErrNotSupported }

// Read always fails with ErrNotSupported.
func (f *RawFile) Read(p []byte) (int, error) { return 0, ErrNotSupported }

// Name is empty.
func (f *RawFile) Name() string { return "" }

// Close does nothing.
func (f *RawFile) Close() error { return nil }

// PathFile is unavailable on this system.
type PathFile struct{ Info Info }

// OpenPath always fails with ErrNotSupported.
func (d *Dir) OpenPath(name string) (*PathFile, error) { return nil, ErrNotSupported }

// Close does nothing.
func (p *PathFile) Close() error { return nil }

// OpenRaw always fails with ErrNotSupported.
func (p *PathFile) OpenRaw() (*RawFile, error) { return nil, ErrNotSupported }

// Flags always fails with ErrNotSupported.
func (p *PathFile) Flags() (uint32, error) { return 0, ErrNotSupported }

// Readlink always fails with ErrNotSupported.
func (p *PathFile) Readlink() (string, error) { return "", ErrNotSupported }

// Real always fails with ErrNotSupported.
func (d *Dir) Real() (string, error) { return "", ErrNotSupported }

// Fd is -1 on this system.
func (d *Dir) Fd() int { return -1 }

// NewDir is unavailable on this system.
func (r *Root) NewDir(fd int, dir string) *Dir { return &Dir{Path: dir} }

// EnableVerity always fails with ErrNotSupported.
func (d *Dir) EnableVerity(name string, want Ident) (bool, error) { return false, ErrNotSupported }

// MeasureVerity always fails with ErrNotSupported.
func (d *Dir) MeasureVerity(name string, want Ident) ([32]byte, error) {
	return [32]byte{}, ErrNotSupported
}

// MeasureVerity always fails with ErrNotSupported.
func (p *PathFile) MeasureVerity() ([32]byte, error) { return [32]byte{}, ErrNotSupported }
