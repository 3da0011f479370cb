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
	line         int  // where its stanza starts
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

// ParseStatus reads a status file (or an updates/ journal entry) with
// dpkg's own rules (deb822's Dpkg mode, and the field checks of dpkg's
// lib/dpkg/fields.c and parse.c that decide whether dpkg-query accepts the
// file): what dpkg rejects is an error naming the file and line, because
// a caller that locks files must not act on a database dpkg itself would
// refuse; what dpkg accepts is accepted, or debseal would stop package
// management dpkg can do. Not checked: the syntax of relationship fields
// (Depends…) and of versions, which dpkg also checks.
func ParseStatus(r io.Reader, name string) ([]*Package, error) {
	dr := deb822.NewReader(r, name)
	dr.Dpkg()
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
		p.line = para.Line
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

// Indexes into statusFields.
const (
	fPackage = iota
	fArchitecture
	fMultiArch
	fVersion
	fStatus
	fEssential
	fProtected
	fConfigVersion
	fReplaces
	fConflicts
	fBreaks
	fProvides
	fTriggersPending
	fTriggersAwaited
	fConffiles
	numStatusFields
)

// statusField is the index of a field name in statusFields (ASCII
// case-insensitive), or -1.
func statusField(name string) int {
	for i, f := range statusFields {
		if len(f) == len(name) && strings.EqualFold(f, name) {
			return i
		}
	}
	return -1
}

// fields are one stanza's values of statusFields, found in one pass (the
// reader keeps no other field).
type fields struct {
	v   [numStatusFields]string
	has [numStatusFields]bool
}

func (f *fields) get(i int) (string, bool) { return f.v[i], f.has[i] }

func packageFrom(para *deb822.Paragraph) (*Package, error) {
	var fl fields
	for i := range para.Fields {
		if k := statusField(para.Fields[i].Name); k >= 0 && !fl.has[k] {
			fl.v[k], fl.has[k] = para.Fields[i].Value, true
		}
	}
	p := &Package{}
	name, ok := fl.get(fPackage)
	if !ok {
		return nil, errors.New("stanza without a Package field")
	}
	if err := validName(name); err != nil {
		return nil, err
	}
	p.Name = strings.ToLower(name) // as dpkg stores it
	p.Arch = fl.v[fArchitecture]
	p.MultiArch = fl.v[fMultiArch]
	switch strings.ToLower(p.MultiArch) {
	case "", "no", "same", "foreign", "allowed":
		p.MultiArch = strings.ToLower(p.MultiArch)
		if p.MultiArch == "no" {
			p.MultiArch = ""
		}
	default:
		return nil, fmt.Errorf("package %s: field Multi-Arch has invalid value %q", p.Name, p.MultiArch)
	}
	p.Version = fl.v[fVersion]
	st, ok := fl.get(fStatus)
	if !ok {
		return nil, fmt.Errorf("package %s has no Status field", p.Name)
	}
	if err := p.parseStatus(st); err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Name, err)
	}
	var err error
	if p.Essential, err = boolField(&fl, fEssential); err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Name, err)
	}
	if p.Protected, err = boolField(&fl, fProtected); err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Name, err)
	}
	p.ConfigVer = fl.v[fConfigVersion]
	p.Replaces = fl.v[fReplaces]
	p.Conflicts = fl.v[fConflicts]
	p.Breaks = fl.v[fBreaks]
	p.Provides = fl.v[fProvides]
	p.TrigPending = strings.Fields(fl.v[fTriggersPending])
	p.TrigAwaited = strings.Fields(fl.v[fTriggersAwaited])
	if v, ok := fl.get(fConffiles); ok {
		cf, err := parseConffilesField(v)
		if err != nil {
			return nil, fmt.Errorf("package %s: Conffiles: %w", p.Name, err)
		}
		p.Conffiles = cf
	}
	if err := p.verify(&fl); err != nil {
		return nil, fmt.Errorf("package %s: %w", p.Name, err)
	}
	return p, nil
}

