package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// Mount mounts a fresh filesystem of type fstype on dir and unmounts it
// when the test ends, after clearing every flag set on it. fstype is a
// mkfs type backed by a loop-mounted image (ext4, xfs, btrfs, vfat), or
// tmpfs/ramfs. For vfat, a kernel without the driver gets the same FAT
// image through FUSE (fusefat) instead; the returned name says which.
func Mount(t testing.TB, fstype, dir string) string {
	t.Helper()
	RequireRoot(t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	name := fstype
	var umount []string
	switch fstype {
	case "tmpfs", "ramfs":
		run(t, "mount", "-t", fstype, "-o", "size=256m", fstype, dir)
		umount = []string{"umount", dir}
	default:
		mkfs := "mkfs." + fstype
		RequireCommand(t, mkfs)
		img := filepath.Join(t.TempDir(), fstype+".img")
		size := "320M" // xfs and btrfs need a few hundred MB
		if err := exec.Command("truncate", "-s", size, img).Run(); err != nil {
			t.Fatal(err)
		}
		args := []string{img}
		switch fstype {
		case "xfs", "btrfs":
			args = append([]string{"-q"}, args...)
		case "ext4":
			args = append([]string{"-q", "-F"}, args...)
		}
		run(t, mkfs, args...)
		if out, err := exec.Command("mount", "-o", "loop", img, dir).CombinedOutput(); err != nil {
			if fstype != "vfat" || !strings.Contains(string(out), "unknown filesystem type") {
				t.Fatalf("mount %s: %v\n%s", fstype, err, out)
			}
			// This kernel has no vfat driver: use the same image through
			// FUSE, which is how FAT reaches some systems anyway.
			RequireCommand(t, "fusefat", "fusermount")
			// nonempty: FUSE refuses a directory with files in it
			// otherwise, and fusefat still exits 0.
			run(t, "fusefat", "-o", "rw+,nonempty", img, dir)
			name = "fuse.fusefat"
			umount = []string{"fusermount", "-u", dir}
		} else {
			umount = []string{"umount", dir}
		}
	}
	// Only a filesystem that is really there is cleared and unmounted:
	// clearing the directory underneath would clear flags the test did
	// not set on the mounted filesystem.
	requireMounted(t, dir, name)
	t.Cleanup(func() {
		if err := clearTree(dir); err != nil {
			t.Errorf("clearing flags on %s: %v", dir, err)
		}
		if out, err := exec.Command(umount[0], umount[1:]...).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", strings.Join(umount, " "), err, out)
		}
	})
	return name
}

func run(t testing.TB, name string, args ...string) {
	t.Helper()
	if out, err := exec.Command(name, args...).CombinedOutput(); err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
}

// requireMounted fails the test unless dir is on another device than its
// parent directory (a mount helper may exit 0 without mounting).
func requireMounted(t testing.TB, dir, what string) {
	t.Helper()
	var st, parent unix.Stat_t
	if err := unix.Stat(filepath.Dir(dir), &parent); err != nil {
		t.Fatalf("stat %s: %v", filepath.Dir(dir), err)
	}
	if err := unix.Stat(dir, &st); err != nil {
		t.Fatalf("stat %s: %v", dir, err)
	}
	if st.Dev == parent.Dev {
		t.Fatalf("%s: nothing is mounted at %s after mounting it", what, dir)
	}
}

// MountArgs runs "mount ARGS... DIR" (a bind mount, an overlay, proc…) and
// unmounts DIR when the test ends, failing the test if it cannot.
func MountArgs(t testing.TB, dir string, args ...string) {
	t.Helper()
	RequireRoot(t)
	run(t, "mount", append(args, dir)...)
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v\n%s", dir, err, out)
		}
	})
}
