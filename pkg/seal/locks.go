package seal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/debseal/debseal/pkg/confined"
	"golang.org/x/sys/unix"
)

// Lock is debseal's own lock (an flock on <state>/lock): one debseal at a
// time plans, unlocks, relocks or recovers a root.
type Lock struct{ f *os.File }

// AcquireLock waits up to timeout for debseal's lock on root.
func AcquireLock(root string, timeout time.Duration) (*Lock, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	p := r.Join(lockFile)
	f, err := r.OpenLock(lockFile, 0o600)
	r.Close()
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	deadline := time.Now().Add(timeout)
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return &Lock{f: f}, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) || time.Now().After(deadline) {
			f.Close()
			return nil, fmt.Errorf("seal: another debseal holds %s: %w", p, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Release drops the lock.
func (l *Lock) Release() {
	if l != nil && l.f != nil {
		l.f.Close()
	}
}

// DpkgLockHolder returns the pid of the process holding dpkg's database
// lock (<admindir>/lock), or 0 when nobody holds it.
func DpkgLockHolder(admindir string) (int, error) {
	return lockHolder(filepath.Join(admindir, "lock"))
}

// FrontendLockHolder returns the pid holding apt's/dpkg's frontend lock.
func FrontendLockHolder(admindir string) (int, error) {
	return lockHolder(filepath.Join(admindir, "lock-frontend"))
}

func lockHolder(p string) (int, error) {
	f, err := openDpkgLock(p, unix.O_RDONLY)
	if errors.Is(err, os.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_GETLK, &lk); err != nil {
		return 0, fmt.Errorf("seal: F_GETLK %s: %w", p, err)
	}
	if lk.Type == unix.F_UNLCK {
		return 0, nil
	}
	if lk.Pid <= 0 {
		// Held by a process this pid namespace cannot see (a dpkg on
		// the host while debseal runs in a container sharing the tree),
		// or by an open file description: held all the same.
		return -1, nil
	}
	return int(lk.Pid), nil
}

// holdDpkgLock takes dpkg's database lock so no dpkg can start while
// debseal recovers. It fails at once if a dpkg runs. The lock is an open
// file description lock: it conflicts with the fcntl lock dpkg takes, but
// unlike one it survives this process closing another descriptor of the
// same file (every lock check opens and closes one).
func holdDpkgLock(admindir string) (release func(), err error) {
	p := filepath.Join(admindir, "lock")
	f, err := openDpkgLock(p, unix.O_RDWR|unix.O_CREAT)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 0, Len: 0}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal: dpkg is running (its lock %s is held): %w", p, err)
	}
	return func() { f.Close() }, nil
}

// openDpkgLock opens one of dpkg's lock files in its admindir (a directory
// the admin names, resolved as given) without following a symlink at the
// lock itself and without blocking: anything but a regular file (a FIFO
// would block a plain open) is refused.
func openDpkgLock(p string, flags int) (*os.File, error) {
	fd, err := unix.Open(p, flags|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0o640)
	if err != nil {
		if err == unix.ELOOP {
			err = fmt.Errorf("%w (a symlink)", confined.ErrNotRegular)
		}
		return nil, fmt.Errorf("seal: %w", &os.PathError{Op: "open", Path: p, Err: err})
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if err == nil {
			err = confined.ErrNotRegular
		}
		return nil, fmt.Errorf("seal: %w", &os.PathError{Op: "open", Path: p, Err: err})
	}
	return os.NewFile(uintptr(fd), p), nil
}
