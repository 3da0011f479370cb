// Package manifest owns debseal's per-package manifests: what each file
// of an installed package must look like (type, mode, owner, size, symlink
// target, SHA-256 and MD5) and where that knowledge came from (a .deb that
// apt's signed indices vouch for, or only the local system).
//
// It defines the file format (a text format with its own SHA-256, see
// docs/audit.md), reads and writes it, stores manifests under
// ROOT/var/lib/debseal/manifests (root-only and immutable), and builds them
// from a .deb's data member or from the installed files checked against a
// reference MD5 list. It does not compare manifests with the filesystem:
// pkg/audit does.
package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/debfmt"
)

// Magic is the first line of every manifest debseal writes (format 2:
// entries carry the file's fs-verity digest).
const Magic = "debseal-manifest 2"

// Magic1 is the first line of a format 1 manifest (no fs-verity digest),
// which Read still takes: it is rewritten when its package is next
// recorded.
const Magic1 = "debseal-manifest 1"

// Provenance says how far a manifest can be trusted.
type Provenance string

// Provenances.
const (
	// AptVerified: built from (or checked against) a .deb whose hash
	// equals the entry of apt's downloaded, signed package indices for the
	// same package, version and architecture.
	AptVerified Provenance = "apt-verified"
	// Local: built from a .deb apt does not vouch for (dpkg -i of a local
	// file, an index that no longer lists it) or from the installed files
	// checked against the installed md5sums: as trustworthy as the system
	// was when it was recorded.
	Local Provenance = "local"
)

// Content says where the per-file data came from.
type Content string

// Contents.
const (
	// FromDebData: every field of every entry was read from the .deb's
	// data member (debseal manifest, when the .deb is in apt's cache).
	FromDebData Content = "deb"
	// FromInstalled: the installed files were hashed and each regular
	// file's MD5 checked against the reference MD5 list (the .deb's own
	// md5sums when a .deb was at hand, else dpkg's info/*.md5sums; the
	// status Conffiles hash for conffiles); a file that did not match is
	// left out. Type, mode, owner and symlink targets are as dpkg left
	// them on disk (recorded right after dpkg ran, from the hooks).
	FromInstalled Content = "installed"
)

// Type is a file type letter.
type Type byte

// File types.
const (
	TypeFile    Type = 'f'
	TypeDir     Type = 'd'
	TypeSymlink Type = 'l'
	TypeChar    Type = 'c'
	TypeBlock   Type = 'b'
	TypeFIFO    Type = 'p'
)

func (t Type) valid() bool {
	switch t {
	case TypeFile, TypeDir, TypeSymlink, TypeChar, TypeBlock, TypeFIFO:
		return true
	}
	return false
}

// String names the type.
func (t Type) String() string {
	switch t {
	case TypeFile:
		return "file"
	case TypeDir:
		return "directory"
	case TypeSymlink:
		return "symlink"
	case TypeChar:
		return "character device"
	case TypeBlock:
		return "block device"
	case TypeFIFO:
		return "fifo"
	}
	return fmt.Sprintf("type %q", byte(t))
}

// Entry is one path of the package.
type Entry struct {
	Path      string // as the package lists it (absolute, undiverted)
	Type      Type
	Mode      uint32 // permission bits with setuid/setgid/sticky (07777)
	Uid, Gid  uint32
	Size      int64  // regular files; -1 when unknown
	Link      string // symlink target
	HasSHA256 bool
	SHA256    [32]byte
	HasMD5    bool
	MD5       [16]byte
	// Verity is the fs-verity digest (SHA-256, 4096-byte blocks, no
	// salt: pkg/verity) of the same bytes as SHA256.
	HasVerity bool
	Verity    [32]byte
}

// Manifest is one package's manifest.
type Manifest struct {
	Package, Arch, Version string
	Provenance             Provenance
	Content                Content
	Deb                    string // the .deb it was built from or checked against; "" if none
	DebSHA256              string // hex, when Deb is set
	Index                  string // for apt-verified: the index entry's "Algo:hex" and pool file name
	Created                time.Time
	Entries                []Entry // sorted by Path
	Format                 int     // 1 or 2, as read (Write writes 2)
}

