//go:build linux

package fsattr

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// Root confines path resolution to a directory, like dpkg --root.
type Root struct {
	fd   int
	Path string // absolute, as given (for messages)
	real string // the root's own path with every symlink resolved
	host bool   // the root is "/": plain resolution is the same thing
}

// OpenRoot opens the directory under which every path is resolved.
func OpenRoot(path string) (*Root, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	fd, err := unix.Open(abs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: abs, Err: err}
	}
	// The kernel's name for the root, so that a root reached through a
	// symlink (/chroot -> /srv/chroot) still tells its directories apart
	// from paths outside it.
	real, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil {
		real = abs
	}
	return &Root{fd: fd, Path: abs, real: real, host: real == "/"}, nil
}

// Close releases the root.
func (r *Root) Close() error { return unix.Close(r.fd) }

// Real is the root's own path with every symlink resolved, as the kernel
// names it (d_path of the open directory): what /proc/self/mountinfo
// prints for a mount point at the root.
func (r *Root) Real() string { return r.real }

// display joins a root-relative path to the root for messages.
func (r *Root) display(rel string) string {
	return filepath.Join(r.Path, rel)
}

// Dir is a directory inside a Root, held open so that the files in it are
// named by a single component.
type Dir struct {
	fd   int
	root *Root
	Path string // as given to OpenDir (absolute within the root)
}

// errNoOpenat2 is returned for a non-/ root on kernels without openat2.
var errNoOpenat2 = errors.New("resolving paths inside a --root needs openat2 (Linux 5.6 or later)")

// OpenDir opens dir (an absolute path within the root). Every component,
// symlinks included, resolves inside the root.
func (r *Root) OpenDir(dir string) (*Dir, error) {
	rel := strings.TrimLeft(dir, "/")
	if rel == "" {
		rel = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	}
	var fd int
	var err error
	for try := 0; try < 8; try++ {
		fd, err = unix.Openat2(r.fd, rel, &how)
		if err != unix.EAGAIN && err != unix.EINTR {
			break // EAGAIN: a concurrent rename; the kernel asks to retry
		}
	}
	if err == unix.ENOSYS {
		if !r.host {
			return nil, &os.PathError{Op: "openat2", Path: r.display(rel), Err: errNoOpenat2}
		}
		fd, err = unix.Open("/"+rel, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	}
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: r.display(rel), Err: err}
	}
	return &Dir{fd: fd, root: r, Path: "/" + strings.TrimPrefix(rel, ".")}, nil
}

// Close releases the directory.
func (d *Dir) Close() error { return unix.Close(d.fd) }

// Ident identifies the directory itself (fstat of its descriptor): two
// paths whose directories have one Ident name one directory entry, as a
// merged-/usr alias and its target do.
func (d *Dir) Ident() (Ident, error) {
	var st unix.Stat_t
	if err := unix.Fstat(d.fd, &st); err != nil {
		return Ident{}, &os.PathError{Op: "fstat", Path: d.root.display(d.Path), Err: err}
	}
	return Ident{Dev: st.Dev, Ino: st.Ino}, nil
}

func (d *Dir) display(name string) string {
	return d.root.display(filepath.Join(d.Path, name))
}

func validName(name string) bool {
	return name != "" && name != "." && name != ".." && !strings.Contains(name, "/")
}

// Lstat stats name in the directory without following it, and reads the
// immutable/append-only attributes statx reports (no open, so it is safe on
// devices and FIFOs).
func (d *Dir) Lstat(name string) (Info, error) {
	if !validName(name) {
		return Info{}, &os.PathError{Op: "lstat", Path: d.display(name), Err: unix.EINVAL}
	}
	var st unix.Statx_t
	err := unix.Statx(d.fd, name, unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT, statxMask, &st)
	if err != nil {
		return Info{}, &os.PathError{Op: "statx", Path: d.display(name), Err: err}
	}
	return infoFromStatx(&st), nil
}

// statxMask is what Lstat and OpenPath ask statx for.
const statxMask = unix.STATX_TYPE | unix.STATX_MODE | unix.STATX_NLINK | unix.STATX_UID | unix.STATX_GID |
	unix.STATX_INO | unix.STATX_SIZE | unix.STATX_MTIME | unix.STATX_CTIME

func infoFromStatx(st *unix.Statx_t) Info {
	return Info{
		Ident:      Ident{Dev: unix.Mkdev(st.Dev_major, st.Dev_minor), Ino: st.Ino},
		Mode:       uint32(st.Mode),
		Nlink:      st.Nlink,
		Uid:        st.Uid,
		Gid:        st.Gid,
		Size:       int64(st.Size),
		Mtime:      st.Mtime.Sec*1e9 + int64(st.Mtime.Nsec),
		Ctime:      st.Ctime.Sec*1e9 + int64(st.Ctime.Nsec),
		Attrs:      st.Attributes,
		AttrsKnown: st.Attributes_mask,
	}
}

