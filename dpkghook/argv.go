// Package dpkghook speaks the protocols through which debseal learns what
// dpkg is about to do: dpkg's own command line (for the wrapper, and for
// the dpkg.cfg.d hooks, which read it from /proc), dpkg's configuration
// files, the environment of dpkg's pre-/post-invoke hooks, and apt's
// DPkg::Pre-Install-Pkgs protocol (versions 1 to 3).
//
// It parses and classifies; it does not plan, lock or run anything
// (pkg/seal does). Parsers follow dpkg's and apt's sources
// (lib/dpkg/options.c, src/main/main.c, apt-pkg/deb/dpkgpm.cc).
package dpkghook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Kind classifies what an invocation does to the system.
type Kind int

// Kinds of dpkg invocations.
const (
	// ReadOnly: queries and dpkg-deb back-end actions. Passed straight
	// through.
	ReadOnly Kind = iota
	// Database: changes dpkg's database but no package file (selections,
	// available file, architectures). Passed straight through.
	Database
	// Files: unpack, install, configure, remove, purge, triggers-only:
	// dpkg changes package files, so debseal unlocks and relocks.
	Files
)

func (k Kind) String() string {
	return [...]string{"read-only", "database", "files"}[k]
}

// Invocation is a parsed dpkg command line.
type Invocation struct {
	Action    string   // long name of the action ("install", "configure", "assert-multi-arch", …); "" if none
	Args      []string // the non-option arguments (archives, directories with -R, package names)
	Pending   bool     // -a, --pending
	Recursive bool     // -R, --recursive
	NoAct     bool     // --no-act, --dry-run, --simulate
	Root      string   // from --root or --instdir ("" when not given)
	Admindir  string   // from --admindir, or --root's ("" when not given)
	Force     []string // --force-X values, in order
	Triggers  int      // -1 --no-triggers, 1 --triggers, 0 default
	StatusFDs []int    // --status-fd values
	Log       string   // --log
	// PathFilters are path-exclude/path-include options, in order ("-" or
	// "+" followed by the glob).
	PathFilters []string
}

// option describes one of dpkg's options: whether it takes a value
// (0 no, 1 yes, 2 appended with '-' as in --force-confold) and, for
// actions, its class.
type option struct {
	short  byte
	value  int
	action bool
	kind   Kind
}

