package main

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// fakeDpkg writes a stand-in for the real dpkg: it reports what it got,
// then behaves as the test asks through FAKE_DPKG.
func fakeDpkg(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "dpkg")
	script := `#!/bin/sh
echo "args: $*"
case "$FAKE_DPKG" in
exit*) exit "${FAKE_DPKG#exit}" ;;
fd7) echo "status line on fd 7" >&7; exit 0 ;;
stdin) read line; echo "stdin: $line"; exit 0 ;;
term) trap 'echo got TERM; exit 42' TERM; echo ready; while :; do sleep 0.05; done ;;
kill) kill -KILL $$ ;;
busy) i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; echo done; exit 0 ;;
probe) lsattr "$PROBE" ;;
esac
`
	if err := os.WriteFile(p, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// sealedSandbox is an empty sandbox with sealing on, so that the wrapper
// runs dpkg as its child (with nothing sealed it just execs dpkg).
func sealedSandbox(t *testing.T) *testutil.Sandbox {
	t.Helper()
	s := testutil.NewSandbox(t)
	if _, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatal("lock --all failed")
	}
	return s
}

func wrapperCmd(t *testing.T, s *testutil.Sandbox, fake, mode string, args ...string) *exec.Cmd {
	cmd := exec.Command(testutil.Binary(t), append([]string{"dpkg", "--root=" + s.Root, "--admindir=" + s.Admindir}, args...)...)
	cmd.Env = append(os.Environ(), "DEBSEAL_REAL_DPKG="+fake, "FAKE_DPKG="+mode)
	return cmd
}

func TestWrapperPassesThrough(t *testing.T) {
	s := sealedSandbox(t)
	fake := fakeDpkg(t)
	deb := testutil.Deb(t, "dstest-plugin_1.0_all")

	// The exact exit status, for a run that changes files (child path)
	// and for a query (exec path).
	for _, tt := range []struct {
		args []string
		code int
	}{
		{[]string{"-i", deb}, 3},
		{[]string{"--configure", "-a"}, 1},
		{[]string{"--compare-versions", "1", "lt", "2"}, 7},
	} {
		out, code := testutil.Output(t, wrapperCmd(t, s, fake, "exit"+strconv.Itoa(tt.code), tt.args...))
		if code != tt.code || !strings.Contains(out, "args: --root="+s.Root) {
			t.Errorf("debseal dpkg %v: exit %d (want %d)\n%s", tt.args, code, tt.code, out)
		}
	}

	// An inherited descriptor (apt's --status-fd) at the same number.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := wrapperCmd(t, s, fake, "fd7", "--status-fd", "7", "-i", deb)
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, w} // fd 3+4 = 7
	if out, code := testutil.Output(t, cmd); code != 0 {
		t.Fatalf("fd 7 run: exit %d\n%s", code, out)
	}
	w.Close()
	got, _ := io.ReadAll(r)
	if !strings.Contains(string(got), "status line on fd 7") {
		t.Errorf("dpkg did not get fd 7: read %q", got)
	}

	// Standard input is dpkg's.
	cmd = wrapperCmd(t, s, fake, "stdin", "-i", deb)
	cmd.Stdin = strings.NewReader("from the caller\n")
	if out, _ := testutil.Output(t, cmd); !strings.Contains(out, "stdin: from the caller") {
		t.Errorf("stdin not passed:\n%s", out)
	}
}

