// Package seal is debseal's engine: it plans which inodes to lock or
// unlock for a set of installed packages and applies the plan in parallel.
//
// The plan resolves what dpkg's lists say into what is on disk: diversions
// (a listed path maps to the diverted real file), merged-/usr aliases and
// hard links (several paths, one inode, one flag), paths listed by several
// packages. It never locks a conffile or any inode a conffile shares, and it
// follows pkg/policy for the rest.
//
// The filesystem is injected (FS), so the planning logic is unit tested
// without root; RootFS is the real one, on pkg/fsattr. seal does not print
// or exit: it returns counts and errors, and reports progress through a
// pkg/progress Meter the CLI renders.
package seal

import (
	"io"

	"github.com/debseal/debseal/pkg/fsattr"
)

// FS is the filesystem the engine works on.
type FS interface {
	// OpenDir opens a directory (absolute path within the root).
	OpenDir(dir string) (Dir, error)
}

// Dir is an open directory; names are single components.
type Dir interface {
	// Real is the directory's path within the root with every symlink
	// resolved: how merged-/usr aliases are told apart.
	Real() (string, error)
	Lstat(name string) (fsattr.Info, error)
	Set(name string, want fsattr.Ident, flag uint32, on bool) (fsattr.Result, error)
	Flags(name string, want fsattr.Ident) (uint32, error)
	// EnableVerity enables fs-verity on a regular file (false: it had
	// it already); a filesystem without it gives *fsattr.UnsupportedError.
	EnableVerity(name string, want fsattr.Ident) (bool, error)
	// Open opens a regular file for reading (anything else is an error).
	Open(name string, want fsattr.Ident) (io.ReadCloser, error)
	// Readlink returns a symlink's target as stored (never resolved).
	Readlink(name string) (string, error)
	Close() error
}

// RootFS is the real filesystem under a root directory.
type RootFS struct{ Root *fsattr.Root }

// OpenRootFS opens the root directory.
func OpenRootFS(path string) (*RootFS, error) {
	r, err := fsattr.OpenRoot(path)
	if err != nil {
		return nil, err
	}
	return &RootFS{Root: r}, nil
}

// OpenDir implements FS.
func (r *RootFS) OpenDir(dir string) (Dir, error) {
	d, err := r.Root.OpenDir(dir)
	if err != nil {
		return nil, err
	}
	return rootDir{d}, nil
}

// Close releases the root.
func (r *RootFS) Close() error { return r.Root.Close() }

type rootDir struct{ *fsattr.Dir }

// Open opens a regular file for reading with plain read(2) (OpenRaw: no
// runtime poller registration, two failing system calls a file saved).
func (d rootDir) Open(name string, want fsattr.Ident) (io.ReadCloser, error) {
	return d.Dir.OpenRaw(name, want)
}
