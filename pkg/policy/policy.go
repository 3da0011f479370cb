// Package policy decides what debseal locks: which paths of which
// packages, and whether directories too, and how much a dpkg run unlocks.
// It reads /etc/debseal/debseal.conf and owns the whole list of its
// settings and what each accepts: no other package reads the file or
// interprets a setting by name.
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

	"github.com/debseal/debseal/pkg/guard"
)

// DefaultExcluded are the trees whose files are never locked unless an
// include-path says otherwise: variable data, runtime state, users' files
// and kernel filesystems.
var DefaultExcluded = []string{"/var", "/run", "/tmp", "/home", "/srv", "/dev", "/proc", "/sys"}

// Rule is one include-path or exclude-path line.
type Rule struct {
	Pattern string
	Include bool
	File    string // "" for built-in defaults
	Line    int    // 0 for built-in defaults
}

// String names the rule for messages: the setting and where it is.
func (r Rule) String() string {
	if r.Line == 0 {
		return "default exclusion " + r.Pattern
	}
	key := "exclude-path"
	if r.Include {
		key = "include-path"
	}
	return fmt.Sprintf("%s %s (%s:%d)", key, r.Pattern, r.File, r.Line)
}

// Scope is how much a dpkg run unlocks (unlock-scope).
type Scope string

// Scopes.
const (
	// ScopePlan unlocks what the run may change, worked out from its
	// archives, package lists, triggers and maintainer scripts.
	ScopePlan Scope = "plan"
	// ScopeAll unlocks everything sealed for every run.
	ScopeAll Scope = "all"
)

// Config is the parsed configuration. The zero value is not useful; start
// from Default.
type Config struct {
	File            string // where it came from ("" for defaults)
	LockDirectories bool
	UnlockScope     Scope
	Rules           []Rule   // defaults first, then the file's, in order; the last match wins
	ExcludePackages []string // glob patterns on package names
	GuardAllow      []string // service units that keep CAP_LINUX_IMMUTABLE under setup --guard
	// MountAllow are mount points (or globs over them) where a mount is
	// expected although it hides sealed files (mount-allow); the
	// audit's shadow check (pkg/shadow) reports every other one.
	MountAllow []string
	// RefuseTampered makes a dpkg run stop before anything is unlocked
	// when a sealed file it would unlock differs from what debseal
	// recorded (refuse-tampered-upgrade).
	RefuseTampered bool
	// EvidenceMaxFile and EvidenceMaxTotal bound the copies of tampered
	// files kept as evidence: one file, and all of them together, in
	// bytes (evidence-max-file, evidence-max-total). 0 keeps no copy.
	EvidenceMaxFile  int64
	EvidenceMaxTotal int64
	// Verity says whether a lock enables fs-verity on the files it
	// locks (verity): VerityAuto where the filesystem takes it.
	Verity Verity
}

// Verity is the verity setting.
type Verity string

// Verity settings.
const (
	// VerityAuto enables fs-verity wherever the filesystem and kernel
	// take it, and notes once per device where they do not.
	VerityAuto Verity = "auto"
	// VerityYes is auto, but a device without fs-verity is a warning.
	VerityYes Verity = "yes"
	// VerityNo never enables it (files that have it keep it: the
	// kernel has no way back).
	VerityNo Verity = "no"
)

// Enabled reports whether locks enable fs-verity.
func (v Verity) Enabled() bool { return v != VerityNo }

// Default bounds of the evidence copies.
const (
	DefaultEvidenceMaxFile  = 64 << 20
	DefaultEvidenceMaxTotal = 256 << 20
)

// Default returns the built-in policy.
func Default() *Config {
	c := &Config{UnlockScope: ScopePlan, EvidenceMaxFile: DefaultEvidenceMaxFile, EvidenceMaxTotal: DefaultEvidenceMaxTotal,
		Verity: VerityAuto}
	for _, p := range DefaultExcluded {
		c.Rules = append(c.Rules, Rule{Pattern: p})
	}
	return c
}