func infoFromStat(st *unix.Stat_t) Info {
	return Info{
		Ident: Ident{Dev: st.Dev, Ino: st.Ino},
		Mode:  st.Mode,
		Nlink: uint32(st.Nlink),
		Uid:   st.Uid,
		Gid:   st.Gid,
		Size:  st.Size,
		Mtime: st.Mtim.Sec*1e9 + st.Mtim.Nsec,
		Ctime: st.Ctim.Sec*1e9 + st.Ctim.Nsec,
	}
}

// open opens name for the flag ioctls and for reading: read-only,
// non-blocking, never becoming our controlling terminal. Nothing but a
// regular file or a directory is ever opened for I/O: name is first opened
// with O_PATH|O_NOFOLLOW (which runs no driver code and follows no
// symlink), checked with fstat to be a regular file or directory and the
// planned inode, and only then reopened for reading through
// /proc/self/fd, which names that very inode, not the path: a device or
// FIFO swapped in after the check is never opened. Without /proc the
// path is opened again and checked once more (the window is then the
// time between two syscalls).
func (d *Dir) open(name string, want Ident) (int, Info, error) {
	if !validName(name) {
		return -1, Info{}, &os.PathError{Op: "open", Path: d.display(name), Err: unix.EINVAL}
	}
	pfd, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, Info{}, &os.PathError{Op: "open", Path: d.display(name), Err: err}
	}
	defer unix.Close(pfd)
	info, err := d.check(pfd, name, want)
	if err != nil {
		return -1, Info{}, err
	}
	const flags = readFlags
	fd, err := -1, error(unix.ENOENT)
	if pd := procFD(); pd >= 0 {
		fd, err = unix.Openat(pd, strconv.Itoa(pfd), flags, 0)
	}
	if err == unix.ENOENT {
		fd, err = unix.Openat(d.fd, name, flags|unix.O_NOFOLLOW, 0)
		if err == nil {
			if _, err := d.check(fd, name, info.Ident); err != nil {
				unix.Close(fd)
				return -1, Info{}, err
			}
		}
	}
	if err != nil {
		return -1, Info{}, &os.PathError{Op: "open", Path: d.display(name), Err: err}
	}
	return fd, info, nil
}

// readFlags open a checked inode for reading: read-only, non-blocking,
// never becoming our controlling terminal.
const readFlags = unix.O_RDONLY | unix.O_NONBLOCK | unix.O_CLOEXEC | unix.O_NOCTTY

// procFD is /proc/self/fd, opened once (the threads of a process share
// one descriptor table, so it names every descriptor of this process),
// or -1 without /proc. Opening relative to it walks one component instead
// of four.
var procFD = sync.OnceValue(func() int {
	fd, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1
	}
	return fd
})

// check fstats fd and refuses anything but a regular file or directory, and
// any inode but want when want is set.
func (d *Dir) check(fd int, name string, want Ident) (Info, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return Info{}, &os.PathError{Op: "fstat", Path: d.display(name), Err: err}
	}
	info := infoFromStat(&st)
	if !info.IsRegular() && !info.IsDir() {
		return Info{}, &os.PathError{Op: "open", Path: d.display(name), Err: ErrNotRegular}
	}
	if !want.IsZero() && info.Ident != want {
		return Info{}, &os.PathError{Op: "open", Path: d.display(name), Err: ErrChanged}
	}
	return info, nil
}

func (d *Dir) unsupported(fd int, name string, err error) error {
	return &UnsupportedError{Path: d.display(name), FS: fsTypeOf(fd), Err: err}
}

// fsTypeOf names the filesystem fd is on: the type mountinfo gives its
// mount ("vfat", "fuse.sshfs"), else the statfs magic number's name.
func fsTypeOf(fd int) string {
	var stx unix.Statx_t
	if unix.Statx(fd, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx) == nil && stx.Mask&unix.STATX_MNT_ID != 0 {
		if t := mountType(stx.Mnt_id); t != "" {
			return t
		}
	}
	var sfs unix.Statfs_t
	if unix.Fstatfs(fd, &sfs) == nil {
		return fsName(int64(sfs.Type))
	}
	return "unknown"
}

// mountType finds the filesystem type of mount id in /proc/self/mountinfo
// ("<id> <parent> ... - <fstype> <source> <options>").
func mountType(id uint64) string {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return ""
	}
	prefix := fmt.Sprintf("%d ", id)
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, prefix) {
			continue
		}
		if _, after, ok := strings.Cut(line, " - "); ok {
			if f := strings.Fields(after); len(f) > 0 {
				return f[0]
			}
		}
	}
	return ""
}

