package vm

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startAgent runs the real agent.sh on pipes, as the guest runs it on the
// virtio-serial port.
func startAgent(t *testing.T) (*Agent, func()) {
	t.Helper()
	if _, err := exec.LookPath("bash"); err != nil {
		t.Skip("no bash")
	}
	cmd := exec.Command("bash", "agent.sh")
	cmd.Env = append(os.Environ(), "VMAGENT_DIR="+t.TempDir())
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// stop is the power cut: the agent and everything it runs, at once.
	stop := func() {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		in.Close()
		cmd.Wait()
	}
	t.Cleanup(stop)
	return NewAgent(out, in), stop
}

func TestAgentRun(t *testing.T) {
	a, _ := startAgent(t)
	tests := []struct {
		name   string
		script string
		status int
		out    string
	}{
		{"ok", "echo hello", 0, "hello\n"},
		{"status", "echo bad >&2; exit 3", 3, "bad\n"},
		{"multiline", "for i in 1 2; do\n  echo $i\ndone", 0, "1\n2\n"},
		{"quotes", `printf '%s\n' "a b" 'c'"'"'d'`, 0, "a b\nc'd\n"},
		{"no stdin", "cat; echo done", 0, "done\n"},
		{"empty", "", 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := a.Run(10*time.Second, tt.script)
			if err != nil {
				t.Fatalf("Run(%q) = %v", tt.script, err)
			}
			if r.Status != tt.status || r.Out != tt.out {
				t.Errorf("Run(%q) = %d %q, want %d %q", tt.script, r.Status, r.Out, tt.status, tt.out)
			}
		})
	}
}

func TestAgentConcurrent(t *testing.T) {
	a, _ := startAgent(t)
	slow, err := a.Start("sleep 2; echo slow")
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	r, err := a.Run(10*time.Second, "echo fast")
	if err != nil || r.Out != "fast\n" {
		t.Fatalf("Run(fast) = %v %q", err, r.Out)
	}
	if d := time.Since(start); d > 1500*time.Millisecond {
		t.Errorf("fast command waited %v behind the slow one", d)
	}
	r, err = slow.Wait(10 * time.Second)
	if err != nil || r.Out != "slow\n" {
		t.Errorf("slow = %v %q", err, r.Out)
	}
}

func TestAgentReadFile(t *testing.T) {
	a, _ := startAgent(t)
	dir := t.TempDir()
	big := bytes.Repeat([]byte("0123456789abcdef\x00\xff\n"), 40000) // beyond one argv string
	path := filepath.Join(dir, "it's big")
	if err := os.WriteFile(path, big, 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := a.ReadFile(10*time.Second, path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, big) {
		t.Errorf("ReadFile = %d bytes, want %d", len(got), len(big))
	}
	if _, err := a.ReadFile(10*time.Second, filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "exit status 1") {
		t.Errorf("ReadFile(missing) = %v, want exit status 1", err)
	}
}

// TestAgentPoll: a Wait that times out leaves the command pending, so a
// caller polling a long command (the power-cut tests do) still gets its
// answer; an abandoned command's answer is dropped.
func TestAgentPoll(t *testing.T) {
	a, _ := startAgent(t)
	p, err := a.Start("sleep 1; echo done; exit 4")
	if err != nil {
		t.Fatal(err)
	}
	polls := 0
	for {
		r, err := p.Wait(50 * time.Millisecond)
		if errors.Is(err, ErrTimeout) {
			polls++
			if polls > 200 {
				t.Fatal("no answer after 200 polls")
			}
			continue
		}
		if err != nil || r.Status != 4 || r.Out != "done\n" {
			t.Fatalf("Wait = %v %d %q, want 4 %q", err, r.Status, r.Out, "done\n")
		}
		break
	}
	if polls == 0 {
		t.Errorf("the first 50 ms poll already had the answer of a 1 s command")
	}
	q, err := a.Start("echo late")
	if err != nil {
		t.Fatal(err)
	}
	q.Abandon()
	if r, err := q.Wait(2 * time.Second); !errors.Is(err, ErrTimeout) {
		t.Errorf("Wait after Abandon = %v %q, want ErrTimeout", err, r.Out)
	}
}

func TestAgentTimeoutAndGone(t *testing.T) {
	a, stop := startAgent(t)
	if _, err := a.Run(300*time.Millisecond, "sleep 5"); !errors.Is(err, ErrTimeout) {
		t.Errorf("Run(sleep 5) = %v, want ErrTimeout", err)
	}
	p, err := a.Start("sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	stop()
	if _, err := p.Wait(5 * time.Second); !errors.Is(err, ErrGone) {
		t.Errorf("Wait after a power cut = %v, want ErrGone", err)
	}
	if _, err := a.Run(5*time.Second, "true"); !errors.Is(err, ErrGone) {
		t.Errorf("Run after a power cut = %v, want ErrGone", err)
	}
}
