//go:build linux

package confined

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/debseal/debseal/pkg/fsattr"
	"golang.org/x/sys/unix"
)

// Root is a directory under which debseal's own files live.
type Root struct {
	fs *fsattr.Root
}

// Open opens the root directory (usually "/" or the --root).
func Open(root string) (*Root, error) {
	fr, err := fsattr.OpenRoot(root)
	if err != nil {
		return nil, fmt.Errorf("confined: %w", err)
	}
	return &Root{fs: fr}, nil
}

// Close releases the root.
func (r *Root) Close() error { return r.fs.Close() }

// Path is the root's absolute path on the host.
func (r *Root) Path() string { return r.fs.Path }

// Join returns the host path of name (a path within the root), for
// messages.
func (r *Root) Join(name string) string { return filepath.Join(r.fs.Path, name) }

// clean turns name (absolute within the root, or relative to it) into a
// relative path without "." or "..": a path that climbs is refused rather
// than interpreted.
func (r *Root) clean(op, name string) (string, error) {
	var parts []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return "", &os.PathError{Op: op, Path: r.Join(name), Err: unix.EINVAL}
		default:
			parts = append(parts, c)
		}
	}
	return strings.Join(parts, "/"), nil
}

// splitOwn splits a directory into the system part (resolved inside the
// root, symlinks allowed) and the components of debseal's own part (no
// symlinks).
func splitOwn(dir string) (sys string, own []string) {
	if dir == Own || strings.HasPrefix(dir, Own+"/") {
		return path.Dir(Own), strings.Split(strings.TrimPrefix(dir, path.Dir(Own)+"/"), "/")
	}
	return dir, nil
}

// openat2 retries on EAGAIN (a concurrent rename: the kernel asks to
// retry) and EINTR.
func openat2(dirfd int, p string, how *unix.OpenHow) (int, error) {
	for try := 0; ; try++ {
		fd, err := unix.Openat2(dirfd, p, how)
		if (err != unix.EAGAIN && err != unix.EINTR) || try == 8 {
			return fd, err
		}
	}
}

// openOwnComponent opens the directory c in dirfd, refusing a symlink.
func openOwnComponent(dirfd int, c string) (int, error) {
	fd, err := openat2(dirfd, c, &unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err == unix.ENOSYS {
		fd, err = unix.Openat(dirfd, c, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	}
	return fd, err
}

// classify turns the failure to open name in d as a directory (ELOOP,
// ENOTDIR) into an error that says what stands there.
func (r *Root) classify(op string, d *fsattr.Dir, name string, err error) error {
	host := r.Join(path.Join(d.Path, name))
	if err == unix.ELOOP || err == unix.ENOTDIR {
		if info, lerr := d.Lstat(name); lerr == nil {
			if info.IsSymlink() {
				target, _ := d.Readlink(name)
				return &SymlinkError{Path: host, Target: target}
			}
			if !info.IsDir() {
				return &os.PathError{Op: op, Path: host, Err: unix.ENOTDIR}
			}
		}
	}
	return &os.PathError{Op: op, Path: host, Err: err}
}

// dir resolves a directory (relative, cleaned) and returns it open; with
// create, missing directories are made with perm.
func (r *Root) dir(op, dir string, create bool, perm fs.FileMode) (*fsattr.Dir, error) {
	sys, own := splitOwn(dir)
	var d *fsattr.Dir
	var err error
	if create {
		d, err = r.mkdirSys(sys, 0o755)
	} else {
		d, err = r.fs.OpenDir("/" + sys)
	}
	if err != nil {
		return nil, err
	}
	for _, c := range own {
		fd, err := openOwnComponent(d.Fd(), c)
		if err == unix.ENOENT && create {
			if err := r.mkdirat(d, c, perm); err != nil {
				d.Close()
				return nil, err
			}
			fd, err = openOwnComponent(d.Fd(), c)
		}
		if err != nil {
			err = r.classify(op, d, c, err)
			d.Close()
			return nil, err
		}
		nd := r.fs.NewDir(fd, path.Join(d.Path, c))
		d.Close()
		d = nd
	}
	return d, nil
}

func (r *Root) mkdirat(d *fsattr.Dir, name string, perm fs.FileMode) error {
	host := r.Join(path.Join(d.Path, name))
	if err := fault("mkdir", host); err != nil {
		return err
	}
	if err := unix.Mkdirat(d.Fd(), name, uint32(perm.Perm())); err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: host, Err: err}
	}
	return nil
}

