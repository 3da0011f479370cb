// Package audit checks the files of installed packages against everything
// known about them — dpkg's md5sums and Conffiles hashes, debseal's
// manifests (pkg/manifest: SHA-256, type, mode, owner, symlink target),
// dpkg's statoverrides and path filters, and debseal's lock policy — and
// streams typed findings to a callback, never stopping at the first one.
//
// It reads only: no flag, file or database is changed. What it keeps for
// the next audit — the incremental cache, and its sightings of sealed
// files locked (pkg/seen) — the caller saves. Rendering findings (text,
// dpkg --verify lines, JSON, Prometheus) is the CLI's job.
package audit

import (
	"fmt"
	"strings"
	"syscall"

	"github.com/debseal/debseal/pkg/shadow"
	"time"
)

// Kind classifies a finding.
type Kind uint8

// Kinds of findings. Excluded is informational: it is not counted as a
// finding and does not change the exit status.
const (
	Missing             Kind = iota // a listed path is absent
	Excluded                        // absent, but dpkg's path-exclude lets it be (informational)
	MD5                             // content differs from the package's md5sums
	SHA256                          // content differs from debseal's manifest
	Conffile                        // a conffile differs from its status Conffiles hash (--conffiles)
	FileType                        // wrong file type (a symlink where a file belongs…)
	Mode                            // permission bits differ (manifest or statoverride)
	Owner                           // owning user differs
	Group                           // owning group differs
	LinkTarget                      // symlink target differs from the manifest
	NotLocked                       // policy locks this sealed file, but it is not immutable
	UnexpectedImmutable             // immutable, but policy does not lock it
	AppendOnly                      // carries the append-only flag (debseal never sets it)
	Unreadable                      // could not be examined (permission, I/O error)
	BadMD5Sums                      // a malformed line in dpkg's md5sums file
	BadManifest                     // a manifest that does not parse or fails its checksum
	NoManifest                      // a sealed package has no manifest for its installed version
	ForeignLink                     // a sealed file's inode has a hard link no package path accounts for (never locked)
	CapableService                  // capability guard on, but a running service still holds CAP_LINUX_IMMUTABLE (Path is its unit)
	Shadowed                        // a mount below the root hides sealed files (pkg/shadow)
	Lifted                          // seen locked, found mutable, and no dpkg run debseal knows of unlocked it

	// TamperedBeforeUpgrade: a dpkg run found a sealed file tampered
	// just before it was to replace it (pkg/evidence keeps the record
	// and a copy); reported until an admin clears it.
	TamperedBeforeUpgrade
	// Verity: the fs-verity digest the kernel keeps for a file
	// (FS_IOC_MEASURE_VERITY) differs from its manifest's.
	Verity
	// VerityLost: a sealed regular file without fs-verity on a
	// filesystem where locks enable it: replaced outside dpkg (dpkg's
	// files get it at the relock), or it could not take it (the lock
	// warned).
	VerityLost
	NumKinds
)

var kindNames = [NumKinds]string{"missing", "excluded", "md5", "sha256", "conffile", "type", "mode", "owner", "group",
	"link-target", "not-locked", "unexpected-immutable", "append-only", "unreadable", "md5sums-corrupt", "manifest-corrupt",
	"no-manifest", "foreign-link", "capable-service", "shadowed", "lifted", "tampered-before-upgrade", "verity", "verity-lost"}

func (k Kind) String() string {
	if k < NumKinds {
		return kindNames[k]
	}
	return fmt.Sprintf("Kind(%d)", uint8(k))
}

// Info reports a kind that is informational only.
func (k Kind) Info() bool { return k == Excluded }

// Kinds lists every kind in order.
func Kinds() []Kind {
	out := make([]Kind, NumKinds)
	for i := range out {
		out[i] = Kind(i)
	}
	return out
}

// Finding is one problem with one path of one package.
type Finding struct {
	Kind     Kind
	Package  string // package ID (name, or name:arch when dpkg says so)
	Path     string // as the package lists it
	Real     string // where it is on disk (differs for diverted files)
	Conffile bool   // the path is a conffile (dpkg's 'c' attribute)
	Expected string // what it should be ("" when not applicable)
	Actual   string // what it is
	Source   string // where the expectation came from: md5sums, manifest, status, statoverride, policy
	Err      error  // for Unreadable, BadMD5Sums, BadManifest, and Missing other than ENOENT
	// Dpkg is the 9-character result dpkg --verify prints for this path
	// ("missing  ", "??5??????", "?M???????"…), or "" when dpkg prints
	// nothing for it. Every finding of one path carries the same value.
	Dpkg string
	// Shadow is the mount of a Shadowed finding (nil otherwise); Path and
	// Real are its mount point within the root, Package the first of the
	// packages whose files it hides.
	Shadow *shadow.Shadow
	// For Lifted, the window in which the flag was lifted: debseal last
	// saw the file locked at SeenLocked (no later than it did: whole
	// seconds, rounded down), by SeenBy (pkg/seen's event: lock, relock,
	// audit), and this audit found it mutable at FoundUnlocked (rounded
	// up).
	SeenLocked, FoundUnlocked time.Time
	SeenBy                    string
	// Evidence, for TamperedBeforeUpgrade, says when the file was found
	// and where its record and copy are (paths within the root).
	Evidence string
}

func (f Finding) String() string {
	s := fmt.Sprintf("%s %s", f.Kind, f.Real)
	switch {
	case f.Shadow != nil:
		s += " [" + listPackages(f.Shadow.Packages, 5) + "]"
	case f.Package != "":
		s += " [" + f.Package + "]"
	}
	if f.Real != f.Path {
		s += fmt.Sprintf(" (listed as %s)", f.Path)
	}
	if f.Expected != "" || f.Actual != "" {
		s += fmt.Sprintf(": expected %s, found %s", orDash(f.Expected), orDash(f.Actual))
	}
	if f.Source != "" {
		s += " (" + f.Source + ")"
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	if f.Evidence != "" {
		s += "; " + f.Evidence
	}
	return s
}

// listPackages names at most n packages, and how many more there are.
func listPackages(pkgs []string, n int) string {
	if len(pkgs) <= n {
		return strings.Join(pkgs, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(pkgs[:n], ", "), len(pkgs)-n)
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// Errno returns the system error of a Missing or Unreadable finding, 0 if
// none.
func (f Finding) Errno() syscall.Errno {
	var e syscall.Errno
	if f.Err != nil && asErrno(f.Err, &e) {
		return e
	}
	return 0
}