// isUnsupported: ENOTTY (no fileattr operations: vfat, ramfs, tmpfs
// before Linux 6.0, most FUSE filesystems), EOPNOTSUPP (the filesystem
// refuses this flag, or this inode), ENOSYS (some FUSE servers). EINVAL is
// not among them: it means a bad request on a filesystem that has flags,
// and is reported as the error it is.
func isUnsupported(err error) bool {
	return err == unix.ENOTTY || err == unix.EOPNOTSUPP || err == unix.ENOSYS
}

// Flags reads the inode flags of name (which must be the planned inode
// when want is set).
func (d *Dir) Flags(name string, want Ident) (uint32, error) {
	fd, _, err := d.open(name, want)
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return d.flagsOf(fd, name)
}

// flagsOf reads the inode flags of fd, an open descriptor of name in d.
func (d *Dir) flagsOf(fd int, name string) (uint32, error) {
	v, err := getFlags(fd)
	if err != nil {
		if isUnsupported(err) {
			return 0, d.unsupported(fd, name, err)
		}
		return 0, &os.PathError{Op: "ioctl(FS_IOC_GETFLAGS)", Path: d.display(name), Err: err}
	}
	return v, nil
}

// Set turns flag on or off on name, which must be a regular file or a
// directory and, when want is set, the planned inode. No ioctl changes
// anything when the flag is already as wanted.
func (d *Dir) Set(name string, want Ident, flag uint32, on bool) (Result, error) {
	fd, info, err := d.open(name, want)
	if err != nil {
		return Result{}, err
	}
	defer unix.Close(fd)
	v, err := getFlags(fd)
	if err != nil {
		if isUnsupported(err) {
			return Result{}, d.unsupported(fd, name, err)
		}
		return Result{}, &os.PathError{Op: "ioctl(FS_IOC_GETFLAGS)", Path: d.display(name), Err: err}
	}
	nv := v &^ flag
	if on {
		nv = v | flag
	}
	if nv == v {
		return Result{Flags: v, Info: info}, nil
	}
	if err := setFlags(fd, nv); err != nil {
		if isUnsupported(err) {
			return Result{}, d.unsupported(fd, name, err)
		}
		if err == unix.EPERM {
			return Result{}, &os.PathError{Op: "ioctl(FS_IOC_SETFLAGS)", Path: d.display(name),
				Err: fmt.Errorf("%w (changing the flag needs CAP_LINUX_IMMUTABLE)", err)}
		}
		return Result{}, &os.PathError{Op: "ioctl(FS_IOC_SETFLAGS)", Path: d.display(name), Err: err}
	}
	return Result{Changed: true, Flags: nv, Info: info}, nil
}

// Open opens name for reading with the same guarantees as Set: never a
// symlink, device, FIFO or socket, and the planned inode when want is set.
func (d *Dir) Open(name string, want Ident) (*os.File, error) {
	fd, _, err := d.open(name, want)
	if err != nil {
		return nil, err
	}
	// The descriptor is non-blocking; for regular files that changes
	// nothing, and os.File handles EAGAIN for anything else.
	return os.NewFile(uintptr(fd), d.display(name)), nil
}

// Readlink returns the target of the symlink name, as stored (never
// resolved).
func (d *Dir) Readlink(name string) (string, error) {
	if !validName(name) {
		return "", &os.PathError{Op: "readlink", Path: d.display(name), Err: unix.EINVAL}
	}
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(d.fd, name, buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: d.display(name), Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", &os.PathError{Op: "readlink", Path: d.display(name), Err: unix.ENAMETOOLONG}
		}
	}
}

// RawFile is a regular file opened by OpenRaw for reading with plain
// read(2): no os.File, so no runtime poller registration (two failing
// syscalls per file that cost the audit 15% on this machine's
// paravirtualised kernel).
type RawFile struct {
	fd   int
	d    *Dir
	name string // within d: the full name is built for errors only
	Info Info   // fstat of the open file
}

// OpenRaw opens name with the same guarantees as Open (never a symlink,
// device, FIFO or socket, the planned inode when want is set) and refuses
// directories.
func (d *Dir) OpenRaw(name string, want Ident) (*RawFile, error) {
	fd, info, err := d.open(name, want)
	if err != nil {
		return nil, err
	}
	if !info.IsRegular() {
		unix.Close(fd)
		return nil, &os.PathError{Op: "open", Path: d.display(name), Err: ErrNotRegular}
	}
	return &RawFile{fd: fd, d: d, name: name, Info: info}, nil
}

// Read reads from the file; 0 bytes is io.EOF.
func (f *RawFile) Read(p []byte) (int, error) {
	for {
		n, err := unix.Read(f.fd, p)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, &os.PathError{Op: "read", Path: f.d.display(f.name), Err: err}
		}
		if n == 0 && len(p) > 0 {
			return 0, io.EOF
		}
		return n, nil
	}
}