// dpkgOptions mirrors the cmdinfos table of dpkg's src/main/main.c.
var dpkgOptions = map[string]option{
	// Actions that change package files.
	"install":       {short: 'i', action: true, kind: Files},
	"unpack":        {action: true, kind: Files},
	"configure":     {action: true, kind: Files},
	"remove":        {short: 'r', action: true, kind: Files},
	"purge":         {short: 'P', action: true, kind: Files},
	"triggers-only": {action: true, kind: Files},
	// Actions that change only the database.
	"record-avail":        {short: 'A', action: true, kind: Database},
	"set-selections":      {action: true, kind: Database},
	"clear-selections":    {action: true, kind: Database},
	"update-avail":        {action: true, kind: Database},
	"merge-avail":         {action: true, kind: Database},
	"clear-avail":         {action: true, kind: Database},
	"forget-old-unavail":  {action: true, kind: Database},
	"add-architecture":    {action: true, kind: Database},
	"remove-architecture": {action: true, kind: Database},
	// Read-only actions.
	"verify":                      {short: 'V', action: true},
	"listfiles":                   {short: 'L', action: true},
	"status":                      {short: 's', action: true},
	"get-selections":              {action: true},
	"print-avail":                 {short: 'p', action: true},
	"audit":                       {short: 'C', action: true},
	"yet-to-unpack":               {action: true},
	"list":                        {short: 'l', action: true},
	"search":                      {short: 'S', action: true},
	"assert":                      {value: 2, action: true},
	"print-architecture":          {action: true},
	"print-foreign-architectures": {action: true},
	"predep-package":              {action: true},
	"validate-pkgname":            {action: true},
	"validate-trigname":           {action: true},
	"validate-archname":           {action: true},
	"validate-version":            {action: true},
	"compare-versions":            {action: true},
	"help":                        {short: '?', action: true},
	"version":                     {action: true},
	// dpkg-deb back-end actions: they read or write archives, not the system.
	"build":        {short: 'b', action: true},
	"contents":     {short: 'c', action: true},
	"control":      {short: 'e', action: true},
	"info":         {short: 'I', action: true},
	"field":        {short: 'f', action: true},
	"extract":      {short: 'x', action: true},
	"vextract":     {short: 'X', action: true},
	"ctrl-tarfile": {action: true},
	"fsys-tarfile": {action: true},
	// Options.
	"pre-invoke":        {value: 1},
	"post-invoke":       {value: 1},
	"path-exclude":      {value: 1},
	"path-include":      {value: 1},
	"verify-format":     {value: 1},
	"status-logger":     {value: 1},
	"status-fd":         {value: 1},
	"log":               {value: 1},
	"pending":           {short: 'a'},
	"recursive":         {short: 'R'},
	"no-act":            {},
	"dry-run":           {},
	"simulate":          {},
	"no-pager":          {},
	"no-debsig":         {},
	"selected-only":     {short: 'O'},
	"triggers":          {},
	"no-triggers":       {},
	"no-also-select":    {short: 'N'},
	"skip-same-version": {short: 'E'},
	"auto-deconfigure":  {short: 'B'},
	"robot":             {},
	"root":              {value: 1},
	"abort-after":       {value: 1},
	"admindir":          {value: 1},
	"instdir":           {value: 1},
	"ignore-depends":    {value: 1},
	"force":             {value: 2},
	"refuse":            {value: 2},
	"no-force":          {value: 2},
	"debug":             {short: 'D', value: 1},
}

var shortOptions = func() map[byte]string {
	m := map[byte]string{'G': "refuse-downgrade"}
	for name, o := range dpkgOptions {
		if o.short != 0 {
			m[o.short] = name
		}
	}
	return m
}()

// ErrUsage is matched by command lines dpkg itself would reject; the
// wrapper passes those straight to dpkg, which explains the problem.
var ErrUsage = errors.New("dpkghook: bad dpkg command line")

// Kind classifies the invocation. An invocation without a file-changing
// action, or with --no-act, changes no package file.
func (inv *Invocation) Kind() Kind {
	o, ok := dpkgOptions[inv.Action]
	if !ok || !o.action {
		return ReadOnly // no action, "assert-*", "force-help"
	}
	if o.kind == Files && inv.NoAct {
		return ReadOnly
	}
	return o.kind
}

