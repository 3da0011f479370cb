package dpkgdb

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/debseal/debseal/pkg/deb822"
)

// Want is the selection state (first word of Status).
type Want uint8

// Selection states, in dpkg's order.
const (
	WantUnknown Want = iota
	WantInstall
	WantHold
	WantDeinstall
	WantPurge
)

var wantNames = []string{"unknown", "install", "hold", "deinstall", "purge"}

func (w Want) String() string { return wantNames[w] }

// State is the package state (third word of Status).
type State uint8

// Package states, in dpkg's order (lib/dpkg/dpkg-db.h).
const (
	StateNotInstalled State = iota
	StateConfigFiles
	StateHalfInstalled
	StateUnpacked
	StateHalfConfigured
	StateTriggersAwaited
	StateTriggersPending
	StateInstalled
)

var stateNames = []string{"not-installed", "config-files", "half-installed", "unpacked",
	"half-configured", "triggers-awaited", "triggers-pending", "installed"}

func (s State) String() string { return stateNames[s] }

// Conffile is one line of a status Conffiles field.
type Conffile struct {
	Path            string
	Hash            string // MD5 hex, or "newconffile", "-", "nonexistent"
	Obsolete        bool
	RemoveOnUpgrade bool
}

// Package is one status stanza.
type Package struct {
	Name         string
	Arch         string // may be empty for stanzas that only hold a selection
	MultiArch    string // "same", "foreign", "allowed" or ""
	Version      string
	Want         Want
	ReinstReq    bool // eflag "reinstreq"
	State        State
	Essential    bool
	Protected    bool
	Conffiles    []Conffile
	TrigPending  []string // Triggers-Pending: trigger names
	TrigAwaited  []string // Triggers-Awaited: package names
	ConfigVer    string
	Replaces     string
	Conflicts    string
	Breaks       string
	Provides     string
	sameInstance bool // another instance with the same name exists
}

// ID is the name dpkg prints for the package: "name" or, for Multi-Arch:
// same packages and names installed for several architectures, "name:arch".
func (p *Package) ID() string {
	if p.Arch != "" && (p.MultiArch == "same" || p.sameInstance) {
		return p.Name + ":" + p.Arch
	}
	return p.Name
}

// Configured reports whether the package's files are in their final state:
// installed, or configured and only waiting for triggers.
func (p *Package) Configured() bool {
	return p.State >= StateTriggersAwaited
}

// HasFiles reports whether dpkg keeps a file list for the package (every
// state from half-installed up, and config-files for the conffiles).
func (p *Package) HasFiles() bool {
	return p.State >= StateConfigFiles
}

// ParseStatus reads a status file (or an updates/ journal entry). Every
// stanza must name its package and have a valid Status field; anything else
// is an error naming the file and line, because a caller that locks files
// must not act on a half-understood database.
func ParseStatus(r io.Reader, name string) ([]*Package, error) {
	dr := deb822.NewReader(r, name)
	dr.Only(statusFields...)
	var pkgs []*Package
	for {
		para, err := dr.Next()
		if err == io.EOF {
			return pkgs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("dpkgdb: %w", err)
		}
		p, err := packageFrom(para)
		if err != nil {
			return nil, &CorruptError{File: name, Line: para.Line, Err: err}
		}
		pkgs = append(pkgs, p)
	}
}

// ErrCorrupt is matched by every *CorruptError.
var ErrCorrupt = errors.New("dpkgdb: corrupt database")

// CorruptError reports a database file that parses but makes no sense.
type CorruptError struct {
	File string
	Line int
	Err  error
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("dpkgdb: %s:%d: %v", e.File, e.Line, e.Err)
}

func (e *CorruptError) Unwrap() error { return e.Err }

// Is makes errors.Is(err, ErrCorrupt) true.
func (e *CorruptError) Is(target error) bool { return target == ErrCorrupt }