// Close closes the descriptor.
func (f *RawFile) Close() error { return unix.Close(f.fd) }

// PathFile is one directory entry opened with O_PATH|O_NOFOLLOW: a
// handle on the inode the name had (the symlink itself when it is one)
// that runs no driver code and reads nothing. Info comes from statx of
// the handle, so it is lstat's answer and the inode a later OpenRaw or
// Flags reopens, with no second lookup of the name and no fstat to check
// that the two agree. For a path that is about to be read this is one
// system call fewer than Lstat followed by OpenRaw; for one that is only
// stat'ed it is two more (open and close), so callers choose.
type PathFile struct {
	fd   int
	d    *Dir
	name string
	Info Info
}

// OpenPath opens name for inspection (see PathFile).
func (d *Dir) OpenPath(name string) (*PathFile, error) {
	if !validName(name) {
		return nil, &os.PathError{Op: "open", Path: d.display(name), Err: unix.EINVAL}
	}
	fd, err := unix.Openat(d.fd, name, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: d.display(name), Err: err}
	}
	var st unix.Statx_t
	err = unix.Statx(fd, "", unix.AT_EMPTY_PATH|unix.AT_SYMLINK_NOFOLLOW|unix.AT_STATX_SYNC_AS_STAT, statxMask, &st)
	if err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "statx", Path: d.display(name), Err: err}
	}
	return &PathFile{fd: fd, d: d, name: name, Info: infoFromStatx(&st)}, nil
}

// Close releases the handle (a RawFile opened from it stays open).
func (p *PathFile) Close() error { return unix.Close(p.fd) }

// reopen opens the handle's inode for reading through /proc/self/fd (see
// Dir.open); only a regular file or a directory is ever reopened.
func (p *PathFile) reopen() (int, error) {
	if !p.Info.IsRegular() && !p.Info.IsDir() {
		return -1, &os.PathError{Op: "open", Path: p.d.display(p.name), Err: ErrNotRegular}
	}
	fd, err := -1, error(unix.ENOENT)
	if pd := procFD(); pd >= 0 {
		fd, err = unix.Openat(pd, strconv.Itoa(p.fd), readFlags, 0)
	}
	if err == unix.ENOENT {
		// No /proc: open the name again and check it is still the
		// handle's inode, as Dir.open does.
		fd, err = unix.Openat(p.d.fd, p.name, readFlags|unix.O_NOFOLLOW, 0)
		if err == nil {
			if _, err := p.d.check(fd, p.name, p.Info.Ident); err != nil {
				unix.Close(fd)
				return -1, err
			}
		}
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: p.d.display(p.name), Err: err}
	}
	return fd, nil
}

// OpenRaw opens the handle's regular file for reading: the very inode
// Info describes, never a device or FIFO swapped in for the name since.
func (p *PathFile) OpenRaw() (*RawFile, error) {
	if !p.Info.IsRegular() {
		return nil, &os.PathError{Op: "open", Path: p.d.display(p.name), Err: ErrNotRegular}
	}
	fd, err := p.reopen()
	if err != nil {
		return nil, err
	}
	return &RawFile{fd: fd, d: p.d, name: p.name, Info: p.Info}, nil
}

// Flags reads the inode flags of the handle's regular file or directory.
func (p *PathFile) Flags() (uint32, error) {
	fd, err := p.reopen()
	if err != nil {
		return 0, err
	}
	defer unix.Close(fd)
	return p.d.flagsOf(fd, p.name)
}

// Readlink returns the target of the handle's symlink, as stored.
func (p *PathFile) Readlink() (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(p.fd, "", buf)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: p.d.display(p.name), Err: err}
		}
		if n < size {
			return string(buf[:n]), nil
		}
		if size >= 1<<16 {
			return "", &os.PathError{Op: "readlink", Path: p.d.display(p.name), Err: unix.ENAMETOOLONG}
		}
	}
}

// Real returns the directory's own path within the root, every symlink on
// the way resolved (inside the root): /bin on a merged-/usr system is
// /usr/bin. The kernel names the open directory; nothing is resolved again.
func (d *Dir) Real() (string, error) {
	host, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(d.fd))
	if err != nil {
		return "", &os.PathError{Op: "readlink", Path: d.display("."), Err: err}
	}
	if d.root.host {
		return host, nil
	}
	rel, ok := strings.CutPrefix(host, d.root.real)
	if !ok || (rel != "" && rel[0] != '/') {
		return "", &os.PathError{Op: "resolve", Path: d.display("."), Err: fmt.Errorf("resolved to %s, outside the root", host)}
	}
	if rel == "" {
		rel = "/"
	}
	return rel, nil
}
