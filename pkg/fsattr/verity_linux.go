//go:build linux

package fsattr

import (
	"fmt"
	"os"
	"unsafe"

	"golang.org/x/sys/unix"
)

// fs-verity (Documentation/filesystems/fsverity.rst): once enabled on a
// regular file, the kernel refuses every open for writing (EPERM, also for
// root, also with the immutable flag lifted), checks every page read
// against the file's Merkle tree, and returns the file's digest in
// constant time. A verity file can still be replaced by rename, which is
// how dpkg installs files.

// EnableVerity enables fs-verity (SHA-256, 4096-byte blocks, no salt) on
// name, a regular file and, when want is set, the planned inode. The
// kernel reads the whole file to build its Merkle tree. It reports
// whether this call enabled it (false when the file already had it). The
// file must not carry the immutable or append-only flag (EPERM) nor be
// open for writing anywhere (ETXTBSY). A filesystem without fs-verity
// (no kernel support, an ext4 without the verity feature, tmpfs, xfs…)
// gives an *UnsupportedError.
func (d *Dir) EnableVerity(name string, want Ident) (bool, error) {
	fd, info, err := d.open(name, want)
	if err != nil {
		return false, err
	}
	defer unix.Close(fd)
	if !info.IsRegular() {
		return false, &os.PathError{Op: "ioctl(FS_IOC_ENABLE_VERITY)", Path: d.display(name), Err: ErrNotRegular}
	}
	arg := unix.FsverityEnableArg{Version: 1, Hash_algorithm: unix.FS_VERITY_HASH_ALG_SHA256, Block_size: VerityBlockSize}
	for {
		_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.FS_IOC_ENABLE_VERITY, uintptr(unsafe.Pointer(&arg)))
		switch {
		case errno == 0:
			return true, nil
		case errno == unix.EINTR:
			// Building the tree of a large file can be interrupted
			// by a signal; the kernel leaves the file as it was.
			continue
		case errno == unix.EEXIST:
			return false, nil
		case verityUnsupported(errno):
			return false, d.unsupported(fd, name, errno)
		default:
			return false, &os.PathError{Op: "ioctl(FS_IOC_ENABLE_VERITY)", Path: d.display(name), Err: verityErr(errno)}
		}
	}
}

// verityUnsupported: the errors that mean this filesystem (not this file)
// cannot have fs-verity with debseal's parameters: no ioctl (ENOTTY), no
// support in the kernel or filesystem (EOPNOTSUPP), no SHA-256 in the
// kernel's crypto (ENOPKG), or a Merkle block size the filesystem does
// not take (EINVAL: debseal's arguments are constant, so it is a property
// of the filesystem, such as an ext4 with 1024-byte blocks).
func verityUnsupported(e unix.Errno) bool {
	return e == unix.ENOTTY || e == unix.EOPNOTSUPP || e == unix.ENOSYS || e == unix.ENOPKG || e == unix.EINVAL
}

// verityErr explains the errors a caller can act on.
func verityErr(e unix.Errno) error {
	switch e {
	case unix.EPERM:
		return fmt.Errorf("%w (the file is immutable or append-only)", e)
	case unix.ETXTBSY:
		return fmt.Errorf("%w (the file is open for writing)", e)
	}
	return e
}

// MeasureVerity returns the fs-verity digest of name (a regular file and,
// when want is set, the planned inode) as the kernel keeps it: no byte of
// the file is read. A file without fs-verity gives ErrNoVerity; a digest
// that is not SHA-256 is an error.
func (d *Dir) MeasureVerity(name string, want Ident) ([32]byte, error) {
	fd, _, err := d.open(name, want)
	if err != nil {
		return [32]byte{}, err
	}
	defer unix.Close(fd)
	return measure(fd, d.display(name))
}

// MeasureVerity is Dir.MeasureVerity through the handle (the inode the
// handle was opened on, reopened for reading).
func (p *PathFile) MeasureVerity() ([32]byte, error) {
	fd, err := p.reopen()
	if err != nil {
		return [32]byte{}, err
	}
	defer unix.Close(fd)
	return measure(fd, p.d.display(p.name))
}

func measure(fd int, path string) ([32]byte, error) {
	// struct fsverity_digest: __u16 digest_algorithm, __u16 digest_size
	// (in: room, out: length), then the digest.
	var buf [4 + 64]byte
	*(*uint16)(unsafe.Pointer(&buf[2])) = 64
	var out [32]byte
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), unix.FS_IOC_MEASURE_VERITY, uintptr(unsafe.Pointer(&buf[0])))
	switch {
	case errno == unix.ENODATA:
		return out, &os.PathError{Op: "ioctl(FS_IOC_MEASURE_VERITY)", Path: path, Err: ErrNoVerity}
	case errno != 0:
		return out, &os.PathError{Op: "ioctl(FS_IOC_MEASURE_VERITY)", Path: path, Err: errno}
	}
	alg := *(*uint16)(unsafe.Pointer(&buf[0]))
	size := *(*uint16)(unsafe.Pointer(&buf[2]))
	if alg != unix.FS_VERITY_HASH_ALG_SHA256 || size != 32 {
		return out, &os.PathError{Op: "ioctl(FS_IOC_MEASURE_VERITY)", Path: path,
			Err: fmt.Errorf("digest algorithm %d of %d bytes, not SHA-256", alg, size)}
	}
	copy(out[:], buf[4:36])
	return out, nil
}
