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
// and changes nothing (no file locked, no state).
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
			for _, p := range []string{"/var/lib/debseal/sealed"} {
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
