// Package shadow finds the mounts that hide sealed package files: a bind
// mount over /usr/bin/sudo, a tmpfs or an overlay over /usr/lib/x, a FUSE
// mount over /usr/sbin. What is mounted there is what runs, and it is
// neither the package's files nor locked: the immutable flag on the files
// underneath protects nothing while the mount stays.
//
// It owns the rule for which mounts a normal system has (Expected), and
// counts the sealed files each other mount below the target root hides
// (Checker). It reads the dpkg database and looks paths up inside the
// root; it changes nothing, does not read /proc itself (pkg/mountinfo
// does, for the caller) and leaves rendering to its callers (a mount's
// one-line description aside).
package shadow

import (
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/debseal/debseal/pkg/mountinfo"
)

// Mount is a mount strictly below the target root.
type Mount struct {
	mountinfo.Mount
	// Point is the mount point within the target root ("/usr/lib/x"
	// for a mount at ROOT/usr/lib/x).
	Point string
}

// Describe says what is mounted, as findmnt names it: the filesystem
// type, the source with the directory of it that is mounted when that is
// not its root ("ext4 /dev/sda1[/srv/evil]"), and the mount ID.
func (m Mount) Describe() string {
	src := m.Source
	if src == "" || strings.ContainsAny(src, " \t\n") {
		src = strconv.Quote(src)
	}
	if m.Root != "/" {
		src += "[" + m.Root + "]"
	}
	return fmt.Sprintf("%s %s (mount %d)", m.FSType, src, m.ID)
}

// APITrees are the trees of the kernel's API filesystems and runtime
// state: whatever is mounted at or below them is expected (/proc, /sys,
// /dev/pts, /dev/shm, /run/user/N, the proc and devpts a chroot mounts…).
var APITrees = []string{"/proc", "/sys", "/dev", "/run"}

// SystemMountPoints are where a normal system may mount a separate
// filesystem of its own: the partitions an installer offers and the ones
// hardening guides ask for. A whole filesystem mounted at one of them is
// expected (see Expected).
var SystemMountPoints = []string{
	"/boot", "/boot/efi", "/efi",
	"/usr", "/usr/local", "/opt", "/home", "/srv", "/tmp",
	"/var", "/var/cache", "/var/lib", "/var/log", "/var/log/audit", "/var/mail", "/var/spool", "/var/tmp", "/var/www",
}

// Below returns the mounts whose mount point is strictly below root (the
// kernel's name for the target root, every symlink resolved: it is
// compared with mount points as mountinfo prints them), in the order
// given. The root's own mount, and mounts above or beside it, are not
// below it.
func Below(mounts []mountinfo.Mount, root string) []Mount {
	root = strings.TrimSuffix(root, "/")
	var out []Mount
	for _, m := range mounts {
		rel, ok := strings.CutPrefix(m.MountPoint, root)
		if !ok || !strings.HasPrefix(rel, "/") || path.Clean(rel) == "/" {
			continue
		}
		out = append(out, Mount{Mount: m, Point: path.Clean(rel)})
	}
	return out
}

// Expected reports whether a mount below the target root is one a normal
// system has, and the rule that says so:
//
//   - anything at or below an API tree (APITrees);
//   - a whole filesystem at one of SystemMountPoints: backed by a block
//     device (a major device number other than 0; for btrfs, whose mounts
//     show an anonymous device, a /dev/ source; ZFS datasets), mounted at
//     its own root (the root field "/", or for btrfs the subvolume's own
//     root, subvol=), and not an overlay, tmpfs or FUSE filesystem;
//   - an automount point (autofs) at one of SystemMountPoints, where
//     systemd mounts such a filesystem on first access;
//   - a tmpfs at /tmp (Debian 13 mounts one by default);
//   - a bind mount of a directory onto itself (parent is the mount it
//     covers, nil when unknown): it shows the very files it covers.
//     systemd makes them for ProtectSystem=, ReadWritePaths= and
//     ProtectHome=, chroot scripts to make a directory a mount point.
//
// Anything else below the root — a bind of another directory or file, an
// overlay, a tmpfs, a FUSE filesystem, any filesystem elsewhere than at
// SystemMountPoints — is a candidate: it is reported if it hides sealed
// files, unless mount-allow names it.
func Expected(m Mount, parent *mountinfo.Mount) (bool, string) {
	for _, t := range APITrees {
		if m.Point == t || strings.HasPrefix(m.Point, t+"/") {
			return true, "API filesystem tree " + t
		}
	}
	if selfBind(m, parent) {
		return true, "a bind mount of the directory onto itself"
	}
	system := false
	for _, p := range SystemMountPoints {
		if m.Point == p {
			system = true
		}
	}
	if !system {
		return false, ""
	}
	switch {
	case m.FSType == "autofs":
		return true, "an automount point at " + m.Point
	case m.FSType == "tmpfs" && m.Point == "/tmp":
		return true, "tmpfs at /tmp"
	case WholeFilesystem(m.Mount):
		return true, "a separate filesystem at " + m.Point
	}
	return false, ""
}

// WholeFilesystem reports whether m is a block-device filesystem mounted
// at its own root (see Expected).
func WholeFilesystem(m mountinfo.Mount) bool {
	switch {
	case m.FSType == "overlay" || m.FSType == "tmpfs" || m.FSType == "ramfs" ||
		m.FSType == "fuse" || m.FSType == "fuseblk" || strings.HasPrefix(m.FSType, "fuse."):
		return false
	case m.FSType == "btrfs":
		sub, ok := m.SuperOption("subvol")
		if !ok {
			sub = "/"
		}
		return strings.HasPrefix(m.Source, "/dev/") && m.Root == sub
	case m.FSType == "zfs":
		return m.Root == "/"
	}
	return m.Major != 0 && m.Root == "/"
}

// selfBind reports whether m shows, at its mount point, the very
// directory of the very filesystem that its parent mount has there.
func selfBind(m Mount, parent *mountinfo.Mount) bool {
	if parent == nil || parent.Major != m.Major || parent.Minor != m.Minor {
		return false
	}
	rel, ok := strings.CutPrefix(m.MountPoint, strings.TrimSuffix(parent.MountPoint, "/"))
	if !ok || rel != "" && !strings.HasPrefix(rel, "/") {
		return false // "" is a mount stacked on its parent at the same point
	}
	return path.Join(parent.Root, rel) == m.Root
}

// Unexpected returns the mounts strictly below root that Expected does not
// expect and allowed (mount-allow; nil: none) does not name, in the order
// given.
func Unexpected(mounts []mountinfo.Mount, root string, allowed func(point string) bool) []Mount {
	byID := make(map[int]*mountinfo.Mount, len(mounts))
	for i := range mounts {
		byID[mounts[i].ID] = &mounts[i]
	}
	var out []Mount
	for _, m := range Below(mounts, root) {
		var parent *mountinfo.Mount
		if p, ok := byID[m.Parent]; ok && m.Parent != m.ID {
			parent = p
		}
		if ok, _ := Expected(m, parent); ok {
			continue
		}
		if allowed != nil && allowed(m.Point) {
			continue
		}
		out = append(out, m)
	}
	return out
}
