package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
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
			run(t, "fusefat", "-o", "rw+", img, dir)
			name = "fuse.fusefat"
			umount = []string{"fusermount", "-u", dir}
		} else {
			umount = []string{"umount", dir}
		}
	}
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