// SyntaxError is a configuration line that is malformed, names an unknown
// setting, or gives a setting a value it does not take.
type SyntaxError struct {
	File string
	Line int
	Key  string // the setting, when the line names a known one
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Key != "" {
		return fmt.Sprintf("policy: %s:%d: %s: %s", e.File, e.Line, e.Key, e.Msg)
	}
	return fmt.Sprintf("policy: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Load reads the configuration file; a missing file means the defaults.
func Load(path string) (*Config, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		c := Default()
		c.File = path
		return c, nil
	}
	if err != nil {
		return nil, fmt.Errorf("policy: %w", err)
	}
	defer f.Close()
	return Parse(f, path)
}

// setting is one key of the file: what it takes, and how it applies.
type setting struct {
	name   string
	takes  string // what the value must be, for the message on an empty one
	repeat bool   // may appear on several lines (else once)
	// set checks the value and applies it; its error is the message.
	set func(c *Config, val string, line int) error
	// format renders the setting's lines for c (Format).
	format func(c *Config, w *strings.Builder)
}

// settings is every key debseal.conf may contain, in the order Format
// writes them and messages list them.
var settings = []setting{
	{
		name: "lock-directories", takes: "yes or no",
		set: func(c *Config, val string, _ int) (err error) {
			c.LockDirectories, err = parseBool(val)
			return err
		},
		format: func(c *Config, w *strings.Builder) {
			fmt.Fprintf(w, "lock-directories = %s\n", map[bool]string{false: "no", true: "yes"}[c.LockDirectories])
		},
	},
	{
		name: "unlock-scope", takes: "plan or all",
		set: func(c *Config, val string, _ int) error {
			switch s := Scope(strings.ToLower(val)); s {
			case ScopePlan, ScopeAll:
				c.UnlockScope = s
				return nil
			}
			return fmt.Errorf("%q is not one of: plan, all", val)
		},
		format: func(c *Config, w *strings.Builder) {
			fmt.Fprintf(w, "unlock-scope = %s\n", c.UnlockScope)
		},
	},
	{
		name: "refuse-tampered-upgrade", takes: "yes or no",
		set: func(c *Config, val string, _ int) (err error) {
			c.RefuseTampered, err = parseBool(val)
			return err
		},
		format: func(c *Config, w *strings.Builder) {
			fmt.Fprintf(w, "refuse-tampered-upgrade = %s\n", map[bool]string{false: "no", true: "yes"}[c.RefuseTampered])
		},
	},
	{
		name: "verity", takes: "auto, yes or no",
		set: func(c *Config, val string, _ int) error {
			switch v := Verity(strings.ToLower(val)); v {
			case VerityAuto, VerityYes, VerityNo:
				c.Verity = v
				return nil
			}
			return fmt.Errorf("%q is not one of: auto, yes, no", val)
		},
		format: func(c *Config, w *strings.Builder) {
			fmt.Fprintf(w, "verity = %s\n", c.Verity)
		},
	},
	sizeSetting("evidence-max-file", func(c *Config) *int64 { return &c.EvidenceMaxFile }),
	sizeSetting("evidence-max-total", func(c *Config) *int64 { return &c.EvidenceMaxTotal }),
	pathSetting("exclude-path", false),
	pathSetting("include-path", true),
	{
		name: "exclude-package", takes: "a package name or glob", repeat: true,
		set: func(c *Config, val string, _ int) error {
			if err := checkPackagePattern(val); err != nil {
				return err
			}
			c.ExcludePackages = append(c.ExcludePackages, val)
			return nil
		},
		format: func(c *Config, w *strings.Builder) {
			for _, p := range c.ExcludePackages {
				fmt.Fprintf(w, "exclude-package = %s\n", p)
			}
		},
	},
	{
		name: "guard-allow", takes: "a service unit (NAME.service, or a template NAME@.service)", repeat: true,
		set: func(c *Config, val string, _ int) error {
			if guard.CheckUnit(val) != nil {
				return fmt.Errorf("%q is not a service unit name (NAME.service, or a template NAME@.service)", val)
			}
			c.GuardAllow = append(c.GuardAllow, val)
			return nil
		},
		format: func(c *Config, w *strings.Builder) {
			for _, u := range c.GuardAllow {
				fmt.Fprintf(w, "guard-allow = %s\n", u)
			}
		},
	},
	{
		name: "mount-allow", takes: "a mount point or glob starting with /", repeat: true,
		set: func(c *Config, val string, _ int) error {
			if err := checkMountPattern(val); err != nil {
				return err
			}
			c.MountAllow = append(c.MountAllow, val)
			return nil
		},
		format: func(c *Config, w *strings.Builder) {
			for _, p := range c.MountAllow {
				fmt.Fprintf(w, "mount-allow = %s\n", p)
			}
		},
	},
}

// pathSetting is exclude-path or include-path: their lines are one list
// of rules, in file order (the last match wins), so include-path's format
// writes both.
func pathSetting(name string, include bool) setting {
	s := setting{
		name: name, takes: "a path or glob starting with / or *", repeat: true,
		set: func(c *Config, val string, line int) error {
			if err := checkPathPattern(val); err != nil {
				return err
			}
			c.Rules = append(c.Rules, Rule{Pattern: val, Include: include, File: c.File, Line: line})
			return nil
		},
		format: func(*Config, *strings.Builder) {},
	}
	if include {
		s.format = func(c *Config, w *strings.Builder) {
			for _, r := range c.Rules {
				if r.Line == 0 {
					continue // a default
				}
				key := "exclude-path"
				if r.Include {
					key = "include-path"
				}
				fmt.Fprintf(w, "%s = %s\n", key, r.Pattern)
			}
		}
	}
	return s
}

// sizeSetting is a single-valued size in bytes (evidence-max-file,
// evidence-max-total).
func sizeSetting(name string, field func(*Config) *int64) setting {
	return setting{
		name: name, takes: "a size: a number of bytes, or with K, M or G (1024-based)",
		set: func(c *Config, val string, _ int) (err error) {
			*field(c), err = ParseSize(val)
			return err
		},
		format: func(c *Config, w *strings.Builder) {
			fmt.Fprintf(w, "%s = %s\n", name, FormatSize(*field(c)))
		},
	}
}

// sizeUnits are the suffixes a size takes, largest first.
var sizeUnits = []struct {
	suffix string
	shift  uint
}{{"G", 30}, {"M", 20}, {"K", 10}}

// ParseSize reads a size: digits, optionally followed by K, M or G
// (1024-based, either case), at most 1 TiB.
func ParseSize(v string) (int64, error) {
	digits, shift := v, uint(0)
	for _, u := range sizeUnits {
		if d, ok := strings.CutSuffix(strings.ToUpper(v), u.suffix); ok {
			digits, shift = d, u.shift
			break
		}
	}
	if digits == "" || strings.Trim(digits, "0123456789") != "" || len(digits) > 13 {
		return 0, fmt.Errorf("%q is not a size (a number of bytes, or with K, M or G: 64M)", v)
	}
	var n int64
	for _, c := range digits {
		n = n*10 + int64(c-'0')
	}
	if n > (1<<40)>>shift {
		return 0, fmt.Errorf("%q is more than 1024G", v)
	}
	return n << shift, nil
}

// FormatSize writes a size as ParseSize reads it, in the largest unit
// that divides it.
func FormatSize(n int64) string {
	for _, u := range sizeUnits {
		if n != 0 && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s", n>>u.shift, u.suffix)
		}
	}
	return fmt.Sprint(n)
}

