// Package mountinfo reads the kernel's list of mounts, /proc/PID/mountinfo
// (proc_pid_mountinfo(5); fs/proc_namespace.c show_mountinfo prints it),
// into one Mount per line.
//
// It parses and formats, nothing more: deciding which mounts matter is its
// callers' business (pkg/shadow). Parse takes an io.Reader so that tests
// feed it fixtures and fuzzers feed it bytes; Self reads this process's
// own file.
package mountinfo

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of mountinfo.
type Mount struct {
	ID     int    // mount ID (unique while mounted; reused after umount)
	Parent int    // the parent mount's ID (its own for the top of the tree)
	Major  uint32 // st_dev of files on the filesystem: 0 for anonymous devices (tmpfs, overlay, proc, FUSE, btrfs…)
	Minor  uint32
	// Root is the directory of the filesystem mounted here: "/" for a
	// whole filesystem, a subdirectory (or a file) for a bind mount.
	Root string
	// MountPoint is where it is mounted, relative to the reading
	// process's root, every symlink resolved (d_path).
	MountPoint string
	Options    []string // per-mount options: rw or ro first, then nosuid, relatime…
	// Optional are the tagged fields before the " - " separator:
	// shared:N, master:N, propagate_from:N, unbindable.
	Optional     []string
	FSType       string   // type, with FUSE's subtype: "fuse.sshfs"
	Source       string   // what the filesystem says it mounts ("/dev/sda1", "tmpfs", "" when given empty)
	SuperOptions []string // per-superblock options: rw or ro first, then the filesystem's own
}

// ErrMalformed is what every parse error matches (errors.Is).
var ErrMalformed = errors.New("malformed mountinfo")

// ParseError is a line that is not what the kernel prints.
type ParseError struct {
	Name string // the file, for messages
	Line int    // 1-based
	Msg  string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("mountinfo: %s:%d: %s", e.Name, e.Line, e.Msg)
}

// Is makes every ParseError match ErrMalformed.
func (e *ParseError) Is(target error) bool { return target == ErrMalformed }

// maxLine bounds a line: an overlay with many layers prints long options
// (the kernel's seq_file buffer grows to fit a line), but nothing real
// comes near this.
const maxLine = 1 << 20

// Self reads /proc/self/mountinfo: the mounts of this process's mount
// namespace, as seen from its root.
func Self() ([]Mount, error) { return ReadFile("/proc/self/mountinfo") }

// ReadFile reads a mountinfo file.
func ReadFile(name string) ([]Mount, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("mountinfo: %w", err)
	}
	defer f.Close()
	return Parse(f, name)
}

// Parse reads every line of r; name is used in errors. An empty input is
// no mounts. The first line that is not what the kernel prints stops it
// with a *ParseError naming the line.
func Parse(r io.Reader, name string) ([]Mount, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxLine)
	sc.Split(splitLines)
	var out []Mount
	n := 0
	for sc.Scan() {
		n++
		m, err := ParseLine(sc.Text())
		if err != nil {
			return nil, &ParseError{Name: name, Line: n, Msg: err.Error()}
		}
		out = append(out, m)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &ParseError{Name: name, Line: n + 1, Msg: fmt.Sprintf("line longer than %d bytes", maxLine)}
		}
		return nil, fmt.Errorf("mountinfo: read %s (line %d): %w", name, n+1, err)
	}
	return out, nil
}

// splitLines splits at '\n' only: bufio.ScanLines would also drop a '\r'
// that ends a line, and the kernel prints a carriage return in a path as
// it is.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// ParseLine parses one line, without its newline. Its error says what is
// wrong, without a line number.
//
// The kernel separates fields with one space and escapes space, tab,
// newline and backslash in them as \ooo (octal). The fields it formats
// itself — the numbers, the root, the mount point, the filesystem type —
// must be exactly so. The source and the superblock options are each
// filesystem's own (show_devname, show_options): there a backslash that
// starts no escape is kept as it is, and blanks the filesystem printed
// unescaped stay part of the options.
func ParseLine(line string) (Mount, error) {
	var m Mount
	f := strings.Split(line, " ")
	sep := -1
	for i := 6; i < len(f); i++ {
		if f[i] == "-" {
			sep = i
			break
		}
	}
	if sep < 0 || len(f) < sep+4 {
		return m, fmt.Errorf("want \"ID PARENT MAJOR:MINOR ROOT MOUNT-POINT OPTIONS [OPTIONAL...] - TYPE SOURCE SUPER-OPTIONS\", got %q", line)
	}
	var err error
	if m.ID, err = parseID(f[0]); err != nil {
		return m, fmt.Errorf("mount ID: %w", err)
	}
	if m.Parent, err = parseID(f[1]); err != nil {
		return m, fmt.Errorf("parent ID: %w", err)
	}
	maj, min, ok := strings.Cut(f[2], ":")
	if !ok {
		return m, fmt.Errorf("major:minor: %q has no ':'", f[2])
	}
	if m.Major, err = parseDev(maj); err != nil {
		return m, fmt.Errorf("major:minor: %w", err)
	}
	if m.Minor, err = parseDev(min); err != nil {
		return m, fmt.Errorf("major:minor: %w", err)
	}
	if m.Root, err = unescapePath("root", f[3]); err != nil {
		return m, err
	}
	if m.MountPoint, err = unescapePath("mount point", f[4]); err != nil {
		return m, err
	}
	if m.Options, err = splitOptions("mount options", f[5], true); err != nil {
		return m, err
	}
	for _, o := range f[6:sep] {
		if o == "" {
			return m, errors.New("optional fields: an empty field (two spaces)")
		}
		m.Optional = append(m.Optional, o)
	}
	if m.FSType, err = Unescape(f[sep+1]); err != nil {
		return m, fmt.Errorf("filesystem type: %w", err)
	}
	if m.FSType == "" {
		return m, errors.New("filesystem type: empty")
	}
	m.Source = unescapeLoose(f[sep+2])
	if m.SuperOptions, err = splitOptions("superblock options", strings.Join(f[sep+3:], " "), false); err != nil {
		return m, err
	}
	return m, nil
}