// Parse parses dpkg's arguments (without argv[0]) the way dpkg does:
// options until the first non-option argument or "--", long options with
// "=value" or a separate value, short options clustered, --force-X with
// '-' as separator. Options from configuration files (ParseConfig) come
// first in dpkg, so pass them in base (it may be nil).
func Parse(args []string, base *Invocation) (*Invocation, error) {
	inv := &Invocation{}
	if base != nil {
		c := *base
		c.Force = append([]string(nil), base.Force...)
		c.StatusFDs = append([]int(nil), base.StatusFDs...)
		c.PathFilters = append([]string(nil), base.PathFilters...)
		c.Args = nil
		inv = &c
	}
	i := 0
	for ; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			i++
			break
		}
		if len(a) < 2 || a[0] != '-' {
			break
		}
		if a[1] == '-' {
			name, value, hasValue := a[2:], "", false
			o, ok := dpkgOptions[name]
			if !ok {
				// "--name=value" or "--force-thing".
				for n, opt := range dpkgOptions {
					sep := byte('=')
					if opt.value == 2 {
						sep = '-'
					}
					if strings.HasPrefix(name, n) && len(name) > len(n) && name[len(n)] == sep {
						name, value, hasValue, o, ok = n, name[len(n)+1:], true, opt, true
						break
					}
				}
			}
			if !ok {
				return nil, fmt.Errorf("%w: unknown option --%s", ErrUsage, name)
			}
			if o.value > 0 && !hasValue {
				if o.value == 2 {
					return nil, fmt.Errorf("%w: --%s needs a value (--%s-VALUE)", ErrUsage, name, name)
				}
				i++
				if i >= len(args) {
					return nil, fmt.Errorf("%w: --%s needs a value", ErrUsage, name)
				}
				value = args[i]
			} else if o.value == 0 && hasValue {
				return nil, fmt.Errorf("%w: --%s takes no value", ErrUsage, name)
			}
			if err := inv.apply(name, value, o); err != nil {
				return nil, err
			}
			continue
		}
		// Short options, possibly clustered ("-iR", "-D10").
		for j := 1; j < len(a); j++ {
			name, ok := shortOptions[a[j]]
			if !ok {
				return nil, fmt.Errorf("%w: unknown option -%c", ErrUsage, a[j])
			}
			if name == "refuse-downgrade" {
				inv.Force = append(inv.Force, "no-downgrade")
				continue
			}
			o := dpkgOptions[name]
			value := ""
			if o.value > 0 {
				if j+1 < len(a) {
					value = strings.TrimPrefix(a[j+1:], "=")
				} else {
					i++
					if i >= len(args) {
						return nil, fmt.Errorf("%w: -%c needs a value", ErrUsage, a[j])
					}
					value = args[i]
				}
				j = len(a)
			}
			if err := inv.apply(name, value, o); err != nil {
				return nil, err
			}
		}
	}
	inv.Args = append(inv.Args, args[i:]...)
	return inv, nil
}

func (inv *Invocation) apply(name, value string, o option) error {
	if o.action {
		if name == "assert" {
			name = "assert-" + value
		}
		if inv.Action != "" && inv.Action != name {
			return fmt.Errorf("%w: conflicting actions --%s and --%s", ErrUsage, inv.Action, name)
		}
		inv.Action = name
		return nil
	}
	switch name {
	case "pending":
		inv.Pending = true
	case "recursive":
		inv.Recursive = true
	case "no-act", "dry-run", "simulate":
		inv.NoAct = true
	case "triggers":
		inv.Triggers = 1
	case "no-triggers":
		inv.Triggers = -1
	case "root":
		inv.Root = value
		inv.Admindir = filepath.Join(value, "var/lib/dpkg")
	case "instdir":
		inv.Root = value
	case "admindir":
		inv.Admindir = value
	case "force":
		if value == "help" {
			inv.Action = "force-help" // prints the force options and exits
			return nil
		}
		inv.Force = append(inv.Force, strings.Split(value, ",")...)
	case "refuse", "no-force":
		for _, f := range strings.Split(value, ",") {
			inv.Force = append(inv.Force, "no-"+f)
		}
	case "status-fd":
		fd, err := strconv.Atoi(value)
		if err != nil || fd < 0 {
			return fmt.Errorf("%w: invalid --status-fd %q", ErrUsage, value)
		}
		inv.StatusFDs = append(inv.StatusFDs, fd)
	case "log":
		inv.Log = value
	case "path-exclude":
		inv.PathFilters = append(inv.PathFilters, "-"+value)
	case "path-include":
		inv.PathFilters = append(inv.PathFilters, "+"+value)
	}
	return nil
}