// mkdirSys opens a system directory, making what is missing of it (each
// component resolved inside the root, so a symlink among them stays in).
func (r *Root) mkdirSys(sys string, perm fs.FileMode) (*fsattr.Dir, error) {
	d, err := r.fs.OpenDir("/" + sys)
	if err == nil || !errors.Is(err, fs.ErrNotExist) || sys == "" || sys == "." {
		return d, err
	}
	parent, err := r.mkdirSys(path.Dir(sys), perm)
	if err != nil {
		return nil, err
	}
	err = r.mkdirat(parent, path.Base(sys), perm)
	parent.Close()
	if err != nil {
		return nil, err
	}
	return r.fs.OpenDir("/" + sys)
}

// parent resolves the directory of name and returns it with the base name.
func (r *Root) parent(op, name string, create bool) (*fsattr.Dir, string, string, error) {
	rel, err := r.clean(op, name)
	if err != nil {
		return nil, "", "", err
	}
	if rel == "" {
		return nil, "", "", &os.PathError{Op: op, Path: r.Path(), Err: unix.EISDIR}
	}
	dir, base := path.Split(rel)
	d, err := r.dir(op, strings.TrimSuffix(dir, "/"), create, 0o755)
	if err != nil {
		return nil, "", "", err
	}
	return d, base, r.Join(rel), nil
}

// procFD is /proc/self/fd, opened once, or -1 without /proc: a file
// checked through an O_PATH descriptor is reopened through it, which names
// that very inode, not the path.
var procFD = sync.OnceValue(func() int {
	fd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
})

// checkRegular refuses anything but a regular file, naming a symlink.
func checkRegular(d *fsattr.Dir, base, host string, st *unix.Stat_t) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		return nil
	case unix.S_IFLNK:
		target, _ := d.Readlink(base)
		return &SymlinkError{Path: host, Target: target}
	}
	return &os.PathError{Op: "open", Path: host, Err: ErrNotRegular}
}

// openFile opens base in d with flags (O_RDONLY, O_WRONLY|O_APPEND,
// O_RDWR), only if it is a regular file; with create it makes a missing
// one with perm.
func openFile(d *fsattr.Dir, base, host string, flags int, create bool, perm fs.FileMode) (*os.File, error) {
	const always = unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	for try := 0; ; try++ {
		fd, _, err := openRegularFD(d, base, host, flags)
		if errors.Is(err, unix.ENOENT) && create && !errors.Is(err, errGone) {
			if err := fault("create", host); err != nil {
				return nil, err
			}
			fd, err := unix.Openat(d.Fd(), base, flags|always|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW, uint32(perm.Perm()))
			if err == unix.EEXIST && try < 3 {
				continue // made meanwhile: check what it is
			}
			if err != nil {
				return nil, &os.PathError{Op: "open", Path: host, Err: err}
			}
			return os.NewFile(uintptr(fd), host), nil
		}
		if err != nil {
			return nil, err
		}
		return os.NewFile(uintptr(fd), host), nil
	}
}

// errGone marks the ENOENT of a file that vanished between its check and
// its reopening (not a missing file to create).
var errGone = errors.New("confined: file gone")

// openRegularFD opens base in d with flags if it is a regular file: an
// O_PATH descriptor first, fstat, then the file reopened through
// /proc/self/fd (that very inode, not the name), or by name and checked
// to be the same inode without /proc. It returns the descriptor and what
// fstat said. A missing file is an error wrapping ENOENT.
func openRegularFD(d *fsattr.Dir, base, host string, flags int) (int, unix.Stat_t, error) {
	const always = unix.O_CLOEXEC | unix.O_NOCTTY | unix.O_NONBLOCK
	var st unix.Stat_t
	pfd, err := unix.Openat(d.Fd(), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, st, &os.PathError{Op: "open", Path: host, Err: err}
	}
	err = unix.Fstat(pfd, &st)
	if err == nil {
		err = checkRegular(d, base, host, &st)
	} else {
		err = &os.PathError{Op: "fstat", Path: host, Err: err}
	}
	if err != nil {
		unix.Close(pfd)
		return -1, st, err
	}
	fd, err := -1, error(unix.ENOENT)
	if pd := procFD(); pd >= 0 {
		fd, err = unix.Openat(pd, strconv.Itoa(pfd), flags|always, 0)
	}
	unix.Close(pfd)
	if err == unix.ENOENT {
		// No /proc: open the name again and check it is the same
		// regular file.
		fd, err = unix.Openat(d.Fd(), base, flags|always|unix.O_NOFOLLOW, 0)
		if err == nil {
			var st2 unix.Stat_t
			if ferr := unix.Fstat(fd, &st2); ferr != nil || st2.Dev != st.Dev || st2.Ino != st.Ino {
				unix.Close(fd)
				return -1, st, &os.PathError{Op: "open", Path: host, Err: fsattr.ErrChanged}
			}
		}
		if err == unix.ENOENT {
			return -1, st, &os.PathError{Op: "open", Path: host, Err: fmt.Errorf("%w: %w", errGone, err)}
		}
	}
	if err != nil {
		return -1, st, &os.PathError{Op: "open", Path: host, Err: err}
	}
	return fd, st, nil
}

