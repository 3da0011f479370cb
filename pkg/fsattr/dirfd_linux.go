//go:build linux

package fsattr

import "path/filepath"

// Fd is the directory's descriptor (opened with O_PATH), for the *at
// system calls of a caller that resolved the directory through this root
// (pkg/confined). It stays owned by d: Close closes it.
func (d *Dir) Fd() int { return d.fd }

// NewDir wraps fd, a directory the caller resolved inside r itself (dir is
// its path within the root, for messages), so that the flag and open
// operations of Dir apply to it. The Dir owns fd from now on.
func (r *Root) NewDir(fd int, dir string) *Dir {
	return &Dir{fd: fd, root: r, Path: filepath.Join("/", dir)}
}