// ID is the stem for a package and architecture.
func ID(pkg, arch string) string {
	if arch == "" {
		return pkg
	}
	return pkg + "_" + arch
}

// Lookup finds the entry for a listed path.
func (m *Manifest) Lookup(path string) (*Entry, bool) {
	i := sort.Search(len(m.Entries), func(i int) bool { return m.Entries[i].Path >= path })
	if i < len(m.Entries) && m.Entries[i].Path == path {
		return &m.Entries[i], true
	}
	return nil, false
}

// Sort orders the entries by path and drops duplicates (the last wins).
func (m *Manifest) Sort() {
	sort.SliceStable(m.Entries, func(i, j int) bool { return m.Entries[i].Path < m.Entries[j].Path })
	out := m.Entries[:0]
	for i, e := range m.Entries {
		if i+1 < len(m.Entries) && m.Entries[i+1].Path == e.Path {
			continue
		}
		out = append(out, e)
	}
	m.Entries = out
}

var (
	// ErrCorrupt: the file does not parse as a manifest.
	ErrCorrupt = errors.New("manifest: corrupt")
	// ErrChecksum: the manifest parses but its own checksum does not
	// match: changed by something other than debseal.
	ErrChecksum = errors.New("manifest: checksum mismatch")
)

// Error names the manifest and line of a problem.
type Error struct {
	File string
	Line int
	Err  error // wraps ErrCorrupt or ErrChecksum
	Msg  string
}

func (e *Error) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("%s:%d: %v: %s", e.File, e.Line, e.Err, e.Msg)
	}
	return fmt.Sprintf("%s: %v: %s", e.File, e.Err, e.Msg)
}

func (e *Error) Unwrap() error { return e.Err }

// header fields, in the order Write writes them.
var headerFields = []string{"Package", "Architecture", "Version", "Provenance", "Content", "Deb", "Deb-SHA256", "Index", "Created"}

// Write writes m in the manifest format, ending with its checksum line.
func Write(w io.Writer, m *Manifest) error {
	var b bytes.Buffer
	b.WriteString(Magic + "\n")
	vals := map[string]string{
		"Package": m.Package, "Architecture": m.Arch, "Version": m.Version,
		"Provenance": string(m.Provenance), "Content": string(m.Content), "Deb": m.Deb,
		"Deb-SHA256": m.DebSHA256, "Index": m.Index, "Created": m.Created.UTC().Format(time.RFC3339),
	}
	for _, f := range headerFields {
		if v := vals[f]; v != "" {
			b.WriteString(f + ": " + escape(v) + "\n")
		}
	}
	b.WriteString("\n")
	for i := range m.Entries {
		writeEntry(&b, &m.Entries[i])
	}
	sum := sha256.Sum256(b.Bytes())
	b.WriteString("checksum sha256 " + hex.EncodeToString(sum[:]) + "\n")
	_, err := w.Write(b.Bytes())
	return err
}

// Marshal is Write into a byte slice.
func Marshal(m *Manifest) []byte {
	var b bytes.Buffer
	Write(&b, m)
	return b.Bytes()
}

// writeEntry: "type mode uid gid size sha256 md5 verity path [target]", unknown
// values as "-", paths and targets escaped.
func writeEntry(b *bytes.Buffer, e *Entry) {
	b.WriteByte(byte(e.Type))
	fmt.Fprintf(b, " %04o %d %d ", e.Mode&0o7777, e.Uid, e.Gid)
	if e.Size >= 0 && e.Type == TypeFile {
		b.WriteString(strconv.FormatInt(e.Size, 10))
	} else {
		b.WriteByte('-')
	}
	b.WriteByte(' ')
	if e.HasSHA256 {
		b.WriteString(hex.EncodeToString(e.SHA256[:]))
	} else {
		b.WriteByte('-')
	}
	b.WriteByte(' ')
	if e.HasMD5 {
		b.WriteString(hex.EncodeToString(e.MD5[:]))
	} else {
		b.WriteByte('-')
	}
	b.WriteByte(' ')
	if e.HasVerity {
		b.WriteString(hex.EncodeToString(e.Verity[:]))
	} else {
		b.WriteByte('-')
	}
	b.WriteByte(' ')
	b.WriteString(escape(e.Path))
	if e.Type == TypeSymlink {
		b.WriteByte(' ')
		b.WriteString(escape(e.Link))
	}
	b.WriteByte('\n')
}