// keyNames lists the settings debseal.conf may contain, in
// documentation order.
func keyNames() []string {
	out := make([]string, len(settings))
	for i, s := range settings {
		out[i] = s.name
	}
	return out
}

func lookup(key string) (*setting, bool) {
	for i := range settings {
		if settings[i].name == key {
			return &settings[i], true
		}
	}
	return nil, false
}

// Parse reads a configuration: "key = value" lines, blank lines, and
// comments from a '#' at the start of a line or after a blank to the end
// of the line. Every key is checked against the list of settings and every
// value against what its setting takes; the first problem is a
// *SyntaxError naming the line and what the setting accepts.
func Parse(r io.Reader, name string) (*Config, error) {
	c := Default()
	c.File = name
	seen := map[string]int{} // single-valued settings: the line that set them
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(stripComment(sc.Text()))
		if line == "" {
			continue
		}
		key, val, ok := strings.Cut(line, "=")
		if !ok {
			return nil, &SyntaxError{File: name, Line: n, Msg: fmt.Sprintf("want \"key = value\", got %q", line)}
		}
		key, val = strings.TrimSpace(key), strings.TrimSpace(val)
		s, known := lookup(key)
		if !known {
			return nil, &SyntaxError{File: name, Line: n, Msg: unknownKey(key)}
		}
		if first, dup := seen[key]; dup {
			return nil, &SyntaxError{File: name, Line: n, Key: key, Msg: fmt.Sprintf("already set on line %d (it takes one value)", first)}
		}
		if !s.repeat {
			seen[key] = n
		}
		if val == "" {
			return nil, &SyntaxError{File: name, Line: n, Key: key, Msg: "no value (it takes " + s.takes + ")"}
		}
		if err := s.set(c, val, n); err != nil {
			return nil, &SyntaxError{File: name, Line: n, Key: key, Msg: err.Error()}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("policy: read %s (line %d): %w", name, n+1, err)
	}
	return c, nil
}

// stripComment cuts a line at a '#' that starts it or follows a blank (a
// '#' inside a value, as in "/opt/a#b", stays).
func stripComment(line string) string {
	for i := 0; i < len(line); i++ {
		if line[i] == '#' && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			return line[:i]
		}
	}
	return line
}