// verify applies dpkg's consistency checks on one status record
// (pkg_parse_verify), those that are errors for dpkg.
func (p *Package) verify(fl *fields) error {
	if p.State != StateNotInstalled && p.State != StateHalfInstalled && p.Version == "" {
		if _, ok := fl.get(fVersion); !ok {
			return fmt.Errorf("state %s without a Version field", p.State)
		}
	}
	if p.MultiArch == "same" && (p.Arch == "" || p.Arch == "all") {
		return fmt.Errorf("Multi-Arch: same with architecture %q", p.Arch)
	}
	if _, ok := fl.get(fConfigVersion); ok &&
		(p.State == StateInstalled || p.State == StateNotInstalled || p.State == StateTriggersPending) {
		return fmt.Errorf("Config-Version field in state %s", p.State)
	}
	switch {
	case len(p.TrigAwaited) > 0 && (p.State <= StateConfigFiles || p.State >= StateTriggersPending):
		return fmt.Errorf("state %s but triggers are awaited", p.State)
	case len(p.TrigAwaited) == 0 && p.State == StateTriggersAwaited:
		return fmt.Errorf("state %s but no triggers awaited", p.State)
	case len(p.TrigPending) > 0 && p.State != StateTriggersPending && p.State != StateTriggersAwaited:
		return fmt.Errorf("state %s but triggers are pending", p.State)
	case len(p.TrigPending) == 0 && p.State == StateTriggersPending:
		return fmt.Errorf("state %s but no triggers pending", p.State)
	}
	if p.State == StateNotInstalled {
		p.Conffiles = nil // dpkg forgets them, with a warning
	}
	return nil
}

// validName is dpkg's rule for package names: an alphanumeric first
// character, then letters, digits and "-+._" (either case: dpkg lowers it).
func validName(n string) error {
	if n == "" {
		return errors.New("empty package name")
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if i == 0 && !alnum {
			return fmt.Errorf("invalid package name %q: must start with a letter or digit", n)
		}
		if !alnum && !strings.ContainsRune("-+._", rune(c)) {
			return fmt.Errorf("invalid package name %q: character %q not allowed", n, c)
		}
	}
	return nil
}

// boolField reads a yes/no field; anything else is an error, as for dpkg.
func boolField(fl *fields, i int) (bool, error) {
	v, ok := fl.get(i)
	name := statusFields[i]
	if !ok {
		return false, nil
	}
	switch strings.ToLower(v) {
	case "yes":
		return true, nil
	case "no":
		return false, nil
	}
	return false, fmt.Errorf("field %s has invalid value %q (want yes or no)", name, v)
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
	switch strings.ToLower(f[1]) {
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

// index finds s in list without regard to case, as dpkg reads the words
// of the Status field.
func index(list []string, s string) int {
	for i, v := range list {
		if strings.EqualFold(v, s) {
			return i
		}
	}
	return -1
}

// parseConffilesField parses the status Conffiles value as dpkg's
// f_conffiles does: each line " <path> <hash>[ obsolete][ remove-on-upgrade]"
// starts with one space and is read from the right (paths may contain
// spaces); the path loses its leading "/" and "./" and gets one "/" back;
// the hash is any word (dpkg compares it, it does not check it).
func parseConffilesField(v string) ([]Conffile, error) {
	var out []Conffile
	for _, line := range strings.Split(v, "\n") {
		if line == "" {
			continue
		}
		if line[0] != ' ' {
			return nil, fmt.Errorf("line %q starts with %q, not a space", line, line[0])
		}
		body := line[1:]
		var c Conffile
		rest, word, err := lastWord(body, len(body))
		if err != nil {
			return nil, err
		}
		if word == "remove-on-upgrade" {
			c.RemoveOnUpgrade = true
			if rest, word, err = lastWord(body, rest); err != nil {
				return nil, err
			}
		}
		if word == "obsolete" {
			c.Obsolete = true
			if rest, word, err = lastWord(body, rest); err != nil {
				return nil, err
			}
		}
		path := body[:rest]
		for strings.HasPrefix(path, "/") || strings.HasPrefix(path, "./") {
			path = strings.TrimPrefix(strings.TrimPrefix(path, "/"), "./")
		}
		if path == "" {
			return nil, fmt.Errorf("line %q: root or empty directory listed as a conffile", line)
		}
		c.Path, c.Hash = "/"+path, word
		out = append(out, c)
	}
	return out, nil
}

// lastWord is dpkg's conffvalue_lastword: the word of body[:end] after its
// last space, and where that space is. The path before it must have two
// bytes at least and the word one.
func lastWord(body string, end int) (rest int, word string, err error) {
	sp := strings.LastIndexByte(body[:end], ' ')
	if end <= 1 || sp <= 1 || sp >= len(body)-1 {
		return 0, "", fmt.Errorf("malformed line %q", " "+body)
	}
	return sp, body[sp+1 : end], nil
}
