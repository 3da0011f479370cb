package testutil

import (
	"crypto/sha256"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Sandbox is a dpkg root in a temporary directory. dpkg runs on it with
// --root, --admindir and --log inside the sandbox (the host's dpkg.log is
// never written) and --force-script-chrootless (maintainer scripts run on
// the host with $DPKG_ROOT set, so the test packages prefix their paths).
type Sandbox struct {
	Root     string
	Admindir string
	Log      string
}

// NewSandbox creates an empty dpkg root whose flags are cleared when the
// test ends. It needs root and dpkg.
func NewSandbox(t testing.TB) *Sandbox {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "dpkg", "dpkg-deb")
	return InitSandbox(t, TempRoot(t))
}

// InitSandbox makes dir (which the caller cleans up) an empty dpkg root.
func InitSandbox(t testing.TB, dir string) *Sandbox {
	t.Helper()
	s := &Sandbox{Root: dir, Admindir: filepath.Join(dir, "var/lib/dpkg"), Log: filepath.Join(dir, "var/log/dpkg.log")}
	for _, d := range []string{"info", "updates", "triggers"} {
		if err := os.MkdirAll(filepath.Join(s.Admindir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Dir(s.Log), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(s.Admindir, "status"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s.MustDpkg(t, "--add-architecture", "i386")
	return s
}

// Args are the options that confine dpkg to the sandbox.
func (s *Sandbox) Args() []string {
	return []string{"--root=" + s.Root, "--admindir=" + s.Admindir, "--log=" + s.Log, "--force-script-chrootless"}
}

// Dpkg runs dpkg on the sandbox and returns its combined output and exit
// code.
func (s *Sandbox) Dpkg(t testing.TB, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("dpkg", append(s.Args(), args...)...)
	cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
	return Output(t, cmd)
}

// MustDpkg runs dpkg and fails the test unless it exits 0.
func (s *Sandbox) MustDpkg(t testing.TB, args ...string) string {
	t.Helper()
	out, code := s.Dpkg(t, args...)
	if code != 0 {
		t.Fatalf("dpkg %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// Path returns the host path of a path inside the sandbox.
func (s *Sandbox) Path(p string) string { return filepath.Join(s.Root, p) }

var (
	debsOnce sync.Once
	debsDir  string
	debsErr  error
)

// TestDebs returns the directory holding the packages scripts/mktestpkgs.sh
// builds, building them once (cached by the script's hash under the temp
// directory, so repeated runs reuse them).
func TestDebs(t testing.TB) string {
	t.Helper()
	RequireCommand(t, "dpkg-deb")
	debsOnce.Do(func() {
		script := filepath.Join(RepoRoot(t), "scripts", "mktestpkgs.sh")
		b, err := os.ReadFile(script)
		if err != nil {
			debsErr = err
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("debseal-testdebs-%x", sha256.Sum256(b))[:32])
		if _, err := os.Stat(filepath.Join(dir, "complete")); err == nil {
			debsDir = dir
			return
		}
		os.RemoveAll(dir)
		out, err := exec.Command(script, dir).CombinedOutput()
		if err != nil {
			debsErr = fmt.Errorf("%s: %v\n%s", script, err, out)
			return
		}
		debsErr = os.WriteFile(filepath.Join(dir, "complete"), nil, 0o644)
		debsDir = dir
	})
	if debsErr != nil {
		t.Fatalf("building test packages: %v", debsErr)
	}
	return debsDir
}

// Deb returns the path of one test package, e.g. Deb(t, "dstest-base_1.0_all").
func Deb(t testing.TB, name string) string {
	t.Helper()
	p := filepath.Join(TestDebs(t), name+".deb")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("test package %s: %v", name, err)
	}
	return p
}