// unknownKey says a key is unknown, suggests the closest known one and
// lists them all.
func unknownKey(key string) string {
	// Suggest only near misses: a few typos, or a shortened name
	// ("lock-dirs").
	best, bestDist := "", 4
	lower := strings.ToLower(key)
	for _, s := range settings {
		d := editDistance(lower, s.name)
		if commonPrefix(lower, s.name) >= 5 {
			d = min(d, 2)
		}
		if d < bestDist {
			best, bestDist = s.name, d
		}
	}
	msg := fmt.Sprintf("unknown setting %q", key)
	if best != "" {
		msg += fmt.Sprintf(" (did you mean %s?)", best)
	}
	return msg + "; the settings are " + strings.Join(keyNames(), ", ")
}

func commonPrefix(a, b string) int {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}
	return n
}

// editDistance is Levenshtein's distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// Format writes c as a configuration Parse reads back to the same policy:
// every single-valued setting, then the path rules in order, then the
// excluded packages. Comments and the defaults' rules are not written.
func (c *Config) Format() string {
	var w strings.Builder
	for _, s := range settings {
		s.format(c, &w)
	}
	return w.String()
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "yes", "true", "on", "1":
		return true, nil
	case "no", "false", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not one of: yes, no (or true/false, on/off, 1/0)", v)
}

// checkValue rejects control characters: no path or package name has one
// that a configuration line should carry.
func checkValue(v string) error {
	for i := 0; i < len(v); i++ {
		if v[i] < 0x20 || v[i] == 0x7f {
			return fmt.Errorf("%q contains a control character", v)
		}
	}
	return nil
}

// checkPathPattern checks an exclude-path or include-path value: a glob
// over absolute paths as dpkg lists them (clean, no "." or ".."
// components, no "//"), which no such path could otherwise match.
func checkPathPattern(v string) error {
	if err := checkValue(v); err != nil {
		return err
	}
	if v[0] != '/' && v[0] != '*' {
		return fmt.Errorf("%q must start with / or *", v)
	}
	if err := checkPattern(v); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	slashed := strings.TrimSuffix(v, "/") + "/"
	for _, bad := range []struct{ in, says string }{{"//", "//"}, {"/./", "/."}, {"/../", "/.."}} {
		if strings.Contains(slashed, bad.in) {
			return fmt.Errorf("%q: no path dpkg lists contains %q", v, bad.says)
		}
	}
	return nil
}

// checkMountPattern checks a mount-allow value: a glob over mount points
// as the kernel shows them within the root (absolute, clean, no trailing
// '/').
func checkMountPattern(v string) error {
	if err := checkValue(v); err != nil {
		return err
	}
	if v[0] != '/' {
		return fmt.Errorf("%q must start with /", v)
	}
	if err := checkPattern(v); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	if strings.HasSuffix(v, "/") {
		return fmt.Errorf("%q: a mount point has no trailing / (and the root's own mount is never reported)", v)
	}
	for _, bad := range []struct{ in, says string }{{"//", "//"}, {"/./", "/."}, {"/../", "/.."}} {
		if strings.Contains(v+"/", bad.in) {
			return fmt.Errorf("%q: no mount point contains %q", v, bad.says)
		}
	}
	return nil
}

// checkPackagePattern checks an exclude-package value: a glob that can
// match a package name (lowercase letters, digits, '+', '-', '.'; no
// ":arch").
func checkPackagePattern(v string) error {
	if err := checkValue(v); err != nil {
		return err
	}
	if err := checkPattern(v); err != nil {
		return fmt.Errorf("%q: %w", v, err)
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c == '*' || c == '?':
		case c == '[':
			n, _, _ := parseBracket(v[i:]) // checked above
			i += n - 1
		case c == '\\':
			i++
			if !nameByte(v[i]) {
				return badName(v, v[i])
			}
		case !nameByte(c):
			return badName(v, c)
		}
	}
	return nil
}

func nameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.'
}

func badName(v string, c byte) error {
	if c == ':' {
		return fmt.Errorf("%q: a package name has no :architecture (the pattern applies to every architecture)", v)
	}
	return fmt.Errorf("%q: %q cannot appear in a package name (a-z, 0-9, +, -, .)", v, c)
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

// MountAllowed reports whether a mount-allow line names the mount point
// (as the kernel shows it, within the root): a pattern without wildcards
// names that mount point only, not the mounts below it; one with
// wildcards is matched against the whole mount point, '*' matching '/'
// too.
func (c *Config) MountAllowed(point string) bool {
	for _, p := range c.MountAllow {
		if match(p, point) {
			return true
		}
	}
	return false
}

// UnlockAll reports whether every dpkg run unlocks everything sealed: by
// unlock-scope = all, or because locked directories leave no other choice
// (a package's new file lands in a directory that may be locked).
func (c *Config) UnlockAll() (bool, string) {
	switch {
	case c.LockDirectories:
		return true, "lock-directories is on: every dpkg run unlocks everything"
	case c.UnlockScope == ScopeAll:
		return true, "unlock-scope = all"
	}
	return false, ""
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
