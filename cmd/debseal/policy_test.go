package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// typo is a debseal.conf whose second line misspells a value: debseal
// used to accept it and ignore it.
const typo = "exclude-path = /usr/share/doc\nunlock-scope = al\n"

// typoMsg is what every command must say about it: the file, the line,
// the setting and what it takes.
const typoMsg = `etc/debseal/debseal.conf:2: unlock-scope: "al" is not one of: plan, all`

func writeConf(t *testing.T, s *testutil.Sandbox, text string) {
	t.Helper()
	p := s.Path("/etc/debseal/debseal.conf")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestBadConfigRefused runs every command that reads the policy, through
// the binary, on a root whose debseal.conf has a bad value: each refuses
// with the error code and a message naming the file, line and setting,
// and changes nothing (no file locked, no state, no configuration kept).
// The hooks and the wrapper: TestHooksOnBadConfig.
func TestBadConfigRefused(t *testing.T) {
	bin := testutil.Binary(t)
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	writeConf(t, s, typo)
	for _, args := range [][]string{
		{"lock", "--all"},
		{"lock", "--dry-run", "dstest-base"},
		{"lock", "--verify", "dstest-base"},
		{"unlock", "--all"},
		{"status"},
		{"status", "--json", "dstest-base"},
		{"audit"},
		{"audit", "--format", "json"},
		{"manifest", "--all"},
		{"recover"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			cmd := exec.Command(bin, append([]string{"--root", s.Root}, args...)...)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			if err != nil && code < 0 {
				t.Fatal(err)
			}
			if code != exitError || !strings.Contains(stderr.String(), typoMsg) {
				t.Errorf("debseal %s: exit %d, stderr:\n%s\nwant exit %d and %q", strings.Join(args, " "), code, stderr.String(), exitError, typoMsg)
			}
			if stdout.Len() > 0 {
				t.Errorf("debseal %s: a refusal printed on stdout:\n%s", strings.Join(args, " "), stdout.String())
			}
			if got := immutableFiles(t, s.Root); len(got) > 0 {
				t.Errorf("debseal %s locked files despite the bad configuration: %v", strings.Join(args, " "), got)
			}
			for _, p := range []string{"/var/lib/debseal/sealed", "/var/lib/debseal/policy"} {
				if _, err := os.Stat(s.Path(p)); err == nil {
					t.Errorf("debseal %s wrote %s", strings.Join(args, " "), p)
				}
			}
		})
	}
	// Fixed, the same configuration works.
	writeConf(t, s, strings.Replace(typo, "= al", "= all", 1))
	if out, errs, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all with the fixed configuration: exit %d\n%s%s", code, out, errs)
	}
	if !testutil.IsImmutable(t, s.Path("/usr/bin/dstest-tool")) || testutil.IsImmutable(t, s.Path("/usr/share/doc/dstest-base/copyright")) {
		t.Error("lock --all did not apply the fixed configuration")
	}
}

// TestHooksOnBadConfig: a typo in debseal.conf must not stop dpkg, nor make
// the hooks lock less (or more) than before it: they apply the
// configuration the last run kept, and say so. With nothing kept, the pre
// hook stops dpkg before it changes anything, naming the problem.
func TestHooksOnBadConfig(t *testing.T) {
	bin := testutil.Binary(t)
	for _, mode := range []string{"dpkg-hooks", "wrapper"} {
		t.Run(mode, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			run := hookedDpkg(s, bin)
			if mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			writeConf(t, s, "exclude-path = /usr/share/doc\n")
			if out, errs, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
			}
			tool, doc := s.Path("/usr/bin/dstest-tool"), s.Path("/usr/share/doc/dstest-base/copyright")
			// The broken file would lock the documentation (its first
			// line is gone): the hooks must keep to the policy in force.
			writeConf(t, s, "unlock-scope = al\n")

			out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
			if code != 0 {
				t.Fatalf("dpkg -i with a typo in debseal.conf: exit %d\n%s", code, out)
			}
			for _, want := range []string{`debseal.conf:1: unlock-scope: "al" is not one of: plan, all`, "applying the configuration in force before"} {
				if !strings.Contains(out, want) {
					t.Errorf("dpkg's output does not say %q:\n%s", want, out)
				}
			}
			if !testutil.IsImmutable(t, tool) {
				t.Errorf("%s not relocked after the upgrade: the hooks locked less", tool)
			}
			if testutil.IsImmutable(t, doc) {
				t.Errorf("%s locked after the upgrade: the hooks dropped the exclusion in force", doc)
			}
			if _, err := os.Stat(s.Path("/usr/share/dstest/dropped-in-2.0.txt")); err == nil {
				t.Error("the upgrade did not happen")
			}

			// Nothing kept (as after an upgrade from a debseal that kept
			// nothing): the pre stage stops dpkg before any change.
			if err := os.Remove(s.Path("/var/lib/debseal/policy")); err != nil {
				t.Fatal(err)
			}
			out, code = run(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if code == 0 {
				t.Fatalf("dpkg -i with a bad configuration and none kept: exit 0, want dpkg stopped\n%s", out)
			}
			for _, want := range []string{`debseal.conf:1: unlock-scope: "al" is not one of: plan, all`, "no earlier debseal run kept a configuration", "stopping before dpkg changes anything"} {
				if !strings.Contains(out, want) {
					t.Errorf("dpkg's output does not say %q:\n%s", want, out)
				}
			}
			if _, err := os.Stat(s.Path("/usr/share/dstest/dropped-in-2.0.txt")); err == nil {
				t.Error("dpkg downgraded the package although debseal stopped it")
			}
			if !testutil.IsImmutable(t, tool) {
				t.Errorf("%s unlocked although dpkg was stopped", tool)
			}
		})
	}
}