// ReadFileIn reads the regular file name (one path component) of d, a
// directory opened through r (OpenDir), with Open's checks: for reading
// many files of one of debseal's directories (an audit reads a manifest
// per package) without resolving the directory again for each, and
// without an *os.File. With limit > 0 it reads at most limit bytes. A
// missing file is an error matching fs.ErrNotExist.
func (r *Root) ReadFileIn(d *fsattr.Dir, name string, limit int64) ([]byte, error) {
	host := r.Join(path.Join(d.Path, name))
	if name == "" || name == "." || name == ".." || strings.Contains(name, "/") {
		return nil, &os.PathError{Op: "open", Path: host, Err: unix.EINVAL}
	}
	fd, st, err := openRegularFD(d, name, host, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	size := st.Size + 512 // room to see the end in one more read
	if limit > 0 {
		size = min(size, limit)
	}
	buf := make([]byte, 0, size)
	for {
		if limit > 0 && int64(len(buf)) >= limit {
			return buf[:limit], nil
		}
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: host, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// OpenDir opens an existing directory for pkg/fsattr's operations (the
// manifests' flags).
func (r *Root) OpenDir(dir string) (*fsattr.Dir, error) {
	rel, err := r.clean("open", dir)
	if err != nil {
		return nil, err
	}
	return r.dir("open", rel, false, 0)
}

// MkdirAll makes dir and whatever is missing above it; the directories it
// makes under Own get perm, the others 0755. Existing ones are left as
// they are.
func (r *Root) MkdirAll(dir string, perm fs.FileMode) error {
	rel, err := r.clean("mkdir", dir)
	if err != nil {
		return err
	}
	d, err := r.dir("mkdir", rel, true, perm)
	if err != nil {
		return err
	}
	return d.Close()
}

// Open opens a regular file for reading.
func (r *Root) Open(name string) (*os.File, error) {
	d, base, host, err := r.parent("open", name, false)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return openFile(d, base, host, unix.O_RDONLY, false, 0)
}

// ReadFile reads a regular file. A missing file (or directory above it) is
// an error matching fs.ErrNotExist.
func (r *Root) ReadFile(name string) ([]byte, error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// WriteFileAtomic replaces name with data (mode perm) durably: a temporary
// file in the same directory, fsync, rename, fsync of the directory. After
// a failure or a crash at any point, name is the old file or the new one.
// Missing directories above it are made (0755). A symlink, FIFO, device or
// directory at name is an error, left in place.
func (r *Root) WriteFileAtomic(name string, data []byte, perm fs.FileMode) error {
	return r.replace(name, data, perm, true)
}

// ReplaceFile replaces name with data atomically but not durably (no
// fsync): after a crash it may be the old file, the new one or empty
// (journals that record nothing unlocked).
func (r *Root) ReplaceFile(name string, data []byte, perm fs.FileMode) error {
	return r.replace(name, data, perm, false)
}

var tmpSeq atomic.Uint64

func (r *Root) replace(name string, data []byte, perm fs.FileMode, durable bool) error {
	_, err := r.replaceWith(name, perm, durable, func(fd int, host string) (int64, error) {
		return int64(len(data)), writeAll(fd, data, host)
	})
	return err
}

// WriteFrom replaces name with what src gives, atomically and durably as
// WriteFileAtomic does, streaming (for files too big to hold in memory).
// It reads at most limit bytes: when src has more, nothing is written and
// the error matches ErrTooBig. It returns the number of bytes written.
func (r *Root) WriteFrom(name string, src io.Reader, limit int64, perm fs.FileMode) (int64, error) {
	return r.replaceWith(name, perm, true, func(fd int, host string) (int64, error) {
		return copyTo(fd, host, src, limit)
	})
}

// copyTo writes what src gives to fd, failing with ErrTooBig past limit.
func copyTo(fd int, host string, src io.Reader, limit int64) (int64, error) {
	buf := make([]byte, 64<<10)
	var n int64
	for {
		k, err := src.Read(buf)
		if k > 0 {
			if n+int64(k) > limit {
				return n, &os.PathError{Op: "write", Path: host, Err: fmt.Errorf("%w (%d bytes)", ErrTooBig, limit)}
			}
			if werr := writeAll(fd, buf[:k], host); werr != nil {
				return n, werr
			}
			n += int64(k)
		}
		if err == io.EOF {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("confined: reading what to write to %s: %w", host, err)
		}
	}
}

// replaceWith replaces name with what write puts in a temporary file
// (see WriteFileAtomic and ReplaceFile).
func (r *Root) replaceWith(name string, perm fs.FileMode, durable bool, write func(fd int, host string) (int64, error)) (int64, error) {
	d, base, host, err := r.parent("write", name, true)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	var st unix.Stat_t
	switch err := unix.Fstatat(d.Fd(), base, &st, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		if err := checkRegular(d, base, host, &st); err != nil {
			return 0, err
		}
	case unix.ENOENT:
	default:
		return 0, &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	tmp := fmt.Sprintf(".%s.tmp-%d-%d", base, os.Getpid(), tmpSeq.Add(1))
	tmpHost := filepath.Join(filepath.Dir(host), tmp)
	if err := fault("create", tmpHost); err != nil {
		return 0, err
	}
	fd, err := unix.Openat(d.Fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return 0, &os.PathError{Op: "create", Path: tmpHost, Err: err}
	}
	ok := false
	defer func() {
		if fd >= 0 {
			unix.Close(fd)
		}
		if !ok {
			unix.Unlinkat(d.Fd(), tmp, 0)
		}
	}()
	if err := fault("chmod", tmpHost); err != nil {
		return 0, err
	}
	if err := unix.Fchmod(fd, uint32(perm.Perm())); err != nil { // past the umask
		return 0, &os.PathError{Op: "chmod", Path: tmpHost, Err: err}
	}
	n, err := write(fd, tmpHost)
	if err != nil {
		return 0, err
	}
	if durable {
		if err := fault("fsync", tmpHost); err != nil {
			return 0, err
		}
		if err := unix.Fsync(fd); err != nil {
			return 0, &os.PathError{Op: "fsync", Path: tmpHost, Err: err}
		}
	}
	err = unix.Close(fd)
	fd = -1
	if err != nil {
		return 0, &os.PathError{Op: "close", Path: tmpHost, Err: err}
	}
	if err := fault("rename", host); err != nil {
		return 0, err
	}
	if err := unix.Renameat(d.Fd(), tmp, d.Fd(), base); err != nil {
		return 0, &os.PathError{Op: "rename", Path: host, Err: err}
	}
	ok = true
	if durable {
		return n, r.syncDir(d)
	}
	return n, nil
}

// WriteFiles replaces several files of one directory atomically and
// durably, with two flushes for all of them where WriteFileAtomic makes
// two for each: every temporary file is written first, then one
// syncfs(2) makes their data durable, then each is renamed over its name,
// then one fsync of the directory makes the renames durable. After a
// failure or a crash at any point, each name is its old file or its new
// one, never a partial one. The errors are per file (nil: replaced); a
// failed flush fails every file. A symlink, FIFO, device or directory at
// a name is that file's error, left in place.
func (r *Root) WriteFiles(dir string, files []FileData, perm fs.FileMode) []error {
	errs := make([]error, len(files))
	if len(files) == 0 {
		return errs
	}
	failAll := func(err error) []error {
		for i := range errs {
			if errs[i] == nil {
				errs[i] = err
			}
		}
		return errs
	}
	rel, err := r.clean("write", dir)
	if err != nil {
		return failAll(err)
	}
	d, err := r.dir("write", rel, true, 0o755)
	if err != nil {
		return failAll(err)
	}
	defer d.Close()
	dirHost := r.Join(rel)
	tmps := make([]string, len(files))
	defer func() {
		for _, t := range tmps {
			if t != "" {
				unix.Unlinkat(d.Fd(), t, 0)
			}
		}
	}()
	for i, f := range files {
		if f.Name == "" || strings.Contains(f.Name, "/") || f.Name == "." || f.Name == ".." {
			errs[i] = &os.PathError{Op: "write", Path: filepath.Join(dirHost, f.Name), Err: unix.EINVAL}
			continue
		}
		tmps[i], errs[i] = r.writeTemp(d, f.Name, filepath.Join(dirHost, f.Name), f.Data, perm)
	}
	if err := fault("fsync", dirHost); err != nil {
		return failAll(err)
	}
	if err := syncFS(d, dirHost); err != nil {
		return failAll(err)
	}
	for i, f := range files {
		if errs[i] != nil {
			continue
		}
		host := filepath.Join(dirHost, f.Name)
		if err := fault("rename", host); err != nil {
			errs[i] = err
			continue
		}
		if err := unix.Renameat(d.Fd(), tmps[i], d.Fd(), f.Name); err != nil {
			errs[i] = &os.PathError{Op: "rename", Path: host, Err: err}
			continue
		}
		tmps[i] = ""
	}
	if err := r.syncDir(d); err != nil {
		return failAll(err)
	}
	return errs
}

// syncFS flushes the filesystem that holds d (syncfs(2) needs a
// descriptor that is not O_PATH).
func syncFS(d *fsattr.Dir, host string) error {
	fd, err := unix.Openat(d.Fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: host, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Syncfs(fd); err != nil {
		return &os.PathError{Op: "syncfs", Path: host, Err: err}
	}
	return nil
}

// FileData is one file for WriteFiles: a name in its directory and the
// bytes to put there.
type FileData struct {
	Name string
	Data []byte
}

// writeTemp writes data to a new temporary file next to base in d (mode
// perm, not flushed) after checking that base is a regular file or
// absent, and returns the temporary file's name.
func (r *Root) writeTemp(d *fsattr.Dir, base, host string, data []byte, perm fs.FileMode) (string, error) {
	var st unix.Stat_t
	switch err := unix.Fstatat(d.Fd(), base, &st, unix.AT_SYMLINK_NOFOLLOW); err {
	case nil:
		if err := checkRegular(d, base, host, &st); err != nil {
			return "", err
		}
	case unix.ENOENT:
	default:
		return "", &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	tmp := fmt.Sprintf(".%s.tmp-%d-%d", base, os.Getpid(), tmpSeq.Add(1))
	tmpHost := filepath.Join(filepath.Dir(host), tmp)
	if err := fault("create", tmpHost); err != nil {
		return "", err
	}
	fd, err := unix.Openat(d.Fd(), tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, uint32(perm.Perm()))
	if err != nil {
		return "", &os.PathError{Op: "create", Path: tmpHost, Err: err}
	}
	err = fault("chmod", tmpHost)
	if err == nil {
		if e := unix.Fchmod(fd, uint32(perm.Perm())); e != nil { // past the umask
			err = &os.PathError{Op: "chmod", Path: tmpHost, Err: e}
		}
	}
	if err == nil {
		err = writeAll(fd, data, tmpHost)
	}
	if e := unix.Close(fd); e != nil && err == nil {
		err = &os.PathError{Op: "close", Path: tmpHost, Err: e}
	}
	if err != nil {
		unix.Unlinkat(d.Fd(), tmp, 0)
		return "", err
	}
	return tmp, nil
}

func writeAll(fd int, data []byte, host string) error {
	if err := fault("write", host); err != nil {
		return err
	}
	for len(data) > 0 {
		n, err := unix.Write(fd, data)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: host, Err: err}
		}
		data = data[n:]
	}
	return nil
}

// syncDir makes a rename or removal in d durable.
func (r *Root) syncDir(d *fsattr.Dir) error {
	host := r.Join(d.Path)
	if err := fault("fsync", host); err != nil {
		return err
	}
	fd, err := unix.Openat(d.Fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: host, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fsync(fd); err != nil {
		return &os.PathError{Op: "fsync", Path: host, Err: err}
	}
	return nil
}

// Append appends data to name (a log), making it with perm when missing.
// The directory must exist: a log is only written where the system keeps
// logs.
func (r *Root) Append(name string, data []byte, perm fs.FileMode) error {
	d, base, host, err := r.parent("open", name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	f, err := openFile(d, base, host, unix.O_WRONLY|unix.O_APPEND, true, perm)
	if err != nil {
		return err
	}
	if err := fault("write", host); err != nil {
		f.Close()
		return err
	}
	_, werr := f.Write(data)
	cerr := f.Close()
	return errors.Join(werr, cerr)
}

// OpenLock opens (making it when missing, and the directories above it) a
// lock file for reading and writing.
func (r *Root) OpenLock(name string, perm fs.FileMode) (*os.File, error) {
	d, base, host, err := r.parent("open", name, true)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	return openFile(d, base, host, unix.O_RDWR, true, perm)
}

// Remove removes the file name (not a directory) and makes the removal
// durable. A missing file is an error matching fs.ErrNotExist.
func (r *Root) Remove(name string) error {
	d, base, host, err := r.parent("remove", name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := fault("remove", host); err != nil {
		return err
	}
	if err := unix.Unlinkat(d.Fd(), base, 0); err != nil {
		return &os.PathError{Op: "remove", Path: host, Err: err}
	}
	return r.syncDir(d)
}

// RemoveFiles removes files (not directories) of one directory, without
// making the removals durable: after a crash some may be back, so it is
// for files whose return does no harm (records that a newer one
// supersedes). A file already gone is not an error.
func (r *Root) RemoveFiles(dir string, names []string) error {
	rel, err := r.clean("remove", dir)
	if err != nil {
		return err
	}
	d, err := r.dir("remove", rel, false, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	var errs []error
	for _, n := range names {
		host := r.Join(path.Join(rel, n))
		if n == "" || strings.Contains(n, "/") || n == "." || n == ".." {
			errs = append(errs, &os.PathError{Op: "remove", Path: host, Err: unix.EINVAL})
			continue
		}
		if err := fault("remove", host); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := unix.Unlinkat(d.Fd(), n, 0); err != nil && err != unix.ENOENT {
			errs = append(errs, &os.PathError{Op: "remove", Path: host, Err: err})
		}
	}
	return errors.Join(errs...)
}

// ReadDir lists a directory, sorted by name. A name that vanished between
// the listing and its lstat is left out.
func (r *Root) ReadDir(dir string) ([]DirEntry, error) {
	rel, err := r.clean("open", dir)
	if err != nil {
		return nil, err
	}
	d, err := r.dir("open", rel, false, 0)
	if err != nil {
		return nil, err
	}
	defer d.Close()
	host := r.Join(rel)
	fd, err := unix.Openat(d.Fd(), ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: host, Err: err}
	}
	f := os.NewFile(uintptr(fd), host)
	names, err := f.Readdirnames(-1)
	f.Close()
	if err != nil {
		return nil, err
	}
	slices.Sort(names)
	out := make([]DirEntry, 0, len(names))
	for _, n := range names {
		info, err := d.Lstat(n)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, DirEntry{Name: n, Info: info})
	}
	return out, nil
}

// Lstat describes name without following it.
func (r *Root) Lstat(name string) (fsattr.Info, error) {
	d, base, _, err := r.parent("lstat", name, false)
	if err != nil {
		return fsattr.Info{}, err
	}
	defer d.Close()
	return d.Lstat(base)
}

// Chtimes sets the access and modification times of the regular file name
// (a stamp).
func (r *Root) Chtimes(name string, atime, mtime time.Time) error {
	d, base, host, err := r.parent("chtimes", name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	var st unix.Stat_t
	if err := unix.Fstatat(d.Fd(), base, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: host, Err: err}
	}
	if err := checkRegular(d, base, host, &st); err != nil {
		return err
	}
	if err := fault("chtimes", host); err != nil {
		return err
	}
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(d.Fd(), base, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "chtimes", Path: host, Err: err}
	}
	return nil
}

// Chmod sets the permission bits of name, a regular file or a directory
// (never through a symlink).
func (r *Root) Chmod(name string, perm fs.FileMode) error {
	d, base, host, err := r.parent("chmod", name, false)
	if err != nil {
		return err
	}
	defer d.Close()
	pfd, err := unix.Openat(d.Fd(), base, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	defer unix.Close(pfd)
	var st unix.Stat_t
	if err := unix.Fstat(pfd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: host, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		if err := checkRegular(d, base, host, &st); err != nil {
			return err
		}
	}
	if err := fault("chmod", host); err != nil {
		return err
	}
	if pd := procFD(); pd >= 0 {
		err = unix.Fchmodat(pd, strconv.Itoa(pfd), uint32(perm.Perm()), 0)
	} else {
		err = unix.Fchmodat(d.Fd(), base, uint32(perm.Perm()), 0)
	}
	if err != nil {
		return &os.PathError{Op: "chmod", Path: host, Err: err}
	}
	return nil
}