// TestWrapperProfiled: a wrapper run with DEBSEAL_CPUPROFILE (how the
// README says to find where a transaction's time goes) runs dpkg exactly
// as without it. The profiler's SIGPROF timer survives execve: a dpkg
// exec'd in the wrapper's place (a query, apt's --set-selections) died of
// SIGPROF once it had used 10 ms of CPU.
func TestWrapperProfiled(t *testing.T) {
	s := sealedSandbox(t)
	fake := fakeDpkg(t)
	deb := testutil.Deb(t, "dstest-plugin_1.0_all")
	profiles := t.TempDir()
	for _, args := range [][]string{
		{"--set-selections"},     // exec'd in the wrapper's place
		{"--print-architecture"}, // the same
		{"-i", deb},              // run as the wrapper's child
		{"--compare-versions", "1", "lt", "2"},
	} {
		cmd := wrapperCmd(t, s, fake, "busy", args...)
		cmd.Env = append(cmd.Env, "DEBSEAL_CPUPROFILE="+profiles)
		if out, code := testutil.Output(t, cmd); code != 0 || !strings.Contains(out, "done") {
			t.Errorf("profiled debseal dpkg %v: exit %d, want dpkg's 0\n%s", args, code, out)
		}
	}
	if ents, err := os.ReadDir(profiles); err != nil || len(ents) != 4 {
		t.Errorf("profiles written: %d (%v), want one per run", len(ents), err)
	}
}

func TestWrapperForwardsSignals(t *testing.T) {
	s := sealedSandbox(t)
	fake := fakeDpkg(t)
	deb := testutil.Deb(t, "dstest-plugin_1.0_all")

	cmd := wrapperCmd(t, s, fake, "term", "-i", deb)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	deadline := time.Now().Add(20 * time.Second)
	var seen string
	for !strings.Contains(seen, "ready") && time.Now().Before(deadline) {
		n, _ := out.Read(buf)
		seen += string(buf[:n])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(out)
	err = cmd.Wait()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 42 || !strings.Contains(string(rest), "got TERM") {
		t.Errorf("after SIGTERM to the wrapper: %v, output %q; want dpkg to get it and exit 42", err, seen+string(rest))
	}

	// dpkg killed by a signal: the wrapper dies of the same signal.
	err = wrapperCmd(t, s, fake, "kill", "-i", deb).Run()
	if !errors.As(err, &ee) {
		t.Fatalf("wrapper after dpkg was killed: %v", err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Errorf("wrapper status %v, want killed by SIGKILL like dpkg", ee)
	}
	if j, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json")); len(j) > 0 {
		t.Errorf("journal left after the wrapper relocked: %v", j)
	}
}

// lockedSandbox is a sandbox with dstest-base installed and locked; it
// returns the sandbox and one of the package's locked files.
func lockedSandbox(t *testing.T) (*testutil.Sandbox, string) {
	t.Helper()
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if out, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s", code, out)
	}
	f := s.Path("/usr/bin/dstest-tool")
	if !testutil.IsImmutable(t, f) {
		t.Fatalf("%s is not locked after lock --all", f)
	}
	return s, f
}

// probeFlags runs the wrapper with a fake dpkg that prints lsattr of the
// probe file, and returns whether dpkg saw it immutable.
func probeFlags(t *testing.T, s *testutil.Sandbox, probe string, env []string, args ...string) (sawLocked bool, out string, code int) {
	t.Helper()
	cmd := wrapperCmd(t, s, fakeDpkg(t), "probe", args...)
	cmd.Env = append(append(cmd.Env, "PROBE="+probe), env...)
	out, code = testutil.Output(t, cmd)
	for _, l := range strings.Split(out, "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] == probe {
			return strings.Contains(f[0], "i"), out, code
		}
	}
	t.Fatalf("the fake dpkg printed no lsattr line for %s:\n%s", probe, out)
	return false, out, code
}

