// Package deb reads Debian binary packages (.deb files, deb(5)) without
// dpkg: the ar container, the control member (control paragraph, conffiles,
// md5sums, maintainer scripts, triggers) and the data member's file list,
// with optional per-file SHA-256 and MD5.
//
// It owns the archive format only. What the fields mean for locking belongs
// to pkg/policy; the line formats inside the control member are parsed by
// pkg/debfmt and the control paragraph by pkg/deb822.
//
// The reader follows dpkg-deb where the difference would change the file
// list: members in deb(5)'s order (debian-binary 2.x, then control.tar with
// no, gz, xz or zst compression, then data.tar with no, gz, xz, zst, bz2 or
// lzma compression), members starting with '_' skipped, members after
// data.tar ignored, the tar entry types dpkg knows (no PAX headers, no
// sparse files), and only the first xz stream of a member (dpkg's decoder
// stops there). It is stricter where dpkg's leniency could only hide an
// attack or a broken archive: paths that could leave the root ("..",
// absolute names) and garbage in ar size fields are errors, and a control
// member needs exactly one paragraph with a Package field.
//
// ReadInfo reads the control member only (the fast path for the dpkg
// wrapper); WalkData streams the data member's entries; Walk does both in
// one pass; Reader gives the members themselves, like archive/tar.
//
// Reading is streaming: memory stays bounded whatever the archive size, and
// decompression is bounded by Options limits so that a small hostile file
// cannot make the reader run for ever (ErrLimit). Malformed input is an
// ErrFormat error naming the file, the member and the byte offset; the
// reader never panics on input.
package deb

import (
	"errors"
	"fmt"
	"io/fs"
	"runtime"
	"time"

	"github.com/debseal/debseal/pkg/deb822"
	"github.com/debseal/debseal/pkg/debfmt"
)

// Sentinel errors, for errors.Is. Every error the package returns for bad
// input is an *Error that matches one of them.
var (
	// ErrFormat: the file is not a well-formed .deb (bad magic, bad header,
	// truncated member, corrupt compressed data, bad tar, unsafe path...).
	ErrFormat = errors.New("malformed archive")
	// ErrUnsupported: well-formed, but uses something this package does
	// not support: what dpkg refuses too (a debian-binary other than 2.x,
	// an unknown compression, PAX headers, sparse files), and xz filter
	// chains other than LZMA2 alone (which dpkg-deb never writes).
	ErrUnsupported = errors.New("unsupported")
	// ErrLimit: a limit in Options was reached (decompression bomb,
	// oversize control member).
	ErrLimit = errors.New("limit exceeded")
	// ErrInsecurePath: a tar entry or hard link target with ".." or an
	// absolute name. Such errors match ErrFormat too.
	ErrInsecurePath = errors.New("insecure path")
)

// Error describes a problem with one .deb: which file, which member, where.
type Error struct {
	File   string // the name given to the reader (usually the path)
	Member string // ar member, e.g. "data.tar.xz"; empty for the ar layer itself
	Offset int64  // byte offset in the .deb of the header or member concerned; -1 if none
	Path   string // tar entry inside the member, if any
	Err    error  // wraps one of the sentinels
}

