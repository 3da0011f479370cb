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
