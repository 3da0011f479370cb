package debfmt

import (
	"bufio"
	"fmt"
	"io"
	"strings"
)

// Conffile is one line of a control member's conffiles file.
type Conffile struct {
	Path            string
	RemoveOnUpgrade bool // the conffile is removed at the next upgrade (dpkg >= 1.20.6)
}

// ParseConffiles reads a conffiles control member: one absolute path per
// line, optionally preceded by flags ("remove-on-upgrade /etc/x"). Unknown
// flags are errors, as in dpkg. Malformed lines go to bad.
func ParseConffiles(r io.Reader, name string) (cf []Conffile, bad []error, err error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimRight(sc.Text(), " \t")
		if line == "" {
			continue
		}
		var c Conffile
		path := line
		if !strings.HasPrefix(line, "/") {
			// Flags come first; the path (which may contain spaces)
			// starts at the first " /".
			i := strings.Index(line, " /")
			if i < 0 {
				bad = append(bad, &LineError{File: name, Line: n, Msg: fmt.Sprintf("conffile %q is not an absolute path", line)})
				continue
			}
			path = line[i+1:]
			var unknown string
			for _, flag := range strings.Fields(line[:i]) {
				if flag == "remove-on-upgrade" {
					c.RemoveOnUpgrade = true
				} else {
					unknown = flag
				}
			}
			if unknown != "" {
				bad = append(bad, &LineError{File: name, Line: n, Msg: fmt.Sprintf("unknown conffile flag %q", unknown)})
				continue
			}
		}
		p, perr := CleanPath(path)
		if perr != nil {
			bad = append(bad, &LineError{File: name, Line: n, Msg: perr.Error()})
			continue
		}
		c.Path = p
		cf = append(cf, c)
	}
	if err := sc.Err(); err != nil {
		return cf, bad, fmt.Errorf("debfmt: read %s: %w", name, err)
	}
	return cf, bad, nil
}