func (e *Error) Error() string {
	s := "deb: " + orInput(e.File)
	if e.Member != "" {
		s += ": " + e.Member
	}
	if e.Offset >= 0 {
		if e.Member != "" {
			s += fmt.Sprintf(" (at offset %d)", e.Offset)
		} else {
			s += fmt.Sprintf(": at offset %d", e.Offset)
		}
	}
	if e.Path != "" {
		s += ": " + e.Path
	}
	return s + ": " + e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

func orInput(name string) string {
	if name == "" {
		return "<input>"
	}
	return name
}

// Info is what the control member says about a package, read without
// decompressing the data member.
type Info struct {
	// Control is the control paragraph as written; the four fields after
	// it are copied from it, MultiArch being "no" when absent as dpkg
	// reads it.
	Control                                   *deb822.Paragraph // the control paragraph
	Package, Version, Architecture, MultiArch string
	Conffiles                                 []debfmt.Conffile // nil if the package has no conffiles file
	MD5Sums                                   []debfmt.Sum      // from the md5sums control file (paths absolute); nil if absent
	Scripts                                   map[string][]byte // "preinst", "postinst", "prerm", "postrm", "config" → contents (only those present)
	Triggers                                  []debfmt.Trigger  // parsed triggers control file; nil if absent
	ControlFiles                              []string          // names of all entries in control.tar, in order ("./" removed, the root entry skipped)

	Format         string         // debian-binary version, e.g. "2.0"
	ControlMember  string         // e.g. "control.tar.xz"
	ControlSize    int64          // compressed size of the control member
	DataMember     string         // e.g. "data.tar.xz"
	DataSize       int64          // compressed size of the data member
	ControlEntries []ControlEntry // one per ControlFiles name, with what dpkg-deb -I shows
	// Warnings lists malformed lines of md5sums, conffiles and triggers
	// (each a *debfmt.LineError); the well-formed lines are still used.
	Warnings []error
}

// ControlEntry is one entry of control.tar, as dpkg-deb --info lists it.
type ControlEntry struct {
	Name        string // "postinst"
	Type        EntryType
	Mode        fs.FileMode // permission and setuid/setgid/sticky bits
	Size        int64
	Lines       int    // newline characters, for regular files
	Interpreter string // the "#!" line of a script, without "#!"; empty if none
}

// scriptNames are the maintainer scripts Info.Scripts can hold.
var scriptNames = []string{"preinst", "postinst", "prerm", "postrm", "config"}

// EntryType is the type of a data member entry, as dpkg sees it.
type EntryType int

// Entry types.
const (
	TypeFile     EntryType = iota // regular file
	TypeDir                       // directory
	TypeSymlink                   // symbolic link
	TypeHardlink                  // hard link to an earlier entry (Linkname)
	TypeOther                     // character or block device, FIFO
)

func (t EntryType) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeHardlink:
		return "hardlink"
	case TypeOther:
		return "other"
	}
	return fmt.Sprintf("EntryType(%d)", int(t))
}

// Entry is one entry of the data member.
type Entry struct {
	Path     string      // absolute and clean: "./usr/bin/x" is "/usr/bin/x", the root is "/"
	Type     EntryType   // as dpkg sees it
	Typeflag byte        // the tar type flag (tells devices from FIFOs among TypeOther)
	Mode     fs.FileMode // permission and setuid/setgid/sticky bits (fs.ModeSetuid...), no type bits
	Uid, Gid int
	Uname    string
	Gname    string
	Size     int64 // bytes of content: regular files only (0 for hard links, which have none of their own)
	ModTime  time.Time
	Linkname string // symlink target as stored; hard link target as a clean absolute path
	Devmajor int64  // devices only
	Devminor int64
	Hashed   bool     // SHA256, MD5 and Verity are set (Options.Hashes and a regular file)
	SHA256   [32]byte // of the content
	MD5      [16]byte // of the content
	Verity   [32]byte // the content's fs-verity digest (pkg/verity)
}

// Options tune WalkData and the limits of every reader. The zero value is
// the defaults.
type Options struct {
	// Hashes computes SHA-256, MD5 and the fs-verity digest of every
	// regular file while reading.
	Hashes bool

	// MaxExpansion bounds how much a member may expand when decompressed:
	// at most MaxExpansion times its compressed size (or MinExpansionLimit,
	// whichever is larger). Real packages stay well under 100; a
	// decompression bomb does not. 0 means DefaultMaxExpansion; negative
	// means no ratio limit.
	MaxExpansion int64
	// MaxDataSize bounds the decompressed data member in bytes. 0 means
	// DefaultMaxDataSize; negative means no limit.
	MaxDataSize int64
	// MaxControlSize bounds the control member in bytes, compressed and
	// decompressed (it is read into memory). 0 means DefaultMaxControlSize;
	// negative means no limit.
	MaxControlSize int64

	// Concurrency is how many goroutines may decompress one member at a
	// time (multi-block xz members are decoded a block per goroutine). 0
	// means min(GOMAXPROCS, 4); 1 still overlaps decompression with tar
	// parsing and hashing.
	Concurrency int
}

// Default limits.
const (
	DefaultMaxExpansion   = 1000
	MinExpansionLimit     = 64 << 20 // below this output size the ratio is not checked
	DefaultMaxDataSize    = 64 << 30
	DefaultMaxControlSize = 64 << 20
)

func (o Options) maxExpansion() int64 {
	if o.MaxExpansion == 0 {
		return DefaultMaxExpansion
	}
	return o.MaxExpansion
}

func (o Options) maxData() int64 {
	if o.MaxDataSize == 0 {
		return DefaultMaxDataSize
	}
	return o.MaxDataSize
}

func (o Options) maxControl() int64 {
	if o.MaxControlSize == 0 {
		return DefaultMaxControlSize
	}
	return o.MaxControlSize
}

func (o Options) concurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return min(runtime.GOMAXPROCS(0), 4)
}
