// Package confined does debseal's own file I/O under a root it does not
// trust: the sealed state, the journals, the pending list and sync stamp,
// its lock file, the manifests and caches under ROOT/var/lib/debseal, the
// log ROOT/var/log/debseal.log, and the configuration files setup writes.
//
// Every path is resolved from the root's descriptor, never as a string:
//   - system directories (ROOT/var/lib, ROOT/var/log, ROOT/etc/dpkg...)
//     with openat2's RESOLVE_IN_ROOT, so a symlink among them (an absolute
//     one, or ../../..) resolves inside the root, as it would in a chroot;
//   - debseal's own directories (Own, ROOT/var/lib/debseal, and everything
//     below it) one component at a time with RESOLVE_NO_SYMLINKS: a symlink
//     there is an error naming it (SymlinkError), never followed;
//   - the file itself is never followed either, and is opened for I/O only
//     after fstat of an O_PATH descriptor showed a regular file: a FIFO or
//     a device planted where debseal's file should be is refused, never
//     opened (so it never hangs).
//
// Writes that replace a file go through a temporary file in the same
// directory, fsync, rename and fsync of the directory, so that a failure at
// any point (ENOSPC, EIO, a kill) leaves the old or the new file. Fault, set
// only by tests, is consulted before every write, fsync, rename, mkdir,
// remove, create, chmod and chtimes.
//
// What the files contain is the callers' business (pkg/seal, pkg/manifest,
// pkg/audit, pkg/aptindex, cmd/debseal); the package files debseal locks
// are pkg/fsattr's.
package confined

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/debseal/debseal/pkg/fsattr"
)

// Own is debseal's own directory under every root. Nothing below it is
// ever a symlink.
const Own = "var/lib/debseal"

// Fault, when set (by tests only), is called before every operation that
// changes the filesystem with the operation ("create", "write", "fsync",
// "rename", "mkdir", "remove", "chmod", "chtimes") and the path it
// concerns; an error it returns is returned as the operation's error, as
// if the kernel had returned it. It must be safe for concurrent use.
var Fault func(op, path string) error

func fault(op, p string) error {
	if f := Fault; f != nil {
		if err := f(op, p); err != nil {
			return &os.PathError{Op: op, Path: p, Err: err}
		}
	}
	return nil
}

var (
	// ErrSymlink: a symlink stands where debseal's own file or directory
	// must be. Match with errors.Is; the error is a *SymlinkError.
	ErrSymlink = errors.New("confined: a symlink where debseal's own file or directory must be")
	// ErrTooBig: WriteFrom was given more than its limit; nothing was
	// written.
	ErrTooBig = errors.New("confined: more than the limit")
	// ErrNotRegular: something other than a regular file (a FIFO, a
	// device, a directory) stands where debseal's own file must be.
	ErrNotRegular = errors.New("confined: not a regular file")
)

// SymlinkError names a symlink found where debseal's own file or directory
// must be.
type SymlinkError struct {
	Path   string // on the host
	Target string // as stored in the link
}

func (e *SymlinkError) Error() string {
	return fmt.Sprintf("confined: %s is a symlink (to %s): debseal's own files and directories are never symlinks; remove it", e.Path, e.Target)
}

// Is makes errors.Is(err, ErrSymlink) true.
func (e *SymlinkError) Is(target error) bool { return target == ErrSymlink }

// DirEntry is one name in a directory and what lstat says of it.
type DirEntry struct {
	Name string
	Info fsattr.Info
}

// WriteFile writes one file under root atomically and durably
// (Root.WriteFileAtomic), making missing directories above it (0755): for
// callers that write a single file, such as setup's dpkg and apt
// configuration snippets (name is a path within root, e.g.
// /etc/dpkg/dpkg.cfg.d/debseal).
func WriteFile(root, name string, data []byte, perm fs.FileMode) error {
	r, err := Open(root)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.WriteFileAtomic(name, data, perm)
}
