package main

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// setupRoot is a sandbox with what setup needs: debseal itself, a dpkg to
// divert, and the configuration directories of any system.
func setupRoot(t *testing.T) *testutil.Sandbox {
	t.Helper()
	s := testutil.NewSandbox(t)
	testutil.RequireCommand(t, "dpkg-divert")
	for dst, src := range map[string]string{"/usr/sbin/debseal": testutil.Binary(t), "/usr/bin/dpkg": "/usr/bin/dpkg"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(s.Path(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range []string{"/etc/dpkg/dpkg.cfg.d", "/etc/apt/apt.conf.d", "/usr/lib"} {
		if err := os.MkdirAll(s.Path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// integration is everything setup may change: the tree (but dpkg-divert's
// own backup, diversions-old), the diversions (an empty database and none
// are the same), the mode file, and what status detects.
type integration struct {
	tree      map[string]string
	mode      string
	installed []string
}

func integrationOf(t *testing.T, s *testutil.Sandbox) integration {
	t.Helper()
	tree := treeState(t, s.Root)
	delete(tree, "/var/lib/dpkg/diversions-old")
	if b, err := os.ReadFile(s.Path("/var/lib/dpkg/diversions")); err == nil && len(b) == 0 {
		delete(tree, "/var/lib/dpkg/diversions")
	}
	mode, err := installedMode(s.Root)
	if err != nil {
		t.Fatal(err)
	}
	inst, err := detectModes(globalOpts{Root: s.Root, Admindir: s.Admindir})
	if err != nil {
		t.Fatal(err)
	}
	return integration{tree, mode, inst}
}

// A setup that fails at any step (an injected failure at each one in
// turn: every file write, dpkg-divert, the link, the removal of the old
// mode, the mode file) leaves the system exactly in the old mode: nothing
// of the new mode, the old mode complete, the mode file unchanged, and
// status agreeing. The last round, with no failure left to inject,
// installs the new mode.
func TestSetupIsTransactional(t *testing.T) {
	for _, tc := range []struct{ from, to string }{
		{"", "divert"}, {"dpkg-hooks", "divert"}, {"divert", "wrapper"}, {"divert", "dpkg-hooks"},
		{"wrapper", "apt-hooks"}, {"apt-hooks", "dpkg-hooks"}, {"", "wrapper"},
	} {
		t.Run(tc.from+"→"+tc.to, func(t *testing.T) {
			s := setupRoot(t)
			if tc.from != "" {
				if out, errs, code := debseal(t, "--root", s.Root, "setup", "--mode", tc.from); code != 0 {
					t.Fatalf("setup --mode %s: exit %d\n%s%s", tc.from, code, out, errs)
				}
			}
			old := integrationOf(t, s)
			wantOld := []string{}
			if tc.from != "" {
				wantOld = []string{tc.from}
			}
			if !reflect.DeepEqual(old.installed, wantOld) && !(len(old.installed) == 0 && tc.from == "") {
				t.Fatalf("before: installed %v, want %v", old.installed, wantOld)
			}
			t.Cleanup(func() { setupFault = nil })
			var steps []string
			for k := 1; ; k++ {
				n := 0
				var failed string
				setupFault = func(step string) error {
					n++
					if n == k {
						failed = step
						return errors.New("injected failure")
					}
					return nil
				}
				out, errs, code := debseal(t, "--root", s.Root, "setup", "--mode", tc.to)
				setupFault = nil
				if failed == "" {
					if code != 0 {
						t.Fatalf("setup --mode %s without a failure: exit %d\n%s%s", tc.to, code, out, errs)
					}
					break
				}
				steps = append(steps, failed)
				if code == 0 {
					t.Errorf("failure at %q: setup exited 0", failed)
				}
				if !strings.Contains(errs, "injected failure") || !strings.Contains(errs, "previous integration is still in place") {
					t.Errorf("failure at %q: the error does not say what failed and that nothing changed:\n%s", failed, errs)
				}
				if now := integrationOf(t, s); !reflect.DeepEqual(now, old) {
					t.Errorf("failure at %q: the system is not in the old mode: changed %v, mode file %q (was %q), installed %v (was %v)",
						failed, treeDiff(old.tree, now.tree), now.mode, old.mode, now.installed, old.installed)
				}
				if k > 40 {
					t.Fatal("setup never finished")
				}
			}
			if len(steps) < 2 {
				t.Errorf("only %d steps got a failure injected: %v", len(steps), steps)
			}
			t.Logf("failures injected at: %q", steps)
			if now := integrationOf(t, s); now.mode != tc.to || !reflect.DeepEqual(now.installed, []string{tc.to}) {
				t.Errorf("after setup: mode file %q, installed %v; want %s alone", now.mode, now.installed, tc.to)
			}
		})
	}
}

// Real failures, not injected ones: a target directory setup cannot
// write (immutable), and dpkg-divert failing (its database's directory
// immutable). The old mode stays whole.
func TestSetupRealFailuresKeepOldMode(t *testing.T) {
	testutil.RequireCommand(t, "chattr")
	t.Run("unwritable hook directory", func(t *testing.T) {
		s := setupRoot(t)
		debseal(t, "--root", s.Root, "setup", "--mode", "dpkg-hooks")
		old := integrationOf(t, s)
		dir := s.Path("/etc/apt/apt.conf.d")
		if out, err := exec.Command("chattr", "+i", dir).CombinedOutput(); err != nil {
			t.Fatalf("chattr: %v %s", err, out)
		}
		_, errs, code := debseal(t, "--root", s.Root, "setup", "--mode", "apt-hooks")
		if out, err := exec.Command("chattr", "-i", dir).CombinedOutput(); err != nil {
			t.Fatalf("chattr: %v %s", err, out)
		}
		if code == 0 || !strings.Contains(errs, "apt.conf.d") {
			t.Errorf("setup into an immutable directory: exit %d, %s", code, errs)
		}
		if now := integrationOf(t, s); !reflect.DeepEqual(now, old) {
			t.Errorf("changed %v, mode %q, installed %v", treeDiff(old.tree, now.tree), now.mode, now.installed)
		}
	})
	t.Run("dpkg-divert fails", func(t *testing.T) {
		s := setupRoot(t)
		debseal(t, "--root", s.Root, "setup", "--mode", "dpkg-hooks")
		old := integrationOf(t, s)
		if out, err := exec.Command("chattr", "+i", s.Admindir).CombinedOutput(); err != nil {
			t.Fatalf("chattr: %v %s", err, out)
		}
		_, errs, code := debseal(t, "--root", s.Root, "setup", "--mode", "divert")
		if out, err := exec.Command("chattr", "-i", s.Admindir).CombinedOutput(); err != nil {
			t.Fatalf("chattr: %v %s", err, out)
		}
		if code == 0 || !strings.Contains(errs, "dpkg-divert") {
			t.Errorf("setup with dpkg-divert failing: exit %d, %s", code, errs)
		}
		if now := integrationOf(t, s); !reflect.DeepEqual(now, old) {
			t.Errorf("changed %v, mode %q, installed %v", treeDiff(old.tree, now.tree), now.mode, now.installed)
		}
	})
}

// What a failed divert setup of an older debseal left (the hooks gone, a
// diversion of /usr/bin/dpkg registered, even the link made, the mode file
// naming another mode): status shows it, and teardown removes it.
func TestTeardownAfterHalfDoneDivert(t *testing.T) {
	for _, tc := range []struct {
		name string
		link bool
	}{{"diversion only", false}, {"diversion and link", true}} {
		t.Run(tc.name, func(t *testing.T) {
			s := setupRoot(t)
			orig := integrationOf(t, s)
			debseal(t, "--root", s.Root, "setup", "--mode", "dpkg-hooks")
			g := globalOpts{Root: s.Root, Admindir: s.Admindir}
			if err := dpkgDivert(g, "--local", "--no-rename", "--divert", distribPath, "--add", dpkgPath); err != nil {
				t.Fatal(err)
			}
			if tc.link {
				if err := os.Link(s.Path(dpkgPath), s.Path(distribPath)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Remove(s.Path("/etc/dpkg/dpkg.cfg.d/debseal")); err != nil {
				t.Fatal(err)
			}
			out, _, _ := debseal(t, "--root", s.Root, "status")
			if !strings.Contains(out, "the mode file says dpkg-hooks, but divert is installed") {
				t.Errorf("status does not show the leftover diversion:\n%s", out)
			}
			if out, errs, code := debseal(t, "--root", s.Root, "teardown"); code != 0 {
				t.Fatalf("teardown: exit %d\n%s%s", code, out, errs)
			}
			if now := integrationOf(t, s); !reflect.DeepEqual(now, orig) {
				t.Errorf("after teardown: changed %v, mode %q, installed %v", treeDiff(orig.tree, now.tree), now.mode, now.installed)
			}
			if b, _ := os.ReadFile(s.Path("/var/lib/dpkg/diversions")); len(b) > 0 {
				t.Errorf("the diversion is still registered:\n%s", b)
			}
		})
	}
}
