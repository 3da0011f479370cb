package main

import (
	"os/exec"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// unlock clears the flag on conffiles too: one locked by an older debseal,
// or while a corrupt status had lost its Conffiles entry, must not stay
// locked for good (lock never locks one; unlock only makes files mutable).
func TestUnlockClearsLockedConffiles(t *testing.T) {
	testutil.RequireCommand(t, "chattr")
	for _, args := range [][]string{{"--all"}, {"dstest-base"}} {
		t.Run(args[0], func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			conffile := s.Path("/etc/dstest/dstest.conf")
			if out, err := exec.Command("chattr", "+i", conffile).CombinedOutput(); err != nil {
				t.Fatalf("chattr +i %s: %v\n%s", conffile, err, out)
			}
			if out, errs, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatalf("lock: exit %d\n%s%s", code, out, errs)
			}
			out, errs, code := debseal(t, append([]string{"--root", s.Root, "unlock"}, args...)...)
			if code != 0 {
				t.Fatalf("unlock: exit %d\n%s%s", code, out, errs)
			}
			if testutil.IsImmutable(t, conffile) {
				t.Errorf("unlock %s left the conffile %s immutable", args[0], conffile)
			}
			if testutil.IsImmutable(t, s.Path("/usr/bin/dstest-tool")) {
				t.Errorf("unlock %s left a package file immutable", args[0])
			}
		})
	}
}