func parseID(s string) (int, error) {
	v, err := strconv.ParseUint(s, 10, 31)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return int(v), nil
}

func parseDev(s string) (uint32, error) {
	v, err := strconv.ParseUint(s, 10, 32)
	if err != nil {
		return 0, fmt.Errorf("%q is not a number", s)
	}
	return uint32(v), nil
}

// unescapePath decodes a root or mount point: always absolute, as d_path
// and dentry_path print them.
func unescapePath(what, s string) (string, error) {
	p, err := Unescape(s)
	if err != nil {
		return "", fmt.Errorf("%s: %w", what, err)
	}
	if !strings.HasPrefix(p, "/") {
		return "", fmt.Errorf("%s: %q is not absolute", what, s)
	}
	return p, nil
}

// splitOptions splits a comma-separated list, then decodes each element
// (a filesystem may print an escaped comma, \054, inside a value). The
// list starts with rw or ro; strict lists (the per-mount options, which
// the kernel prints from flags) have no empty element and no bad escape.
func splitOptions(what, s string, strict bool) ([]string, error) {
	parts := strings.Split(s, ",")
	if parts[0] != "rw" && parts[0] != "ro" {
		return nil, fmt.Errorf("%s: %q does not start with rw or ro", what, s)
	}
	for i, p := range parts {
		if !strict {
			parts[i] = unescapeLoose(p)
			continue
		}
		if p == "" {
			return nil, fmt.Errorf("%s: an empty option in %q", what, s)
		}
		v, err := Unescape(p)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		parts[i] = v
	}
	return parts, nil
}

// Unescape decodes the kernel's \ooo escapes (three octal digits, at most
// \377). Any other backslash is an error: the kernel escapes its own.
func Unescape(s string) (string, error) {
	if strings.IndexByte(s, '\\') < 0 {
		return s, nil
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		v, ok := octal(s[i+1:])
		if !ok {
			end := min(i+4, len(s))
			return "", fmt.Errorf("bad escape %q in %q (want \\ and three octal digits)", s[i:end], s)
		}
		b.WriteByte(v)
		i += 3
	}
	return b.String(), nil
}

// unescapeLoose decodes \ooo escapes and keeps any other backslash.
func unescapeLoose(s string) string {
	if strings.IndexByte(s, '\\') < 0 {
		return s
	}
	var b strings.Builder
	b.Grow(len(s))
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' {
			if v, ok := octal(s[i+1:]); ok {
				b.WriteByte(v)
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func octal(s string) (byte, bool) {
	if len(s) < 3 || s[0] < '0' || s[0] > '3' {
		return 0, false
	}
	for i := 1; i < 3; i++ {
		if s[i] < '0' || s[i] > '7' {
			return 0, false
		}
	}
	return (s[0]-'0')<<6 | (s[1]-'0')<<3 | (s[2] - '0'), true
}

// Escape encodes s as the kernel's mangle does (seq_escape with
// " \t\n\\"): those four bytes as \ooo, everything else as it is.
func Escape(s string) string { return escape(s, " \t\n\\") }

func escape(s, special string) string {
	if !strings.ContainsAny(s, special) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		c := s[i]
		if strings.IndexByte(special, c) >= 0 {
			b.WriteByte('\\')
			b.WriteByte('0' + c>>6)
			b.WriteByte('0' + c>>3&7)
			b.WriteByte('0' + c&7)
			continue
		}
		b.WriteByte(c)
	}
	return b.String()
}

// String formats m as the kernel prints its line (without the newline).
// Options are escaped element by element, commas inside one included,
// so Parse reads back the same Mount.
func (m Mount) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %d:%d %s %s %s", m.ID, m.Parent, m.Major, m.Minor, Escape(m.Root), Escape(m.MountPoint), joinOptions(m.Options))
	for _, o := range m.Optional {
		b.WriteString(" " + o)
	}
	fmt.Fprintf(&b, " - %s %s %s", Escape(m.FSType), Escape(m.Source), joinOptions(m.SuperOptions))
	return b.String()
}

func joinOptions(opts []string) string {
	esc := make([]string, len(opts))
	for i, o := range opts {
		esc[i] = escape(o, " \t\n\\,")
	}
	return strings.Join(esc, ",")
}

// SuperOption returns the value of the superblock option key ("subvol"
// for btrfs's "subvol=/@home"), and whether it is there.
func (m Mount) SuperOption(key string) (string, bool) {
	for _, o := range m.SuperOptions {
		if k, v, ok := strings.Cut(o, "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}