// escape percent-encodes bytes that would break the line format: blanks,
// control characters, '%' and DEL. An empty string becomes "%" alone
// (never produced otherwise), so every field is non-empty.
func escape(s string) string {
	if s == "" {
		return "%"
	}
	need := false
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c == '%' || c == 0x7f {
			need = true
			break
		}
	}
	if !need {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c <= ' ' || c == '%' || c == 0x7f {
			fmt.Fprintf(&b, "%%%02X", c)
		} else {
			b.WriteByte(c)
		}
	}
	return b.String()
}

func unescape(s string) (string, error) {
	if s == "%" {
		return "", nil
	}
	return debfmt.PercentDecode(s)
}

// lines iterates over the lines of a string as bufio.Scanner's ScanLines
// does (a final line without '\n' counts; one trailing '\r' is dropped),
// without copying: each line is a substring. A line longer than
// maxLine is an error, as it was for the scanner this replaced.
type lines struct {
	rest string
	n    int // lines returned so far
	err  error
}

// maxLine bounds one line of a manifest (a path of 4096 bytes, escaped,
// is far below it).
const maxLine = 1 << 20

func (l *lines) next() (string, bool) {
	if l.rest == "" || l.err != nil {
		return "", false
	}
	line := l.rest
	if i := strings.IndexByte(l.rest, '\n'); i >= 0 {
		line, l.rest = l.rest[:i], l.rest[i+1:]
	} else {
		l.rest = ""
	}
	if len(line) > maxLine {
		l.err = errors.New("line too long")
		return "", false
	}
	line = strings.TrimSuffix(line, "\r")
	l.n++
	return line, true
}

// headerChunk is what readHeader reads at first: a header is a few
// hundred bytes.
const headerChunk = 4 << 10

// readHeader parses the magic line and the header fields, up to the blank
// line that ends them (see Store.Header). It reads only as far as that
// line, a few KB at a time.
func readHeader(r io.Reader, name string) (*Manifest, error) {
	buf := make([]byte, 0, headerChunk)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		end := bytes.Index(buf, []byte("\n\n"))
		if end >= 0 || err != nil {
			if end >= 0 {
				buf = buf[:end+2]
			} else if err != io.EOF {
				return nil, &Error{File: name, Err: ErrCorrupt, Msg: err.Error()}
			}
			m, _, herr := scanHeader(&lines{rest: string(buf)}, name)
			return m, herr
		}
	}
}

// scanHeader reads the magic line and the header fields from l, through
// the blank line that ends them, and returns how many lines it read.
func scanHeader(l *lines, name string) (*Manifest, int, error) {
	corrupt := func(line int, msg string) error {
		return &Error{File: name, Line: line, Err: ErrCorrupt, Msg: msg}
	}
	m := &Manifest{}
	for {
		line, ok := l.next()
		if !ok {
			break
		}
		n := l.n
		switch {
		case n == 1 && line == Magic:
			m.Format = 2
		case n == 1 && line == Magic1:
			m.Format = 1
		case n == 1:
			return nil, n, corrupt(n, fmt.Sprintf("first line %q, want %q", trunc(line), Magic))
		case line == "":
			if m.Package == "" || m.Version == "" {
				return nil, n, corrupt(0, "no Package or Version field")
			}
			return m, n, nil
		default:
			if err := m.setHeader(line); err != nil {
				return nil, n, corrupt(n, err.Error())
			}
		}
	}
	if l.err != nil {
		return nil, l.n, corrupt(l.n, l.err.Error())
	}
	return nil, l.n, corrupt(l.n, "no blank line after the header")
}

// maxManifest bounds what Read accepts (the biggest Debian packages list
// about 100,000 paths, some 20 MB of manifest).
const maxManifest = 256 << 20

// Read parses a manifest and checks its checksum. A manifest that does not
// parse is an *Error wrapping ErrCorrupt, one whose checksum differs wraps
// ErrChecksum (the manifest is still returned with it, so an audit can say
// what it claimed).
func Read(r io.Reader, name string) (*Manifest, error) {
	data, err := readAll(r, maxManifest+1)
	if err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", name, err)
	}
	return parse(data, name)
}

