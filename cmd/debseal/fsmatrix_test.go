package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// TestFilesystemMatrix installs and locks the test packages on each
// filesystem that supports inode flags, then unlocks them again.
func TestFilesystemMatrix(t *testing.T) {
	for _, fstype := range []string{"ext4", "xfs", "btrfs", "tmpfs"} {
		t.Run(fstype, func(t *testing.T) {
			testutil.RequireRoot(t)
			dir := filepath.Join(t.TempDir(), "root")
			testutil.Mount(t, fstype, dir)
			s := testutil.InitSandbox(t, dir)
			installAll(t, s)
			out, errs, code := debseal(t, "--root", s.Root, "lock", "--all")
			if code != 0 {
				t.Fatalf("lock --all on %s: exit %d\n%s%s", fstype, code, out, errs)
			}
			if got := immutableFiles(t, s.Root); !sameStrings(got, wantLocked) {
				t.Errorf("immutable on %s:\n%v\nwant\n%v", fstype, got, wantLocked)
			}
			if _, _, code := debseal(t, "--root", s.Root, "unlock", "--all"); code != 0 {
				t.Fatalf("unlock --all on %s: exit %d", fstype, code)
			}
			if got := immutableFiles(t, s.Root); len(got) != 0 {
				t.Errorf("still immutable on %s: %v", fstype, got)
			}
		})
	}
}

// TestUnsupportedFilesystem puts a package's files on a filesystem without
// inode flags (a FAT EFI system partition; ramfs) and checks that each of
// them is reported unsupported while every other file is still locked and
// the run succeeds.
func TestUnsupportedFilesystem(t *testing.T) {
	for _, fstype := range []string{"vfat", "ramfs"} {
		t.Run(fstype, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-efi_1.0_all"))
			// Move the ESP's files onto the new filesystem, as if it had
			// been mounted there all along.
			esp := s.Path("/boot/efi")
			hold := filepath.Join(t.TempDir(), "esp")
			if err := os.Rename(esp, hold); err != nil {
				t.Fatal(err)
			}
			name := testutil.Mount(t, fstype, esp)
			if out, err := exec.Command("cp", "-r", hold+"/.", esp).CombinedOutput(); err != nil {
				t.Fatalf("cp: %v\n%s", err, out)
			}
			out, errs, code := debseal(t, "--root", s.Root, "lock", "--all", "--verbose")
			if code != 0 {
				t.Fatalf("lock --all with %s: exit %d, want 0\n%s%s", fstype, code, out, errs)
			}
			for _, f := range []string{"/boot/efi/EFI/dstest/grubx64.efi", "/boot/efi/EFI/dstest/grub.cfg"} {
				if !strings.Contains(out, "unsupported "+f+" ("+name+")") {
					t.Errorf("%s not reported unsupported on %s:\n%s", f, name, out)
				}
			}
			if !strings.Contains(out, "unsupported: 2 files on "+name) {
				t.Errorf("summary lacks the unsupported count:\n%s", out)
			}
			for _, f := range []string{"/usr/bin/dstest-tool", "/usr/share/doc/dstest-efi/copyright"} {
				if !testutil.IsImmutable(t, s.Path(f)) {
					t.Errorf("%s not locked", f)
				}
			}
			status, _, code := debseal(t, "--root", s.Root, "status", "dstest-efi")
			if code != 0 || !strings.Contains(status, "dstest-efi") {
				t.Errorf("status: exit %d\n%s", code, status)
			}
			if _, _, code := debseal(t, "--root", s.Root, "unlock", "--all"); code != 0 {
				t.Errorf("unlock --all: exit %d", code)
			}
		})
	}
}
