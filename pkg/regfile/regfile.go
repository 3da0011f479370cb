// Package regfile opens files that must be regular files — a .deb, a file
// of dpkg's database — for reading, and refuses anything else without
// reading it: a FIFO would block the reader for ever (and with it the dpkg
// run whose hook is reading), a device may act when opened. It owns that
// one rule so that every reader applies it the same way; what the files
// contain is its callers' business.
package regfile

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// ErrNotRegular is matched (errors.Is) by the error for a path that
// exists but is not a regular file.
var ErrNotRegular = errors.New("not a regular file")

// Open opens path for reading if it is a regular file. The open uses
// O_NONBLOCK, so that a FIFO swapped in after the first check cannot block
// it either, and the descriptor is checked again. Symbolic links are
// followed (dpkg follows them in its database). prefix names the caller's
// package in messages ("deb", "dpkgdb").
func Open(path, prefix string) (*os.File, error) {
	st, err := os.Stat(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			pe.Op = "open" // what the caller asked for
		}
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, notRegular(path, prefix, st.Mode())
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	if st, err = f.Stat(); err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, notRegular(path, prefix, st.Mode())
	}
	return f, nil
}

func notRegular(path, prefix string, m fs.FileMode) error {
	kind := "special file"
	switch {
	case m&fs.ModeNamedPipe != 0:
		kind = "FIFO"
	case m&fs.ModeSocket != 0:
		kind = "socket"
	case m&fs.ModeCharDevice != 0:
		kind = "character device"
	case m&fs.ModeDevice != 0:
		kind = "block device"
	case m.IsDir():
		kind = "directory"
	}
	return &os.PathError{Op: "open", Path: path, Err: fmt.Errorf("%s: %w (a %s)", prefix, ErrNotRegular, kind)}
}