// Salvage reads what it can from a command line Parse rejected: the first
// action that changes package files, wherever it appears, and the root and
// admindir options. It exists so that a dpkg newer than this parser (an
// option debseal does not know) or a command line dpkg will reject anyway
// never makes the wrapper run dpkg against locked files: when Salvage
// finds a file action, the caller must unlock as if it could not tell what
// dpkg will touch. The result has no Args.
func Salvage(args []string) *Invocation {
	inv := &Invocation{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		if strings.HasPrefix(a, "--") {
			name, value, hasValue := strings.Cut(a[2:], "=")
			switch name {
			case "root", "instdir", "admindir":
				if !hasValue && i+1 < len(args) {
					i++
					value = args[i]
				}
				inv.apply(name, value, dpkgOptions[name])
				continue
			}
			if o, ok := dpkgOptions[name]; ok && o.action && o.kind == Files && inv.Action == "" {
				inv.Action = name
			}
			continue
		}
		if len(a) > 1 && a[0] == '-' && inv.Action == "" {
			// A cluster: any of -i, -r, -P may be the action; -D's
			// value may hide letters, so this errs on the side of
			// unlocking.
			for j := 1; j < len(a); j++ {
				if name, ok := shortOptions[a[j]]; ok && dpkgOptions[name].kind == Files && dpkgOptions[name].action {
					inv.Action = name
					break
				}
			}
		}
	}
	return inv
}

// Forced reports whether --force-<name> (or --force-all) is in effect.
func (inv *Invocation) Forced(name string) bool {
	on := false
	for _, f := range inv.Force {
		switch f {
		case name, "all":
			on = true
		case "no-" + name, "no-all":
			on = false
		}
	}
	return on
}

// ParseConfig reads dpkg's configuration the way dpkg does before its
// command line: dir/dpkg.cfg.d/* (names made of [0-9A-Za-z_-] only, in
// alphabetical order), then dir/dpkg.cfg. Each non-comment line is an
// option without its leading dashes, "name" or "name value" or
// "name=value". Missing files are fine; a malformed line is an error.
func ParseConfig(dir string) (*Invocation, error) {
	var files []string
	ents, err := os.ReadDir(filepath.Join(dir, "dpkg.cfg.d"))
	if err == nil {
		for _, e := range ents {
			if validConfName(e.Name()) && !e.IsDir() {
				files = append(files, filepath.Join(dir, "dpkg.cfg.d", e.Name()))
			}
		}
		sort.Strings(files)
	}
	files = append(files, filepath.Join(dir, "dpkg.cfg"))
	var args []string
	for _, f := range files {
		fh, err := os.Open(f)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("dpkghook: %w", err)
		}
		a, err := configArgs(fh, f)
		fh.Close()
		if err != nil {
			return nil, err
		}
		args = append(args, a...)
	}
	inv, err := Parse(args, nil)
	if err != nil {
		return nil, fmt.Errorf("dpkghook: dpkg configuration in %s: %w", dir, err)
	}
	if inv.Action != "" || len(inv.Args) > 0 {
		return nil, fmt.Errorf("dpkghook: dpkg configuration in %s sets an action", dir)
	}
	return inv, nil
}

// validConfName is dpkg's rule for files in dpkg.cfg.d (no dots, so that
// .dpkg-old and editor backups are ignored).
func validConfName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// configArgs turns dpkg.cfg lines into "--name" / "--name=value" arguments.
func configArgs(r io.Reader, name string) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		opt, val, hasVal := strings.Cut(line, "=")
		if !hasVal {
			opt, val, hasVal = strings.Cut(line, " ")
		}
		opt = strings.TrimSpace(opt)
		if o, ok := lookupLong(opt); !ok {
			return nil, fmt.Errorf("dpkghook: %s:%d: unknown option %q", name, n, opt)
		} else if o.value == 0 && hasVal {
			return nil, fmt.Errorf("dpkghook: %s:%d: option %q takes no value", name, n, opt)
		}
		if hasVal {
			out = append(out, "--"+opt+"="+strings.TrimSpace(val))
		} else {
			out = append(out, "--"+opt)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkghook: read %s: %w", name, err)
	}
	return out, nil
}

func lookupLong(opt string) (option, bool) {
	if o, ok := dpkgOptions[opt]; ok {
		return o, true
	}
	for n, o := range dpkgOptions {
		if o.value == 2 && strings.HasPrefix(opt, n+"-") {
			return option{}, true
		}
	}
	return option{}, false
}
