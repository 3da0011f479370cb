package debfmt

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Trigger is one directive of a triggers control file.
type Trigger struct {
	Directive string // interest, interest-await, interest-noawait, activate, activate-await, activate-noawait
	Name      string // trigger name, or an absolute path for a file trigger
}

// Interest reports whether the directive declares an interest (as opposed to
// an activation).
func (t Trigger) Interest() bool { return strings.HasPrefix(t.Directive, "interest") }

// File reports whether the trigger is a file trigger (its name is a path).
func (t Trigger) File() bool { return strings.HasPrefix(t.Name, "/") }

var triggerDirectives = map[string]bool{
	"interest": true, "interest-await": true, "interest-noawait": true,
	"activate": true, "activate-await": true, "activate-noawait": true,
}

// ParseTriggers reads a triggers control file (deb-triggers(5)): blank lines
// and lines starting with '#' are ignored, every other line is
// "<directive> <trigger-name>".
func ParseTriggers(r io.Reader, name string) (ts []Trigger, bad []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			bad = append(bad, &LineError{File: name, Line: n, Msg: fmt.Sprintf("want \"<directive> <trigger>\", got %q", line)})
			continue
		}
		if !triggerDirectives[f[0]] {
			bad = append(bad, &LineError{File: name, Line: n, Msg: fmt.Sprintf("unknown trigger directive %q", f[0])})
			continue
		}
		ts = append(ts, Trigger{Directive: f[0], Name: f[1]})
	}
	if err := sc.Err(); err != nil {
		return ts, bad, fmt.Errorf("debfmt: read %s: %w", name, err)
	}
	return ts, bad, nil
}
