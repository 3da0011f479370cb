// Package policy decides what debseal locks: which paths of which
// packages, and whether directories too. It reads /etc/debseal/debseal.conf.
//
// It does not look at the filesystem or the dpkg database: callers ask
// about a path or a package name and get a yes/no with a reason. Conffiles
// are never locked, whatever the configuration says; that rule lives in
// pkg/seal, which knows which paths are conffiles.
package policy

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
)

// DefaultExcluded are the trees whose files are never locked unless an
// include-path says otherwise: variable data, runtime state, users' files
// and kernel filesystems.
var DefaultExcluded = []string{"/var", "/run", "/tmp", "/home", "/srv", "/dev", "/proc", "/sys"}

// Rule is one include-path or exclude-path line.
type Rule struct {
	Pattern string
	Include bool
	Line    int // 0 for built-in defaults
}

// Config is the parsed configuration. The zero value is not useful; start
// from Default.
type Config struct {
	File            string // where it came from ("" for defaults)
	LockDirectories bool
	Rules           []Rule   // defaults first, then the file's, in order; the last match wins
	ExcludePackages []string // glob patterns on package names
	settings        map[string]string
}

// Default returns the built-in policy.
func Default() *Config {
	c := &Config{settings: map[string]string{}}
	for _, p := range DefaultExcluded {
		c.Rules = append(c.Rules, Rule{Pattern: p})
	}
	return c
}

// SyntaxError is a malformed configuration line.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("policy: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Load reads the configuration file; a missing file means the defaults.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Default(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// knownKeys are the settings the file may contain; values other packages
// need (pkg/seal, the hooks) are read with Setting after validation here.
var knownKeys = map[string]string{
	"lock-directories": "bool",
	"include-path":     "pattern",
	"exclude-path":     "pattern",
	"exclude-package":  "pattern",
}

// RegisterKey lets another package declare a setting it reads with
// Setting; kind is "bool", "pattern" or "string". Call it from init.
func RegisterKey(key, kind string) { knownKeys[key] = kind }

// Parse reads a configuration: "key = value" lines, '#' comments and blank
// lines. Unknown keys and bad values are errors naming the line.
func Parse(r io.Reader, name string) (*Config, error) {
	c := Default()
	c.File = name
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &SyntaxError{name, n, fmt.Sprintf("want \"key = value\", got %q", line)}
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		kind, known := knownKeys[key]
		if !known {
			return nil, &SyntaxError{name, n, fmt.Sprintf("unknown setting %q", key)}
		}
		switch kind {
		case "bool":
			b, err := parseBool(val)
			if err != nil {
				return nil, &SyntaxError{name, n, fmt.Sprintf("%s: %v", key, err)}
			}
			if key == "lock-directories" {
				c.LockDirectories = b
			}
			c.settings[key] = fmt.Sprint(b)
		case "pattern":
			if err := checkPattern(val); err != nil {
				return nil, &SyntaxError{name, n, fmt.Sprintf("%s: %v", key, err)}
			}
			switch key {
			case "include-path", "exclude-path":
				if !strings.HasPrefix(val, "/") && !strings.HasPrefix(val, "*") {
					return nil, &SyntaxError{name, n, fmt.Sprintf("%s: pattern %q must start with / or *", key, val)}
				}
				c.Rules = append(c.Rules, Rule{Pattern: val, Include: key == "include-path", Line: n})
			case "exclude-package":
				c.ExcludePackages = append(c.ExcludePackages, val)
			default:
				c.settings[key] = val
			}
		default:
			if val == "" {
				return nil, &SyntaxError{name, n, fmt.Sprintf("%s: empty value", key)}
			}
			c.settings[key] = val
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy: read %s: %w", name, err)
	}
	return c, nil
}

// Setting returns a registered setting's value as written ("" if unset;
// booleans as "true"/"false").
func (c *Config) Setting(key string) string { return c.settings[key] }

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not yes or no", v)
}

// PathLocked reports whether policy lets a package file at path be locked,
// and if not, the rule that excludes it.
func (c *Config) PathLocked(path string) (bool, Rule) {
	locked := true
	var why Rule
	for _, r := range c.Rules {
		if matchPath(r.Pattern, path) {
			locked = r.Include
			why = r
		}
	}
	return locked, why
}

// PackageExcluded reports whether the package's files are left alone.
func (c *Config) PackageExcluded(name string) bool {
	for _, p := range c.ExcludePackages {
		if match(p, name) {
			return true
		}
	}
	return false
}

// matchPath matches a rule pattern against a path: a pattern without
// wildcards names a path and everything below it; one with wildcards is a
// glob over the whole path in which '*' also matches '/' (as dpkg's
// path-exclude does).
func matchPath(pattern, path string) bool {
	if !strings.ContainsAny(pattern, "*?[") {
		p := strings.TrimSuffix(pattern, "/")
		return path == p || strings.HasPrefix(path, p+"/") || p == ""
	}
	return match(pattern, path)
}