// A command line the parser rejects (here: an option of some newer dpkg)
// that names a file action must not reach dpkg with the files locked: the
// wrapper unlocks everything sealed for that run and relocks afterwards.
func TestWrapperUnknownOptionFailsClosed(t *testing.T) {
	s, f := lockedSandbox(t)
	for _, args := range [][]string{
		{"--future-option", "--remove", "dstest-base"},
		{"--future-option=x", "-P", "dstest-base"},
		{"-rZ", "dstest-base"},
	} {
		locked, out, code := probeFlags(t, s, f, nil, args...)
		if code != 0 || locked {
			t.Errorf("debseal dpkg %v: exit %d, file locked while dpkg ran = %v; want 0 and unlocked\n%s", args, code, locked, out)
		}
		if !testutil.IsImmutable(t, f) {
			t.Errorf("debseal dpkg %v: %s not relocked afterwards", args, f)
		}
	}
	// An unparseable query changes nothing and goes straight to dpkg.
	if locked, out, _ := probeFlags(t, s, f, nil, "--future-option", "-L", "dstest-base"); !locked {
		t.Errorf("a query unlocked files:\n%s", out)
	}
}

// Maintainer scripts call dpkg while dpkg holds its lock (dpkg-maintscript-
// helper, dpkg --compare-versions, even dpkg -L): those calls go straight
// to the real dpkg, with nothing unlocked and no journal.
func TestWrapperNestedCallsPassThrough(t *testing.T) {
	s, f := lockedSandbox(t)
	locked, out, code := probeFlags(t, s, f, []string{"DPKG_MAINTSCRIPT_NAME=postinst", "DPKG_MAINTSCRIPT_PACKAGE=dstest-base"},
		"--remove", "dstest-base")
	if code != 0 || !locked {
		t.Errorf("nested dpkg --remove: exit %d, saw the file locked = %v; want it passed through untouched\n%s", code, locked, out)
	}
	if j, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json")); len(j) > 0 {
		t.Errorf("a nested call wrote a journal: %v", j)
	}
}

// When the real dpkg cannot even start, the wrapper must not report
// success (a zero wait status reads as "exited 0").
func TestWrapperDpkgThatCannotStart(t *testing.T) {
	s, f := lockedSandbox(t)
	notExec := filepath.Join(t.TempDir(), "dpkg")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(testutil.Binary(t), "dpkg", "--root="+s.Root, "--admindir="+s.Admindir, "-r", "dstest-base")
	cmd.Env = append(os.Environ(), "DEBSEAL_REAL_DPKG="+notExec)
	out, code := testutil.Output(t, cmd)
	if code != 2 {
		t.Errorf("wrapper with a dpkg that cannot start: exit %d, want 2\n%s", code, out)
	}
	if !testutil.IsImmutable(t, f) {
		t.Errorf("%s not relocked after the failed start", f)
	}
}

// Between the dpkg runs of an apt transaction apt holds its frontend lock
// and, in the apt-hooks mode, relies on what its Pre-Install-Pkgs hook
// unlocked: debseal recover must not relock then, only once apt is done.
func TestRecoverWaitsForFrontendLock(t *testing.T) {
	s, f := lockedSandbox(t)
	if out, err := exec.Command("chattr", "-i", f).CombinedOutput(); err != nil {
		t.Fatalf("chattr -i: %v\n%s", err, out)
	}
	// As if dpkg had just rewritten the package: its list is newer than
	// debseal's last sync.
	later := time.Now().Add(2 * time.Second)
	if err := os.Chtimes(filepath.Join(s.Admindir, "info/dstest-base.list"), later, later); err != nil {
		t.Fatal(err)
	}
	lf, err := os.OpenFile(filepath.Join(s.Admindir, "lock-frontend"), os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(lf.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	recover := func() string {
		out, _ := testutil.Output(t, exec.Command(testutil.Binary(t), "--root", s.Root, "recover"))
		return out
	}
	if out := recover(); !strings.Contains(out, "a package manager runs") || testutil.IsImmutable(t, f) {
		t.Errorf("recover while the frontend lock is held relocked %s (immutable = %v):\n%s", f, testutil.IsImmutable(t, f), out)
	}
	lf.Close() // releases the lock
	if out := recover(); !testutil.IsImmutable(t, f) {
		t.Errorf("recover after apt finished left %s unlocked:\n%s", f, out)
	}
}
