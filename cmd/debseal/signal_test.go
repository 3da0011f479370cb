package main

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// A debseal command blocked where no context reaches (a held debseal lock,
// a FIFO read) stops within a second of SIGTERM or SIGINT, with a message
// and exit 128+signal: a hung hook must not hang dpkg, nor ignore the
// admin.
func TestSignalStopsBlockedCommand(t *testing.T) {
	s := testutil.NewSandbox(t)
	bin := testutil.Binary(t)
	// Hold debseal's own lock, as another debseal would.
	if err := os.MkdirAll(s.Path("/var/lib/debseal"), 0o755); err != nil {
		t.Fatal(err)
	}
	lock, err := os.OpenFile(s.Path("/var/lib/debseal/lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  []string
		sig  syscall.Signal
	}{
		{"recover waiting for the lock, SIGTERM", []string{"--root", s.Root, "recover"}, nil, syscall.SIGTERM},
		{"recover waiting for the lock, SIGINT", []string{"--root", s.Root, "recover"}, nil, syscall.SIGINT},
		// inspect no longer blocks on a FIFO (it refuses it: TestInspectRefusesFIFO).
		{"lock waiting for the lock, SIGTERM", []string{"--root", s.Root, "lock", "--all"}, nil, syscall.SIGTERM},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cmd := exec.Command(bin, tc.args...)
			cmd.Env = append(append(os.Environ(), "DEBSEAL_REFUSE_HOST_ROOT=1"), tc.env...)
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			select {
			case err := <-exited:
				t.Fatalf("debseal %s did not block: %v\n%s", strings.Join(tc.args, " "), err, stderr.String())
			case <-time.After(500 * time.Millisecond):
			}
			start := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-exited:
				took := time.Since(start)
				var ee *exec.ExitError
				if !errors.As(err, &ee) || ee.ExitCode() != 128+int(tc.sig) {
					t.Errorf("exit: %v, want status %d", err, 128+int(tc.sig))
				}
				if !strings.Contains(stderr.String(), "debseal: stopped by "+signalName(tc.sig)) {
					t.Errorf("stderr lacks the message:\n%s", stderr.String())
				}
				t.Logf("stopped %v after %s", took, signalName(tc.sig))
			case <-time.After(time.Second):
				cmd.Process.Kill() // this test's own child, by its pid
				<-exited
				t.Fatalf("debseal %s still runs a second after %s\n%s", strings.Join(tc.args, " "), signalName(tc.sig), stderr.String())
			}
		})
	}
}

// waitsForChild finds the command word behind the global options.
func TestWaitsForChild(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{[]string{"debseal", "dpkg", "-i", "x.deb"}, true},
		{[]string{"debseal", "--root", "/r", "--admindir=/a", "dpkg", "--configure", "-a"}, true},
		{[]string{"debseal", "--root", "dpkg", "lock", "--all"}, false},
		{[]string{"debseal", "hook", "dpkg-pre"}, false},
		{[]string{"debseal"}, false},
	} {
		if got := waitsForChild(tc.args); got != tc.want {
			t.Errorf("waitsForChild(%q) = %v, want %v", tc.args, got, tc.want)
		}
	}
}

// lock never runs under a dpkg that is changing files: it would lock them
// under it. While another process holds dpkg's lock, lock refuses (and
// says why); unlock, which only makes files mutable, goes on.
func TestLockRefusesWhileDpkgRuns(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	holder := exec.Command(os.Args[0], "-test.run=^TestHelperHoldDpkgLock$")
	holder.Env = append(os.Environ(), "DEBSEAL_HOLD_LOCK="+filepath.Join(s.Admindir, "lock"))
	out, err := holder.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		holder.Process.Kill()
		holder.Wait()
	})
	buf := make([]byte, 5)
	if _, err := io.ReadFull(out, buf); err != nil || string(buf) != "held\n" {
		t.Fatalf("lock holder: %q, %v", buf, err)
	}
	_, errOut, code := debseal(t, "--root", s.Root, "lock", "--all")
	if code != exitError || !strings.Contains(errOut, "dpkg runs") {
		t.Errorf("lock --all while dpkg runs: exit %d, %q; want exit %d saying dpkg runs", code, errOut, exitError)
	}
	if testutil.IsImmutable(t, s.Path("/usr/bin/dstest-tool")) {
		t.Error("lock --all locked a file while dpkg ran")
	}
	if _, errOut, code := debseal(t, "--root", s.Root, "unlock", "--all"); code != 0 {
		t.Errorf("unlock --all while dpkg runs: exit %d\n%s", code, errOut)
	}
}

// TestHelperHoldDpkgLock is the child of TestLockRefusesWhileDpkgRuns: it
// holds dpkg's lock as dpkg does (an fcntl lock) until it is killed.
func TestHelperHoldDpkgLock(t *testing.T) {
	p := os.Getenv("DEBSEAL_HOLD_LOCK")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("held\n")
	time.Sleep(time.Minute)
}
