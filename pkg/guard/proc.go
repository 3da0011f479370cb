package guard

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Status is what the guard needs of /proc/PID/status.
type Status struct {
	Name   string
	PPid   int
	CapEff uint64
	CapBnd uint64
}

// Holds reports whether the bounding set still has CAP_LINUX_IMMUTABLE.
func (s Status) Holds() bool { return s.CapBnd&(1<<CapLinuxImmutable) != 0 }

// Effective reports whether the process can clear the flag now.
func (s Status) Effective() bool { return s.CapEff&(1<<CapLinuxImmutable) != 0 }

// ParseStatus reads the fields of /proc/PID/status the guard uses. A
// status without CapBnd or CapEff (not Linux, or a kernel older than
// 2.6.25) is an error.
func ParseStatus(r io.Reader) (Status, error) {
	var s Status
	var haveBnd, haveEff bool
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		val = strings.TrimSpace(val)
		var err error
		switch key {
		case "Name":
			s.Name = val
		case "PPid":
			s.PPid, err = strconv.Atoi(val)
		case "CapEff":
			s.CapEff, err = strconv.ParseUint(val, 16, 64)
			haveEff = true
		case "CapBnd":
			s.CapBnd, err = strconv.ParseUint(val, 16, 64)
			haveBnd = true
		}
		if err != nil {
			return Status{}, fmt.Errorf("guard: status field %s: %w", key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return Status{}, fmt.Errorf("guard: status: %w", err)
	}
	if !haveBnd || !haveEff {
		return Status{}, errors.New("guard: status has no CapBnd/CapEff line")
	}
	return s, nil
}

// ParseCgroup returns the service unit a process runs in, from
// /proc/PID/cgroup: the last "*.service" component of its cgroup v2 path
// (or of the name=systemd hierarchy on a hybrid system) below
// system.slice. Processes of login sessions (user.slice), init.scope and
// other scopes are in no service: "".
func ParseCgroup(r io.Reader) (string, error) {
	var v2, named string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		switch {
		case parts[0] == "0" && parts[1] == "":
			v2 = parts[2]
		case parts[1] == "name=systemd":
			named = parts[2]
		}
	}
	if err := sc.Err(); err != nil {
		return "", fmt.Errorf("guard: cgroup: %w", err)
	}
	p := named
	if p == "" {
		p = v2
	}
	if !strings.HasPrefix(p, "/system.slice/") {
		return "", nil
	}
	unit := ""
	for _, c := range strings.Split(p, "/") {
		if strings.HasSuffix(c, ".service") {
			unit = c
		}
	}
	return unit, nil
}

// Holder is a running service whose processes can still clear the flag.
type Holder struct {
	Unit string
	PIDs []int
	Comm string // the first process's name
}

// Scan lists the services (by their unit, from /proc/PID/cgroup) with a
// process whose bounding set still holds CAP_LINUX_IMMUTABLE and that
// allow does not cover (see Allowed). proc is the proc filesystem's
// mount point ("/proc"). Processes in no service (kernel threads, init,
// login sessions) and processes that end while being read are skipped.
func Scan(proc string, allow []string) ([]Holder, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("guard: %w", err)
	}
	byUnit := map[string]*Holder{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 0 {
			continue
		}
		unit, st, err := readProcess(filepath.Join(proc, e.Name()))
		if err != nil {
			return nil, err
		}
		if unit == "" || !st.Holds() || Allowed(unit, allow) {
			continue
		}
		h := byUnit[unit]
		if h == nil {
			h = &Holder{Unit: unit, Comm: st.Name}
			byUnit[unit] = h
		}
		h.PIDs = append(h.PIDs, pid)
	}
	out := make([]Holder, 0, len(byUnit))
	for _, h := range byUnit {
		sort.Ints(h.PIDs)
		out = append(out, *h)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Unit < out[j].Unit })
	return out, nil
}

// readProcess reads one process's unit and status; a process gone
// meanwhile is "" and no error.
func readProcess(dir string) (string, Status, error) {
	cg, err := os.Open(filepath.Join(dir, "cgroup"))
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, os.ErrPermission) {
		return "", Status{}, nil
	}
	if err != nil {
		return "", Status{}, fmt.Errorf("guard: %w", err)
	}
	unit, err := ParseCgroup(cg)
	cg.Close()
	if err != nil || unit == "" {
		return "", Status{}, err
	}
	f, err := os.Open(filepath.Join(dir, "status"))
	if errors.Is(err, fs.ErrNotExist) {
		return "", Status{}, nil
	}
	if err != nil {
		return "", Status{}, fmt.Errorf("guard: %w", err)
	}
	defer f.Close()
	st, err := ParseStatus(f)
	if err != nil {
		// A process that exits between open and read reads as empty.
		if _, serr := os.Stat(dir); errors.Is(serr, fs.ErrNotExist) {
			return "", Status{}, nil
		}
		return "", Status{}, fmt.Errorf("guard: %s: %w", dir, err)
	}
	return unit, st, nil
}

// Self reads this process's status.
func Self() (Status, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return Status{}, fmt.Errorf("guard: %w", err)
	}
	defer f.Close()
	return ParseStatus(f)
}