// readAll reads r to its end or to limit bytes, into one buffer sized
// from the file when r is one (io.ReadAll starts at 512 bytes and copies
// as it grows).
func readAll(r io.Reader, limit int64) ([]byte, error) {
	size := int64(512)
	if f, ok := r.(interface{ Stat() (fs.FileInfo, error) }); ok {
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			size = min(st.Size()+1, limit) // +1: room for the read that sees EOF
		}
	}
	lr := io.LimitReader(r, limit)
	buf := make([]byte, 0, size)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := lr.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, err
		}
	}
}

// parse is Read on the manifest's bytes. The entries' strings share one
// copy of data.
func parse(data []byte, name string) (*Manifest, error) {
	if len(data) > maxManifest {
		return nil, &Error{File: name, Err: ErrCorrupt, Msg: "too large"}
	}
	corrupt := func(line int, format string, args ...any) error {
		return &Error{File: name, Line: line, Err: ErrCorrupt, Msg: fmt.Sprintf(format, args...)}
	}
	// The checksum line is the last one.
	if len(data) == 0 || data[len(data)-1] != '\n' {
		return nil, corrupt(0, "does not end with a newline")
	}
	i := bytes.LastIndexByte(data[:len(data)-1], '\n')
	body, last := data[:i+1], string(data[i+1:len(data)-1])
	wantSum, ok := strings.CutPrefix(last, "checksum sha256 ")
	if !ok || len(wantSum) != 64 {
		return nil, corrupt(0, "no checksum line at the end")
	}
	l := &lines{rest: string(body)}
	m, _, err := scanHeader(l, name)
	if err != nil {
		return nil, err
	}
	m.Entries = make([]Entry, 0, strings.Count(l.rest, "\n"))
	for {
		line, ok := l.next()
		if !ok {
			break
		}
		e, err := parseEntry(line, m.Format)
		if err != nil {
			return nil, corrupt(l.n, "%v", err)
		}
		if k := len(m.Entries); k > 0 && m.Entries[k-1].Path >= e.Path {
			return nil, corrupt(l.n, "entries not sorted by path (%s after %s)", trunc(e.Path), trunc(m.Entries[k-1].Path))
		}
		m.Entries = append(m.Entries, e)
	}
	if l.err != nil {
		return nil, corrupt(l.n, "%v", l.err)
	}
	if len(m.Entries) == 0 {
		m.Entries = nil
	}
	switch m.Provenance {
	case AptVerified, Local:
	default:
		return nil, corrupt(0, "Provenance %q is not %s or %s", trunc(string(m.Provenance)), AptVerified, Local)
	}
	sum := sha256.Sum256(body)
	if hex.EncodeToString(sum[:]) != wantSum {
		return m, &Error{File: name, Err: ErrChecksum, Msg: fmt.Sprintf("content hashes to %x, the manifest says %s", sum, wantSum)}
	}
	return m, nil
}

// Unmarshal is Read from a byte slice.
func Unmarshal(b []byte, name string) (*Manifest, error) { return parse(b, name) }

func (m *Manifest) setHeader(line string) error {
	k, v, ok := strings.Cut(line, ": ")
	if !ok {
		return fmt.Errorf("header line %q is not \"Field: value\"", trunc(line))
	}
	v, err := unescape(v)
	if err != nil {
		return err
	}
	switch k {
	case "Package":
		m.Package = v
	case "Architecture":
		m.Arch = v
	case "Version":
		m.Version = v
	case "Provenance":
		m.Provenance = Provenance(v)
	case "Content":
		m.Content = Content(v)
	case "Deb":
		m.Deb = v
	case "Deb-SHA256":
		m.DebSHA256 = v
	case "Index":
		m.Index = v
	case "Created":
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			return fmt.Errorf("field Created: %v", err)
		}
		m.Created = t.UTC()
	default:
		// Unknown fields are allowed: a newer debseal may add some.
	}
	return nil
}

