// Package debfmt parses the small line formats that a .deb's control member
// and dpkg's info database share: md5sums (deb-md5sums(5)), conffiles
// (deb-conffiles(5)), triggers (deb-triggers(5)), and the package paths they
// all contain.
//
// It owns syntax only; the control paragraph is pkg/deb822, the archive is
// pkg/deb and the installed database is pkg/dpkgdb. Parsers read an
// io.Reader; a malformed line is reported as a *LineError naming the file
// and line, and the parsers that feed audits keep going after one.
package debfmt

import (
	"errors"
	"fmt"
	"strings"
)

// ErrSyntax is matched by every *LineError.
var ErrSyntax = errors.New("debfmt: syntax error")

// LineError is one malformed line.
type LineError struct {
	File string
	Line int
	Msg  string
}

func (e *LineError) Error() string {
	name := e.File
	if name == "" {
		name = "<input>"
	}
	return fmt.Sprintf("%s:%d: %s", name, e.Line, e.Msg)
}

// Is makes errors.Is(err, ErrSyntax) true.
func (e *LineError) Is(target error) bool { return target == ErrSyntax }

// CleanPath turns a path as packages write it ("./usr/bin/x", "usr/bin/x",
// "/usr/bin/x/", "/usr//bin/./x") into the absolute form dpkg's .list files
// use ("/usr/bin/x"). The root itself is "/". It refuses paths that could
// leave the root ("..") and paths with NUL or newline bytes, which no real
// package contains and which would break every line format.
func CleanPath(p string) (string, error) {
	if p == "" {
		return "", errors.New("empty path")
	}
	if strings.ContainsAny(p, "\x00\n") {
		return "", fmt.Errorf("path %q contains a NUL or newline byte", p)
	}
	if isClean(p) {
		return p, nil // the common case: dpkg's own lists are clean
	}
	if len(p) > 2 && p[0] == '.' && p[1] == '/' && isClean(p[1:]) {
		return p[1:], nil // "./usr/bin/x" as tar members name files
	}
	if p[0] != '/' && p[0] != '.' {
		if q := "/" + p; isClean(q) {
			return q, nil // "usr/bin/x" as md5sums name files
		}
	}
	return cleanSlow(p)
}

// cleanSlow is CleanPath for paths that need rewriting.
func cleanSlow(p string) (string, error) {
	parts := strings.Split(p, "/")
	out := make([]string, 0, len(parts))
	for _, c := range parts {
		switch c {
		case "", ".":
			continue
		case "..":
			return "", fmt.Errorf("path %q contains \"..\"", p)
		}
		out = append(out, c)
	}
	return "/" + strings.Join(out, "/"), nil
}

// isClean reports whether p is already in CleanPath's output form:
// absolute, no empty, "." or ".." components, no trailing slash.
func isClean(p string) bool {
	if p == "/" {
		return true
	}
	if p[0] != '/' || p[len(p)-1] == '/' {
		return false
	}
	for i := 0; i < len(p); {
		// p[i] is a '/'; look at the component after it.
		j := strings.IndexByte(p[i+1:], '/')
		c := p[i+1:]
		if j >= 0 {
			c = p[i+1 : i+1+j]
		}
		if c == "" || c == "." || c == ".." {
			return false
		}
		if j < 0 {
			return true
		}
		i += j + 1
	}
	return true
}
