package dpkghook

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Proc is what /proc says about a process.
type Proc struct {
	Pid, PPid int
	Comm      string
	StartTime uint64   // clock ticks since boot (field 22 of stat): with Pid, identifies the process
	Cmdline   []string // argv
}

// ProcID identifies a process across pid reuse.
type ProcID struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"`
}

// ID returns the process identity.
func (p *Proc) ID() ProcID { return ProcID{Pid: p.Pid, StartTime: p.StartTime} }

// ReadProc reads /proc/<pid>/stat and cmdline under procRoot ("/proc").
func ReadProc(procRoot string, pid int) (*Proc, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, fmt.Errorf("dpkghook: %w", err)
	}
	p, err := parseStat(stat)
	if err != nil {
		return nil, fmt.Errorf("dpkghook: %s/stat: %w", dir, err)
	}
	cmd, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, fmt.Errorf("dpkghook: %w", err)
	}
	cmd = bytes.TrimSuffix(cmd, []byte{0})
	if len(cmd) > 0 {
		p.Cmdline = strings.Split(string(cmd), "\x00")
	}
	return p, nil
}

// parseStat parses "pid (comm) state ppid … starttime …"; comm may hold
// spaces and parentheses, so it ends at the last ')'.
func parseStat(b []byte) (*Proc, error) {
	s := string(b)
	open := strings.IndexByte(s, '(')
	close := strings.LastIndexByte(s, ')')
	if open < 0 || close < open {
		return nil, errors.New("no (comm) field")
	}
	pid, err := strconv.Atoi(strings.TrimSpace(s[:open]))
	if err != nil {
		return nil, fmt.Errorf("bad pid: %w", err)
	}
	f := strings.Fields(s[close+1:])
	// f[0] is field 3 (state); ppid is field 4, starttime field 22.
	if len(f) < 20 {
		return nil, fmt.Errorf("%d fields after comm, want at least 20", len(f))
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return nil, fmt.Errorf("bad ppid: %w", err)
	}
	start, err := strconv.ParseUint(f[19], 10, 64)
	if err != nil {
		return nil, fmt.Errorf("bad starttime: %w", err)
	}
	return &Proc{Pid: pid, PPid: ppid, Comm: s[open+1 : close], StartTime: start}, nil
}

// Alive reports whether the process id still runs (same pid and start
// time: a recycled pid is not the same process).
func Alive(procRoot string, id ProcID) bool {
	if id.Pid <= 0 {
		return false
	}
	b, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(id.Pid), "stat"))
	if err != nil {
		return false
	}
	p, err := parseStat(b)
	if err != nil {
		return false
	}
	return p.StartTime == id.StartTime && !strings.Contains(string(b), ") Z ") // a zombie is dead
}

var shells = map[string]bool{"sh": true, "dash": true, "bash": true, "busybox": true, "ash": true, "zsh": true}

// FindInvoker walks up from process pid past shells and returns the first
// ancestor that is not one: for a dpkg hook run as "sh -c HOOK" that is
// dpkg itself (dash may exec the hook directly, in which case dpkg is the
// parent).
func FindInvoker(procRoot string, pid int) (*Proc, error) {
	self, err := ReadProc(procRoot, pid)
	if err != nil {
		return nil, err
	}
	cur := self.PPid
	for depth := 0; depth < 16 && cur > 1; depth++ {
		p, err := ReadProc(procRoot, cur)
		if err != nil {
			return nil, err
		}
		if !shells[p.Comm] {
			return p, nil
		}
		cur = p.PPid
	}
	return nil, fmt.Errorf("dpkghook: no non-shell ancestor of process %d", pid)
}
