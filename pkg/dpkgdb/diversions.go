package dpkgdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
)

// Diversion is one entry of the diversions database: files shipped at From
// by any package other than Package are placed at To.
type Diversion struct {
	From, To string
	Package  string // the diverting package; "" for a local diversion (":")
}

// Diversions is the parsed diversions database.
type Diversions struct {
	List   []Diversion
	byFrom map[string]int
	byTo   map[string]int
}

// ParseDiversions reads the diversions file: groups of three lines (from,
// to, package or ":"). A missing line, a relative path or a path diverted
// twice is an error naming the file and line.
func ParseDiversions(r io.Reader, name string) (*Diversions, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	d := &Diversions{byFrom: map[string]int{}, byTo: map[string]int{}}
	var group [3]string
	n, start := 0, 0
	for sc.Scan() {
		n++
		i := (n - 1) % 3
		if i == 0 {
			start = n
		}
		group[i] = sc.Text()
		if i < 2 {
			if group[i] == "" || group[i][0] != '/' {
				return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("diversion path %q is not absolute", group[i])}
			}
			continue
		}
		pkg := group[2]
		switch pkg {
		case ":":
			pkg = ""
		case "":
			return nil, &CorruptError{File: name, Line: n, Err: errors.New("empty package name (use \":\" for a local diversion)")}
		}
		div := Diversion{From: group[0], To: group[1], Package: pkg}
		if _, dup := d.byFrom[div.From]; dup {
			return nil, &CorruptError{File: name, Line: start, Err: fmt.Errorf("%s is diverted twice", div.From)}
		}
		d.byFrom[div.From] = len(d.List)
		d.byTo[div.To] = len(d.List)
		d.List = append(d.List, div)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkgdb: read %s: %w", name, err)
	}
	if n%3 != 0 {
		return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("file ends in the middle of a diversion (%d lines, want a multiple of 3)", n)}
	}
	return d, nil
}

// Resolve returns where the file that package owner lists at path really
// is: the diverted-to name when another package (or the admin) diverts
// path, path itself otherwise. This is dpkg's namenodetouse().
func (d *Diversions) Resolve(path, owner string) string {
	if d == nil {
		return path
	}
	i, ok := d.byFrom[path]
	if !ok {
		return path
	}
	if div := d.List[i]; div.Package != "" && div.Package == owner {
		return path
	}
	return d.List[i].To
}

// ByFrom returns the diversion of path, if any.
func (d *Diversions) ByFrom(path string) (Diversion, bool) {
	if d == nil {
		return Diversion{}, false
	}
	i, ok := d.byFrom[path]
	if !ok {
		return Diversion{}, false
	}
	return d.List[i], true
}

// ByTo returns the diversion whose target is path, if any.
func (d *Diversions) ByTo(path string) (Diversion, bool) {
	if d == nil {
		return Diversion{}, false
	}
	i, ok := d.byTo[path]
	if !ok {
		return Diversion{}, false
	}
	return d.List[i], true
}
