package dpkgdb

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"strconv"
	"strings"
)

// StatOverride is one line of the statoverride database.
type StatOverride struct {
	User, Group string // a name, or "#<id>"
	Mode        fs.FileMode
	Path        string
}

// ParseStatOverrides reads the statoverride file: "user group mode path"
// per line; the path (last) may contain spaces.
func ParseStatOverrides(r io.Reader, name string) (map[string]StatOverride, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	out := map[string]StatOverride{}
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if strings.TrimSpace(line) == "" {
			continue
		}
		f := strings.SplitN(line, " ", 4)
		if len(f) != 4 || f[0] == "" || f[1] == "" {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("want \"user group mode path\", got %q", line)}
		}
		mode, err := strconv.ParseUint(f[2], 8, 32)
		if err != nil || mode > 07777 {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("invalid mode %q", f[2])}
		}
		if !strings.HasPrefix(f[3], "/") {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("path %q is not absolute", f[3])}
		}
		o := StatOverride{User: f[0], Group: f[1], Mode: unixMode(uint32(mode)), Path: f[3]}
		if _, dup := out[o.Path]; dup {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("%s overridden twice", o.Path)}
		}
		out[o.Path] = o
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkgdb: read %s: %w", name, err)
	}
	return out, nil
}

// unixMode converts permission bits including setuid/setgid/sticky from
// their Unix octal form to fs.FileMode.
func unixMode(m uint32) fs.FileMode {
	fm := fs.FileMode(m & 0777)
	if m&04000 != 0 {
		fm |= fs.ModeSetuid
	}
	if m&02000 != 0 {
		fm |= fs.ModeSetgid
	}
	if m&01000 != 0 {
		fm |= fs.ModeSticky
	}
	return fm
}
