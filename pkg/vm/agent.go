// Package vm boots a Debian guest under qemu and drives it: a command
// channel to an agent in the guest (agent.sh, on a virtio-serial port),
// power cuts (SIGKILL of qemu) and the serial console's log. It owns the
// qemu process and the channel, not the guest image (scripts/vm-image.sh)
// nor what the tests check in the guest (vmtest/).
package vm

import (
	"bufio"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// AgentScript is the guest half of the channel: scripts/vm-image.sh
// installs this file in the image as debseal-vmagent.
//
//go:embed agent.sh
var AgentScript string

// ErrTimeout is returned when a command's answer does not come in time.
var ErrTimeout = errors.New("vm: timeout")

// ErrGone is returned when the channel closed before the answer came: the
// guest powered off, or its qemu was killed.
var ErrGone = errors.New("vm: guest gone")

// Result is a finished command: its exit status and its stdout and stderr
// combined.
type Result struct {
	Status int
	Out    string
}

// Agent speaks the agent's line protocol (see agent.sh) over a stream.
type Agent struct {
	w io.Writer

	mu      sync.Mutex
	next    int
	pending map[string]chan Result
	err     error // why the reader stopped; sticky
	closed  chan struct{}
}

// NewAgent starts reading answers from r; requests go to w.
func NewAgent(r io.Reader, w io.Writer) *Agent {
	a := &Agent{w: w, pending: map[string]chan Result{}, closed: make(chan struct{})}
	go a.read(r)
	return a
}

func (a *Agent) read(r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 256<<20)
	var err error
	for sc.Scan() {
		id, res, perr := parseReply(sc.Text())
		if perr != nil {
			// A stray line (the port echoes nothing, but be strict about
			// what counts as an answer, not about noise).
			continue
		}
		a.mu.Lock()
		ch := a.pending[id]
		delete(a.pending, id)
		a.mu.Unlock()
		if ch != nil {
			ch <- res
		}
	}
	if err = sc.Err(); err == nil {
		err = io.EOF
	}
	a.mu.Lock()
	a.err = fmt.Errorf("%w: %v", ErrGone, err)
	a.mu.Unlock()
	close(a.closed)
}

func parseReply(line string) (string, Result, error) {
	f := strings.SplitN(line, " ", 3)
	if len(f) < 2 {
		return "", Result{}, fmt.Errorf("vm: short reply %q", line)
	}
	st, err := strconv.Atoi(f[1])
	if err != nil {
		return "", Result{}, fmt.Errorf("vm: reply %q: status: %w", line, err)
	}
	var out []byte
	if len(f) == 3 {
		if out, err = base64.StdEncoding.DecodeString(f[2]); err != nil {
			return "", Result{}, fmt.Errorf("vm: reply %q: output: %w", f[0], err)
		}
	}
	return f[0], Result{Status: st, Out: string(out)}, nil
}

// Pending is a command the agent is running.
type Pending struct {
	a  *Agent
	id string
	ch chan Result
}

// Start sends script (run by bash in the guest) and returns without
// waiting for it.
func (a *Agent) Start(script string) (*Pending, error) {
	a.mu.Lock()
	if a.err != nil {
		err := a.err
		a.mu.Unlock()
		return nil, err
	}
	a.next++
	id := "c" + strconv.Itoa(a.next)
	ch := make(chan Result, 1)
	a.pending[id] = ch
	a.mu.Unlock()
	line := id + " " + base64.StdEncoding.EncodeToString([]byte(script)) + "\n"
	if _, err := io.WriteString(a.w, line); err != nil {
		a.forget(id)
		return nil, fmt.Errorf("vm: send %s: %w", id, err)
	}
	return &Pending{a: a, id: id, ch: ch}, nil
}

func (a *Agent) forget(id string) {
	a.mu.Lock()
	delete(a.pending, id)
	a.mu.Unlock()
}

// Wait waits up to timeout for the command's answer. A timeout leaves the
// command pending: Wait can be called again, so a caller can poll a long
// command while it does other things. Abandon a command it no longer wants.
func (p *Pending) Wait(timeout time.Duration) (Result, error) {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case r := <-p.ch:
		return r, nil
	case <-p.a.closed:
		select {
		case r := <-p.ch:
			return r, nil
		default:
		}
		p.a.mu.Lock()
		defer p.a.mu.Unlock()
		return Result{}, p.a.err
	case <-t.C:
		return Result{}, fmt.Errorf("%w after %v", ErrTimeout, timeout)
	}
}

// Abandon forgets the command: its answer, if it comes, is dropped.
func (p *Pending) Abandon() { p.a.forget(p.id) }

// Run sends script and waits up to timeout for its answer; a command that
// times out is abandoned.
func (a *Agent) Run(timeout time.Duration, script string) (Result, error) {
	p, err := a.Start(script)
	if err != nil {
		return Result{}, err
	}
	r, err := p.Wait(timeout)
	if errors.Is(err, ErrTimeout) {
		p.Abandon()
	}
	return r, err
}

// ReadFile returns the contents of a file in the guest.
func (a *Agent) ReadFile(timeout time.Duration, path string) ([]byte, error) {
	r, err := a.Run(timeout, "cat -- "+ShellQuote(path))
	if err != nil {
		return nil, fmt.Errorf("vm: read %s: %w", path, err)
	}
	if r.Status != 0 {
		return nil, fmt.Errorf("vm: read %s: exit status %d: %s", path, r.Status, strings.TrimSpace(r.Out))
	}
	return []byte(r.Out), nil
}

// ShellQuote quotes s for bash.
func ShellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
