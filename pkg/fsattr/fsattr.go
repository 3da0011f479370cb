// Package fsattr reads and changes the inode flags that chattr(1) shows,
// the immutable flag above all, on one file at a time and safely: it never
// follows a symlink, never opens a device, FIFO or socket on purpose, and
// never changes a file other than the inode the caller planned.
//
// Paths are resolved inside a Root (openat2 with RESOLVE_IN_ROOT), so an
// absolute symlink inside a --root sandbox (lib -> /usr/lib) resolves within
// the sandbox and never reaches the host's files. Directories are opened
// once (Dir) and files are then named by one component, which also pins the
// parent against rename races.
//
// What to lock and in which order is pkg/seal's business, not this one's.
package fsattr

import (
	"errors"
	"fmt"
)

// Inode flags (linux/fs.h); x/sys does not export them.
const (
	Immutable  uint32 = 0x10 // FS_IMMUTABLE_FL, chattr +i
	AppendOnly uint32 = 0x20 // FS_APPEND_FL, chattr +a
)

var (
	// ErrNotSupported: the filesystem has no inode flags (vfat, some FUSE),
	// or this system is not Linux. Match with errors.Is.
	ErrNotSupported = errors.New("fsattr: inode flags not supported")
	// ErrNotRegular: the path is a symlink, device, FIFO or socket.
	ErrNotRegular = errors.New("fsattr: not a regular file or directory")
	// ErrChanged: the path no longer names the inode the caller planned.
	ErrChanged = errors.New("fsattr: file changed since it was planned")
)

// VerityBlockSize and the hash are what debseal enables verity with (the
// digest pkg/verity computes for manifests uses the same parameters).
const VerityBlockSize = 4096

// ErrNoVerity: the file does not have fs-verity enabled (ENODATA from
// FS_IOC_MEASURE_VERITY).
var ErrNoVerity = errors.New("fsattr: fs-verity is not enabled on the file")

// Ident identifies an inode.
type Ident struct{ Dev, Ino uint64 }

// IsZero reports whether id is unset (no identity check wanted).
func (id Ident) IsZero() bool { return id == Ident{} }

// Info is what lstat tells about a path, plus the flag attributes statx
// reports without opening the file.
type Info struct {
	Ident
	Mode       uint32 // st_mode: type and permission bits
	Nlink      uint32
	Uid, Gid   uint32
	Size       int64
	Mtime      int64 // nanoseconds since the epoch
	Ctime      int64 // nanoseconds since the epoch
	Attrs      uint64
	AttrsKnown uint64 // the attribute bits the filesystem reports (statx attributes_mask)
}

const (
	sIFMT  = 0o170000
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sIFLNK = 0o120000

	attrImmutable = 0x10     // STATX_ATTR_IMMUTABLE
	attrAppend    = 0x20     // STATX_ATTR_APPEND
	attrVerity    = 0x100000 // STATX_ATTR_VERITY
)

// IsRegular reports a regular file.
func (i Info) IsRegular() bool { return i.Mode&sIFMT == sIFREG }

// IsDir reports a directory.
func (i Info) IsDir() bool { return i.Mode&sIFMT == sIFDIR }

// IsSymlink reports a symbolic link.
func (i Info) IsSymlink() bool { return i.Mode&sIFMT == sIFLNK }

// Immutable reports the immutable flag as statx saw it; known is false when
// the filesystem does not report it (then open and ask with Dir.Flags).
func (i Info) Immutable() (set, known bool) {
	return i.Attrs&attrImmutable != 0, i.AttrsKnown&attrImmutable != 0
}

// SetImmutable records that the immutable flag is now on or off, so that
// an Info kept by a caller never claims the state from before the
// caller's own change (a rollback that trusted the old state would skip
// every file it must put back).
func (i *Info) SetImmutable(on bool) {
	i.AttrsKnown |= attrImmutable
	if on {
		i.Attrs |= attrImmutable
	} else {
		i.Attrs &^= attrImmutable
	}
}

// Verity reports fs-verity as statx saw it; known is false when the
// filesystem does not report the attribute.
func (i Info) Verity() (set, known bool) {
	return i.Attrs&attrVerity != 0, i.AttrsKnown&attrVerity != 0
}

// SetVerity records that fs-verity is now enabled (it is never disabled).
func (i *Info) SetVerity() {
	i.AttrsKnown |= attrVerity
	i.Attrs |= attrVerity
}

// AppendOnly reports the append-only flag as statx saw it.
func (i Info) AppendOnly() (set, known bool) {
	return i.Attrs&attrAppend != 0, i.AttrsKnown&attrAppend != 0
}

// Result is the outcome of a Set.
type Result struct {
	Changed bool   // an ioctl changed the flags
	Flags   uint32 // the flags now
	Info    Info   // fstat of the open file before the change
}

// UnsupportedError says which filesystem lacks flag support.
type UnsupportedError struct {
	Path string
	FS   string // "vfat", "nfs", or the magic number in hex
	Err  error
}

func (e *UnsupportedError) Error() string {
	return fmt.Sprintf("fsattr: %s: inode flags not supported on %s filesystem: %v", e.Path, e.FS, e.Err)
}

// Is makes errors.Is(err, ErrNotSupported) true.
func (e *UnsupportedError) Is(target error) bool { return target == ErrNotSupported }

func (e *UnsupportedError) Unwrap() error { return e.Err }

// fsNames maps statfs f_type magic numbers (linux/magic.h) to names.
var fsNames = map[int64]string{
	0xEF53:     "ext2/3/4",
	0x58465342: "xfs",
	0x9123683E: "btrfs",
	0x01021994: "tmpfs",
	0x4d44:     "vfat",
	0x2011BAB0: "exfat",
	0x5346544e: "ntfs",
	0x7366746e: "ntfs3",
	0x794c7630: "overlayfs",
	0x6969:     "nfs",
	0x65735546: "fuse",
	0x2fc12fc1: "zfs",
	0xF2F52010: "f2fs",
	0x73717368: "squashfs",
	0x9fa0:     "proc",
	0x62656572: "sysfs",
	0x858458f6: "ramfs",
	0x3153464a: "jfs",
	0x52654973: "reiserfs",
	0xFE534D42: "smb2",
	0xFF534D42: "cifs",
	0x24051905: "ubifs",
	0x9660:     "iso9660",
	0x15013346: "udf",
	0xca451a4e: "bcachefs",
}

func fsName(magic int64) string {
	if n, ok := fsNames[magic]; ok {
		return n
	}
	return fmt.Sprintf("0x%x", magic)
}
