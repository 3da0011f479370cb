package dpkghook

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"

	"github.com/debseal/debseal/pkg/debfmt"
)

// AptActionKind is what apt will do with a package in the transaction.
type AptActionKind int

// Kinds of Pre-Install-Pkgs lines.
const (
	AptUnpack    AptActionKind = iota // the line names a .deb to unpack
	AptConfigure                      // **CONFIGURE**
	AptRemove                         // **REMOVE** (apt uses it for remove and purge alike)
	AptError                          // **ERROR**: apt had no usable file name
)

func (k AptActionKind) String() string {
	return [...]string{"unpack", "configure", "remove", "error"}[k]
}

// AptLine is one package line of a VERSION 2 or 3 Pre-Install-Pkgs input.
type AptLine struct {
	Package    string
	OldVersion string // "" for "-" (not installed)
	OldArch    string // VERSION 3 only; "" for "-"
	OldMA      string // VERSION 3 only; "none" means no Multi-Arch
	Op         byte   // '<' upgrade or install, '>' downgrade or removal, '=' same version
	NewVersion string // "" for "-" (removal)
	NewArch    string
	NewMA      string
	Kind       AptActionKind
	Deb        string // the archive for AptUnpack
}

// Spec returns "name:arch" for the architecture the action concerns.
func (l AptLine) Spec() string {
	arch := l.NewArch
	if l.Kind == AptRemove || arch == "" {
		arch = l.OldArch
	}
	if arch == "" {
		return l.Package
	}
	return l.Package + ":" + arch
}

// AptInfo is the whole Pre-Install-Pkgs input.
type AptInfo struct {
	Version int               // 1, 2 or 3
	Config  map[string]string // VERSION 2/3: apt's configuration, %-decoded; list members under "Key::"
	Lines   []AptLine         // VERSION 2/3
	Debs    []string          // VERSION 1: the archives, one per line
}

// ErrAptSyntax is matched by malformed Pre-Install-Pkgs input.
var ErrAptSyntax = errors.New("dpkghook: malformed Pre-Install-Pkgs input")

// ParseApt reads what apt writes to a DPkg::Pre-Install-Pkgs command
// (apt-pkg/deb/dpkgpm.cc, SendPkgsInfo): for VERSION 2 and 3 a "VERSION N"
// line, the configuration as "key=value" lines, an empty line, then one
// line per package; for VERSION 1 (no header) one .deb path per line.
func ParseApt(r io.Reader) (*AptInfo, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	info := &AptInfo{Config: map[string]string{}}
	n := 0
	if !sc.Scan() {
		if err := sc.Err(); err != nil {
			return nil, fmt.Errorf("dpkghook: reading apt hook input: %w", err)
		}
		info.Version = 1
		return info, nil // nothing to install
	}
	n++
	first := sc.Text()
	if v, ok := strings.CutPrefix(first, "VERSION "); ok {
		ver, err := strconv.Atoi(v)
		if err != nil || ver < 2 || ver > 3 {
			return nil, fmt.Errorf("%w: line 1: unsupported %q", ErrAptSyntax, first)
		}
		info.Version = ver
	} else {
		info.Version = 1
		if first != "" {
			info.Debs = append(info.Debs, first)
		}
		for sc.Scan() {
			if l := sc.Text(); l != "" {
				info.Debs = append(info.Debs, l)
			}
		}
		return info, sc.Err()
	}
	// Configuration until the empty line.
	inConfig := true
	for sc.Scan() {
		n++
		line := sc.Text()
		if inConfig {
			if line == "" {
				inConfig = false
				continue
			}
			k, v, ok := strings.Cut(line, "=")
			if !ok {
				return nil, fmt.Errorf("%w: line %d: configuration line without '='", ErrAptSyntax, n)
			}
			// apt's QuoteString escapes bytes <= 0x20, >= 0x7f and '%',
			// plus '=' in keys and newlines in values.
			key, err := debfmt.PercentDecode(k)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrAptSyntax, n, err)
			}
			val, err := debfmt.PercentDecode(v)
			if err != nil {
				return nil, fmt.Errorf("%w: line %d: %v", ErrAptSyntax, n, err)
			}
			if old, dup := info.Config[key]; dup && strings.HasSuffix(key, "::") {
				val = old + "\n" + val // list members repeat their key
			}
			info.Config[key] = val
			continue
		}
		if line == "" {
			continue
		}
		l, err := parseAptLine(line, info.Version)
		if err != nil {
			return nil, fmt.Errorf("%w: line %d: %v", ErrAptSyntax, n, err)
		}
		info.Lines = append(info.Lines, l)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkghook: reading apt hook input: %w", err)
	}
	return info, nil
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func parseAptLine(line string, version int) (AptLine, error) {
	// apt writes the fields with single spaces and the archive path last,
	// as it is: a path with spaces (apt-get install "./my pkg.deb") is
	// still one field. Versions, architectures and names have no spaces.
	want := 5
	if version == 3 {
		want = 9
	}
	f := strings.SplitN(line, " ", want)
	if len(f) != want || slices.Contains(f[:want-1], "") || f[want-1] == "" {
		return AptLine{}, fmt.Errorf("%d fields, want %d for VERSION %d: %q", len(strings.Fields(line)), want, version, line)
	}
	var l AptLine
	l.Package = f[0]
	rest := f[1:]
	if version == 3 {
		l.OldVersion, l.OldArch, l.OldMA = dash(rest[0]), dash(rest[1]), rest[2]
		rest = rest[3:]
	} else {
		l.OldVersion = dash(rest[0])
		rest = rest[1:]
	}
	if len(rest[0]) != 1 || !strings.ContainsAny(rest[0], "<>=") {
		return AptLine{}, fmt.Errorf("bad comparison %q", rest[0])
	}
	l.Op = rest[0][0]
	rest = rest[1:]
	if version == 3 {
		l.NewVersion, l.NewArch, l.NewMA = dash(rest[0]), dash(rest[1]), rest[2]
		rest = rest[3:]
	} else {
		l.NewVersion = dash(rest[0])
		rest = rest[1:]
	}
	switch action := rest[0]; action {
	case "**CONFIGURE**":
		l.Kind = AptConfigure
	case "**REMOVE**":
		l.Kind = AptRemove
	case "**ERROR**":
		l.Kind = AptError
	default:
		if !strings.HasPrefix(action, "/") {
			return AptLine{}, fmt.Errorf("action %q is neither a marker nor an absolute path", action)
		}
		l.Kind, l.Deb = AptUnpack, action
	}
	return l, nil
}
