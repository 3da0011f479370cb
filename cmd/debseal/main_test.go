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

func TestMain(m *testing.M) {
	// No test may lock this machine's own files: every mutating command
	// refuses the process's own root unless --root points elsewhere.
	os.Setenv("DEBSEAL_REFUSE_HOST_ROOT", "1")
	os.Exit(m.Run())
}

// debseal runs the CLI in-process.
func debseal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"debseal"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}

// TestDemo runs make demo's script: the README's first command must keep
// working. It fails by itself when a tampering attempt is allowed.
func TestDemo(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "dpkg", "dpkg-deb", "lsattr")
	cmd := exec.Command(filepath.Join(testutil.RepoRoot(t), "scripts", "demo.sh"), testutil.Binary(t))
	out, code := testutil.Output(t, cmd)
	if code != 0 {
		t.Fatalf("scripts/demo.sh: exit %d\n%s", code, out)
	}
	for _, want := range []string{"-> refused", "hello from version 1.1", "no findings", "unlocked 3 files"} {
		if !strings.Contains(out, want) {
			t.Errorf("the demo's output lacks %q:\n%s", want, out)
		}
	}
}
