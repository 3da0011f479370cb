package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/guard"
	"github.com/debseal/debseal/pkg/testutil"
)

// TestSetupGuard: --guard writes the service.d drop-in and one allow
// drop-in per allowed unit (debseal.conf's guard-allow included), a second
// run changes nothing, a unit taken off the list loses its drop-in, an
// admin's file of the same name is left alone, status reports it, and
// --guard=false and teardown give back the tree as it was.
func TestSetupGuard(t *testing.T) {
	s := testutil.NewSandbox(t)
	for _, d := range []string{"/etc/dpkg/dpkg.cfg.d", "/etc/systemd/system/multi-user.target.wants"} {
		if err := os.MkdirAll(s.Path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The admin's own drop-in, same name, in a unit of the default list.
	admin := s.Path("/etc/systemd/system/cron.service.d/" + guard.DropInName)
	os.MkdirAll(filepath.Dir(admin), 0o755)
	if err := os.WriteFile(admin, []byte("[Service]\nNice=5\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	conf := s.Path("/etc/debseal/debseal.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("guard-allow = puppet.service\n"), 0o644)
	orig := treeState(t, s.Root)

	run := func(args ...string) string {
		t.Helper()
		out, errOut, code := debseal(t, append([]string{"--root", s.Root}, args...)...)
		if code != 0 {
			t.Fatalf("debseal %v: exit %d\n%s%s", args, code, out, errOut)
		}
		return out
	}
	out := run("setup", "--guard")
	if !strings.Contains(out, "capability guard on") || !strings.Contains(out, "puppet.service") {
		t.Errorf("setup --guard said:\n%s", out)
	}
	b, err := os.ReadFile(s.Path(guard.GuardPath))
	if err != nil || !strings.Contains(string(b), "\nCapabilityBoundingSet=~CAP_LINUX_IMMUTABLE\n") {
		t.Fatalf("%s: %v\n%s", guard.GuardPath, err, b)
	}
	units, _ := guard.Units([]string{"puppet.service"})
	for _, u := range units {
		b, err := os.ReadFile(s.Path(guard.AllowPath(u)))
		switch {
		case u == "cron.service":
			if string(b) != "[Service]\nNice=5\n" {
				t.Errorf("the admin's %s was overwritten:\n%s", admin, b)
			}
		case err != nil || !guard.Ours(b):
			t.Errorf("allow drop-in of %s: %v\n%s", u, err, b)
		}
	}
	before := treeState(t, s.Root)
	run("setup", "--guard")
	if d := treeDiff(before, treeState(t, s.Root)); len(d) > 0 {
		t.Errorf("second setup --guard changed %v", d)
	}

	var rep statusReport
	if err := json.Unmarshal([]byte(run("status", "--json")), &rep); err != nil {
		t.Fatal(err)
	}
	if !rep.Guard.On || !slices.Contains(rep.Guard.Allowed, "puppet.service") || slices.Contains(rep.Guard.Allowed, "cron.service") {
		t.Errorf("status guard = %+v, want on, puppet.service allowed, cron.service not ours", rep.Guard)
	}
	if txt := run("status"); !strings.Contains(txt, "capability guard: on;") {
		t.Errorf("status does not say the guard is on:\n%s", txt)
	}

	// puppet leaves the list: its drop-in and its directory go.
	os.WriteFile(conf, []byte("# none\n"), 0o644)
	run("setup", "--guard")
	if _, err := os.Stat(s.Path("/etc/systemd/system/puppet.service.d")); !os.IsNotExist(err) {
		t.Errorf("puppet.service.d after it left guard-allow: %v", err)
	}
	// Without --guard, setup leaves the guard as it is.
	run("setup")
	if _, err := os.Stat(s.Path(guard.GuardPath)); err != nil {
		t.Errorf("setup without --guard removed the guard: %v", err)
	}
	run("setup", "--guard=false")
	if d := treeDiff(orig, treeState(t, s.Root)); !slices.Equal(d, []string{"/etc/debseal/debseal.conf", "/etc/dpkg/dpkg.cfg.d/debseal"}) {
		t.Errorf("after --guard=false, differences from the original tree: %v", d)
	}
	if txt := run("status"); !strings.Contains(txt, "capability guard: off") {
		t.Errorf("status after --guard=false:\n%s", txt)
	}
	run("setup", "--guard")
	run("teardown")
	if d := treeDiff(orig, treeState(t, s.Root)); !slices.Equal(d, []string{"/etc/debseal/debseal.conf"}) {
		t.Errorf("after teardown, differences from the original tree: %v", d)
	}
}

// TestSetupGuardConfined: a hostile root whose service.d is a symlink to
// a directory outside it gets an error, and nothing is written outside.
func TestSetupGuardConfined(t *testing.T) {
	s := testutil.NewSandbox(t)
	outside := t.TempDir()
	os.MkdirAll(s.Path("/etc/systemd/system"), 0o755)
	if err := os.Symlink(outside, s.Path("/etc/systemd/system/service.d")); err != nil {
		t.Fatal(err)
	}
	_, errOut, code := debseal(t, "--root", s.Root, "setup", "--guard")
	if code == 0 {
		t.Fatal("setup --guard through a symlinked service.d succeeded")
	}
	if !strings.Contains(errOut, "service.d") {
		t.Errorf("the error does not name the path:\n%s", errOut)
	}
	if ents, _ := os.ReadDir(outside); len(ents) > 0 {
		t.Errorf("written outside the root: %v", ents)
	}
	// Rolled back: no allow drop-in left either.
	if st, err := readGuard(s.Root); err != nil || st.On || len(st.Allowed) > 0 {
		t.Errorf("after the failed setup: guard %+v, %v", st, err)
	}
}

// TestSetupGuardBadAllow: a guard-allow that is not a unit name is a
// configuration error naming the line, and nothing is written.
func TestSetupGuardBadAllow(t *testing.T) {
	s := testutil.NewSandbox(t)
	conf := s.Path("/etc/debseal/debseal.conf")
	os.MkdirAll(filepath.Dir(conf), 0o755)
	os.WriteFile(conf, []byte("\nguard-allow = puppet\n"), 0o644)
	_, errOut, code := debseal(t, "--root", s.Root, "setup", "--guard")
	if code == 0 || !strings.Contains(errOut, "debseal.conf:2: guard-allow") {
		t.Errorf("setup --guard with a bad guard-allow: exit %d\n%s", code, errOut)
	}
	if _, err := os.Stat(s.Path(guard.GuardPath)); !os.IsNotExist(err) {
		t.Errorf("guard written despite the bad configuration: %v", err)
	}
}

// TestHookWithoutCapability: dpkg run by a process whose bounding set
// lacks CAP_LINUX_IMMUTABLE (a service under the capability guard) is
// stopped by the pre-invoke hook before it changes anything, with a
// message that names the capability; the same run with it succeeds.
func TestHookWithoutCapability(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "setpriv")
	bin := testutil.Binary(t)
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if out, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: %d %s", code, out)
	}
	tool := s.Path("/usr/bin/dstest-tool")
	before, err := os.ReadFile(tool)
	if err != nil {
		t.Fatal(err)
	}
	hooks := []string{"--pre-invoke=" + bin + " hook dpkg-pre", "--post-invoke=" + bin + " hook dpkg-post"}
	upgrade := append(append(s.Args(), hooks...), "-i", testutil.Deb(t, "dstest-base_2.0_all"))

	out, code := runCmd(t, nil, "setpriv", append([]string{"--bounding-set", "-linux_immutable", "--", "dpkg"}, upgrade...)...)
	if code == 0 || !strings.Contains(out, "lacks CAP_LINUX_IMMUTABLE") || !strings.Contains(out, "stopping before dpkg changes anything") {
		t.Errorf("dpkg without CAP_LINUX_IMMUTABLE: exit %d (want a refusal that names the capability)\n%s", code, out)
	}
	if after, _ := os.ReadFile(tool); string(after) != string(before) || !testutil.IsImmutable(t, tool) {
		t.Errorf("%s changed or unlocked by the refused run", tool)
	}
	if v := dpkgVersion(t, s, "dstest-base"); v != "1.0" {
		t.Errorf("dstest-base is %q after the refused run, want 1.0", v)
	}
	// The control: the same run with the capability.
	if out, code := runCmd(t, nil, "dpkg", upgrade...); code != 0 {
		t.Fatalf("dpkg with the capability: exit %d\n%s", code, out)
	}
	if v := dpkgVersion(t, s, "dstest-base"); v != "2.0" || !testutil.IsImmutable(t, tool) {
		t.Errorf("after the upgrade: version %q, %s locked %v", v, tool, testutil.IsImmutable(t, tool))
	}
}

func dpkgVersion(t *testing.T, s *testutil.Sandbox, pkg string) string {
	t.Helper()
	out, _ := runCmd(t, nil, "dpkg-query", "--admindir", s.Path("/var/lib/dpkg"), "-W", "-f", "${Version}", pkg)
	return strings.TrimSpace(out)
}