// splitEntry splits an entry line at its spaces into f and returns the
// number of fields, or len(f)+1 when there are more (strings.Split
// without its allocation: this runs once per path of every manifest).
func splitEntry(line string, f *[10]string) int {
	n := 0
	for {
		i := strings.IndexByte(line, ' ')
		if n == len(f) {
			return n + 1
		}
		if i < 0 {
			f[n] = line
			return n + 1
		}
		f[n], line = line[:i], line[i+1:]
		n++
	}
}

// parseEntry parses an entry of a manifest of the given format (format 1
// has no verity field).
func parseEntry(line string, format int) (Entry, error) {
	var e Entry
	var fields [10]string
	nf := splitEntry(line, &fields)
	f := fields[:min(nf, len(fields))]
	// Format 1 lines are format 2 lines without the verity field: parse
	// them as such, with "-" in its place.
	base := 8
	if format == 1 {
		base = 7
	}
	shape := "\"type mode uid gid size sha256 md5 verity path [target]\""
	if format == 1 {
		shape = "\"type mode uid gid size sha256 md5 path [target]\""
	}
	if nf < base+1 {
		return e, fmt.Errorf("entry %q: want %s", trunc(line), shape)
	}
	if len(f[0]) != 1 || !Type(f[0][0]).valid() {
		return e, fmt.Errorf("entry %q: unknown type %q", trunc(line), trunc(f[0]))
	}
	e.Type = Type(f[0][0])
	if (e.Type == TypeSymlink) != (nf == base+2) || nf > base+2 {
		return e, fmt.Errorf("entry %q: wrong number of fields for a %s", trunc(line), e.Type)
	}
	f = fields[:]
	if format == 1 {
		copy(f[8:], f[7:9])
		f[7] = "-"
	}
	mode, err := strconv.ParseUint(f[1], 8, 32)
	if err != nil || mode > 0o7777 {
		return e, fmt.Errorf("entry %q: bad mode %q", trunc(line), trunc(f[1]))
	}
	e.Mode = uint32(mode)
	uid, err1 := strconv.ParseUint(f[2], 10, 32)
	gid, err2 := strconv.ParseUint(f[3], 10, 32)
	if err1 != nil || err2 != nil {
		return e, fmt.Errorf("entry %q: bad owner", trunc(line))
	}
	e.Uid, e.Gid = uint32(uid), uint32(gid)
	e.Size = -1
	if f[4] != "-" {
		if e.Size, err = strconv.ParseInt(f[4], 10, 64); err != nil || e.Size < 0 || e.Type != TypeFile {
			return e, fmt.Errorf("entry %q: bad size %q", trunc(line), trunc(f[4]))
		}
	}
	if e.HasSHA256, err = parseHex(f[5], e.SHA256[:]); err != nil {
		return e, fmt.Errorf("entry %q: bad sha256", trunc(line))
	}
	if e.HasMD5, err = parseHex(f[6], e.MD5[:]); err != nil {
		return e, fmt.Errorf("entry %q: bad md5", trunc(line))
	}
	if e.HasVerity, err = parseHex(f[7], e.Verity[:]); err != nil {
		return e, fmt.Errorf("entry %q: bad verity digest", trunc(line))
	}
	if (e.HasSHA256 || e.HasMD5 || e.HasVerity) && e.Type != TypeFile {
		return e, fmt.Errorf("entry %q: a digest on a %s", trunc(line), e.Type)
	}
	if e.Path, err = unescape(f[8]); err != nil {
		return e, err
	}
	if !strings.HasPrefix(e.Path, "/") {
		return e, fmt.Errorf("entry %q: path is not absolute", trunc(line))
	}
	if e.Type == TypeSymlink {
		if e.Link, err = unescape(f[9]); err != nil {
			return e, err
		}
	}
	return e, nil
}

// parseHex decodes a digest field into dst: "-" is none, anything else
// must be exactly its lowercase or uppercase hex.
func parseHex(field string, dst []byte) (bool, error) {
	if field == "-" {
		return false, nil
	}
	if len(field) != 2*len(dst) {
		return false, errors.New("wrong length")
	}
	if _, err := hex.Decode(dst, []byte(field)); err != nil {
		return false, err
	}
	return true, nil
}

func trunc(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
