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

// ReadFile reads the whole of path if it is a regular file, with Open's
// checks, into buf's storage when it is big enough (buf may be nil). It
// makes the system calls Open and a read need and no more: no *os.File
// (which asks the descriptor's flags and tries to register it with the
// poller, two calls wasted on a regular file), one buffer sized from
// fstat and usually one read. Every command reads every package's list
// with it.
func ReadFile(path, prefix string, buf []byte) ([]byte, error) {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notRegular(path, prefix, modeOf(st.Mode))
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, notRegular(path, prefix, modeOf(st.Mode))
	}
	if int64(cap(buf)) < st.Size+1 {
		buf = make([]byte, 0, st.Size+512) // room to see the end in one more read
	}
	buf = buf[:0]
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		want := cap(buf) - len(buf)
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		buf = buf[:len(buf)+n]
		if n < want {
			// A regular file reads short only at its end: no read to
			// learn that (a read each for every list of the system).
			return buf, nil
		}
	}
}

// modeOf turns a stat mode's type bits into an fs.FileMode's.
func modeOf(m uint32) fs.FileMode {
	switch m & unix.S_IFMT {
	case unix.S_IFIFO:
		return fs.ModeNamedPipe
	case unix.S_IFSOCK:
		return fs.ModeSocket
	case unix.S_IFCHR:
		return fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		return fs.ModeDevice
	case unix.S_IFDIR:
		return fs.ModeDir
	}
	return fs.ModeIrregular
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