// statusFields are the fields packageFrom decodes; the reader keeps no
// other (Description is most of a status file).
var statusFields = []string{"Package", "Architecture", "Multi-Arch", "Version", "Status", "Essential",
	"Protected", "Config-Version", "Replaces", "Conflicts", "Breaks", "Provides", "Triggers-Pending",
	"Triggers-Awaited", "Conffiles"}

func packageFrom(para *deb822.Paragraph) (*Package, error) {
	p := &Package{}
	p.Name = para.Value("Package")
	if p.Name == "" {
		return nil, errors.New("stanza without a Package field")
	}
	if strings.ContainsAny(p.Name, " \t/:") {
		return nil, fmt.Errorf("invalid package name %q", p.Name)
	}
	p.Arch = para.Value("Architecture")
	p.MultiArch = para.Value("Multi-Arch")
	p.Version = para.Value("Version")
	st, ok := para.Get("Status")
	if !ok {
		return nil, fmt.Errorf("package %s has no Status field", p.Name)
	}
	if err := p.parseStatus(st); err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Name, err)
	}
	p.Essential = para.Value("Essential") == "yes"
	p.Protected = para.Value("Protected") == "yes"
	p.ConfigVer = para.Value("Config-Version")
	p.Replaces = para.Value("Replaces")
	p.Conflicts = para.Value("Conflicts")
	p.Breaks = para.Value("Breaks")
	p.Provides = para.Value("Provides")
	p.TrigPending = strings.Fields(para.Value("Triggers-Pending"))
	p.TrigAwaited = strings.Fields(para.Value("Triggers-Awaited"))
	if v, ok := para.Get("Conffiles"); ok {
		cf, err := parseConffilesField(v)
		if err != nil {
			return nil, fmt.Errorf("package %s: Conffiles: %w", p.Name, err)
		}
		p.Conffiles = cf
	}
	return p, nil
}

func (p *Package) parseStatus(v string) error {
	f := strings.Fields(v)
	if len(f) != 3 {
		return fmt.Errorf("field Status %q: want \"<want> <eflag> <state>\"", v)
	}
	w := index(wantNames, f[0])
	if w < 0 {
		return fmt.Errorf("field Status %q: unknown selection %q", v, f[0])
	}
	p.Want = Want(w)
	switch f[1] {
	case "ok":
	case "reinstreq":
		p.ReinstReq = true
	default:
		return fmt.Errorf("field Status %q: unknown error flag %q", v, f[1])
	}
	s := index(stateNames, f[2])
	if s < 0 {
		return fmt.Errorf("field Status %q: unknown state %q", v, f[2])
	}
	p.State = State(s)
	return nil
}

func index(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	return -1
}

// parseConffilesField parses the status Conffiles value: one
// " <path> <hash>[ obsolete][ remove-on-upgrade]" per line, read from the
// right because paths may contain spaces (as dpkg's f_conffiles does).
func parseConffilesField(v string) ([]Conffile, error) {
	var out []Conffile
	for _, line := range deb822.Lines(v) {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		var c Conffile
		rest := line
		if r, ok := strings.CutSuffix(rest, " remove-on-upgrade"); ok {
			c.RemoveOnUpgrade, rest = true, r
		}
		if r, ok := strings.CutSuffix(rest, " obsolete"); ok {
			c.Obsolete, rest = true, r
		}
		i := strings.LastIndexByte(rest, ' ')
		if i < 0 {
			return nil, fmt.Errorf("line %q: want \"<path> <hash>\"", line)
		}
		c.Path, c.Hash = strings.TrimRight(rest[:i], " "), rest[i+1:]
		if !strings.HasPrefix(c.Path, "/") {
			return nil, fmt.Errorf("line %q: path is not absolute", line)
		}
		if !validConffileHash(c.Hash) {
			return nil, fmt.Errorf("line %q: bad hash %q", line, c.Hash)
		}
		out = append(out, c)
	}
	return out, nil
}

func validConffileHash(h string) bool {
	switch h {
	case "newconffile", "-", "nonexistent":
		return true
	}
	if len(h) != 32 {
		return false
	}
	for _, c := range h {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}
