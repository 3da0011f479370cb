// Package deb822 reads the paragraph ("stanza") format shared by dpkg's
// status database, DEBIAN/control members and apt's Packages indices.
//
// It owns the syntax only: paragraphs of "Name: value" fields, continuation
// lines, blank-line separation. What a field means belongs to the callers
// (pkg/dpkgdb, pkg/deb). The rules follow dpkg's own parser
// (lib/dpkg/parse.c) where it is strict and Debian Policy 5.1 where dpkg is
// lax: a line holding only spaces or tabs ends a paragraph, a field name may
// not start with '-' or '#', a field may appear once per paragraph, a
// missing final newline is accepted. CRLF line endings are rejected with a
// clear error instead of leaking '\r' into values.
package deb822

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// ErrSyntax is matched by every *SyntaxError.
var ErrSyntax = errors.New("deb822: syntax error")

// SyntaxError reports malformed input with the file name and line.
type SyntaxError struct {
	File string // as given to NewReader; may be empty
	Line int    // 1-based
	Msg  string
}

func (e *SyntaxError) Error() string {
	name := e.File
	if name == "" {
		name = "<input>"
	}
	return fmt.Sprintf("deb822: %s:%d: %s", name, e.Line, e.Msg)
}

// Is makes errors.Is(err, ErrSyntax) true for syntax errors.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// Field is one "Name: value" field. Value holds the text after the colon
// with surrounding blanks trimmed; continuation lines follow it, each after a
// '\n' and with its single leading space or tab removed (so a Conffiles
// value starts with '\n').
type Field struct {
	Name  string
	Value string
}

// Paragraph is one stanza, fields in file order.
type Paragraph struct {
	Fields []Field
	Line   int // line of the first field
}

// Get returns the value of the field named name (ASCII case-insensitive,
// as dpkg compares field names).
func (p *Paragraph) Get(name string) (string, bool) {
	for i := range p.Fields {
		if strings.EqualFold(p.Fields[i].Name, name) {
			return p.Fields[i].Value, true
		}
	}
	return "", false
}

// Value is Get without the presence flag.
func (p *Paragraph) Value(name string) string {
	v, _ := p.Get(name)
	return v
}

// Lines splits a multi-line value into its continuation lines, dropping the
// (usually empty) first line when it is empty.
func Lines(value string) []string {
	lines := strings.Split(value, "\n")
	if len(lines) > 0 && lines[0] == "" {
		lines = lines[1:]
	}
	return lines
}

// Limits bound what one paragraph may cost, so a hostile file cannot make a
// reader allocate without end. The zero value means the defaults.
type Limits struct {
	MaxLine      int // bytes in one line, default 1 MiB
	MaxParagraph int // bytes in one paragraph, default 64 MiB
}

const (
	defaultMaxLine      = 1 << 20
	defaultMaxParagraph = 64 << 20
)

// Reader reads paragraphs one at a time. Errors are sticky: after the first
// error every call to Next returns it again.
type Reader struct {
	br      *bufio.Reader
	file    string
	line    int
	err     error
	limits  Limits
	only    map[string]string // lower-case names of the fields to keep → as Only was given them; nil: all
	onlyLen [64]bool          // the lengths of those names (up to 63): most fields are rejected without a lookup

	dpkg         bool   // dpkg's rules (Dpkg)
	unterminated bool   // the last line read had no '\n'
	seen         []byte // dpkg mode: the field names of this stanza, end to end
	seenEnd      []int  // where each ends in seen
	vals         []byte // dpkg mode: the kept values of this stanza, end to end
	spans        []span // where each is in vals
}

// Only makes the reader keep just the named fields (ASCII
// case-insensitive) in the paragraphs it returns; in dpkg mode (Dpkg)
// their names are spelled as given here. The other fields are
// still checked for syntax, not for duplicates, and cost no allocation:
// reading dpkg's status file for the few fields a hook needs is three
// times faster than keeping every Description.
func (r *Reader) Only(names ...string) {
	r.only = make(map[string]string, len(names))
	r.onlyLen = [64]bool{}
	for _, n := range names {
		l := strings.ToLower(n)
		r.only[l] = n
		r.onlyLen[min(len(l), len(r.onlyLen)-1)] = true
	}
}

// keep reports whether the field named name is wanted.
func (r *Reader) keep(name []byte) bool {
	_, ok := r.keepName(name)
	return ok
}

// keepName is keep that also returns the name as Only was given it (no
// allocation: dpkg mode names kept fields so).
func (r *Reader) keepName(name []byte) (string, bool) {
	if r.only == nil {
		return "", true
	}
	if !r.onlyLen[min(len(name), len(r.onlyLen)-1)] {
		return "", false
	}
	var lower [64]byte
	if len(name) > len(lower) {
		n, ok := r.only[strings.ToLower(string(name))]
		return n, ok
	}
	for i, c := range name {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		lower[i] = c
	}
	n, ok := r.only[string(lower[:len(name)])]
	return n, ok
}

// NewReader reads paragraphs from r; name is used in error messages.
func NewReader(r io.Reader, name string) *Reader {
	return newReaderLimits(r, name, Limits{})
}

// newReaderLimits is NewReader with explicit limits.
func newReaderLimits(r io.Reader, name string, l Limits) *Reader {
	if l.MaxLine <= 0 {
		l.MaxLine = defaultMaxLine
	}
	if l.MaxParagraph <= 0 {
		l.MaxParagraph = defaultMaxParagraph
	}
	br, ok := r.(*bufio.Reader)
	if !ok || br.Size() < 64<<10 {
		br = bufio.NewReaderSize(r, 64<<10)
	}
	return &Reader{br: br, file: name, limits: l}
}

func (r *Reader) syntax(line int, format string, args ...any) error {
	return &SyntaxError{File: r.file, Line: line, Msg: fmt.Sprintf(format, args...)}
}

// readLine returns the next line without its '\n'. eof reports that the
// input ended before a line could be read. The line may alias the reader's
// buffer: it is valid until the next call.
func (r *Reader) readLine() (line []byte, eof bool, err error) {
	var buf []byte
	for {
		chunk, err := r.br.ReadSlice('\n')
		if len(buf)+len(chunk) > r.limits.MaxLine {
			return nil, false, r.syntax(r.line+1, "line longer than %d bytes", r.limits.MaxLine)
		}
		if err == bufio.ErrBufferFull {
			buf = append(buf, chunk...)
			continue
		}
		if buf != nil {
			chunk = append(buf, chunk...)
		}
		if err == io.EOF {
			if len(chunk) == 0 {
				return nil, true, nil
			}
			r.line++
			r.unterminated = true
			return chunk, false, nil // missing final newline
		}
		if err != nil {
			return nil, false, fmt.Errorf("deb822: read %s: %w", r.fileName(), err)
		}
		r.line++
		r.unterminated = false
		return chunk[:len(chunk)-1], false, nil
	}
}

func (r *Reader) fileName() string {
	if r.file == "" {
		return "<input>"
	}
	return r.file
}

func isBlank(line []byte) bool {
	return len(bytes.Trim(line, " \t")) == 0
}

// Next returns the next paragraph, or io.EOF when there are no more.
func (r *Reader) Next() (*Paragraph, error) {
	if r.err != nil {
		return nil, r.err
	}
	var p *Paragraph
	var err error
	if r.dpkg {
		p, err = r.nextDpkg()
	} else {
		p, err = r.next()
	}
	if err != nil {
		r.err = err
	}
	return p, err
}

func (r *Reader) next() (*Paragraph, error) {
	// Skip blank lines between paragraphs.
	var line []byte
	for {
		l, eof, err := r.readLine()
		if err != nil {
			return nil, err
		}
		if eof {
			return nil, io.EOF
		}
		if !isBlank(l) {
			line = l
			break
		}
	}
	p := &Paragraph{Line: r.line}
	size := 0
	for {
		if err := r.checkLine(line); err != nil {
			return nil, err
		}
		if line[0] == ' ' || line[0] == '\t' {
			return nil, r.syntax(r.line, "continuation line without a field")
		}
		if line[0] == '#' {
			return nil, r.syntax(r.line, "line starts with '#' (comments are not allowed here)")
		}
		colon := bytes.IndexByte(line, ':')
		if colon < 0 {
			return nil, r.syntax(r.line, "field %q must be followed by a colon", truncate(line))
		}
		nameb := bytes.TrimRight(line[:colon], " \t")
		if err := r.checkName(nameb); err != nil {
			return nil, err
		}
		keep := r.keep(nameb)
		var name string
		if keep {
			// Copy now: line aliases the read buffer, which the next
			// readLine may overwrite.
			name = string(nameb)
			for i := range p.Fields {
				if strings.EqualFold(p.Fields[i].Name, name) {
					return nil, r.syntax(r.line, "duplicate field %q", name)
				}
			}
		}
		var val strings.Builder
		if keep {
			val.Write(bytes.Trim(line[colon+1:], " \t"))
		}
		size += len(line)
		add := func() {
			if keep {
				p.Fields = append(p.Fields, Field{Name: name, Value: val.String()})
			}
		}
		// Continuation lines.
		for {
			next, eof, err := r.readLine()
			if err != nil {
				return nil, err
			}
			if eof || isBlank(next) {
				add()
				return p, nil
			}
			if next[0] != ' ' && next[0] != '\t' {
				// The next field: it is parsed at the top of the loop,
				// before the buffer it aliases is read into again.
				add()
				line = next
				break
			}
			if err := r.checkLine(next); err != nil {
				return nil, err
			}
			size += len(next)
			if size > r.limits.MaxParagraph {
				return nil, r.syntax(r.line, "paragraph larger than %d bytes", r.limits.MaxParagraph)
			}
			if keep {
				val.WriteByte('\n')
				val.Write(bytes.TrimRight(next[1:], " \t"))
			}
		}
		if size > r.limits.MaxParagraph {
			return nil, r.syntax(r.line, "paragraph larger than %d bytes", r.limits.MaxParagraph)
		}
	}
}

func (r *Reader) checkLine(line []byte) error {
	if n := len(line); n > 0 && line[n-1] == '\r' {
		return r.syntax(r.line, "CRLF line ending (convert the file to LF line endings)")
	}
	if bytes.IndexByte(line, 0) >= 0 {
		return r.syntax(r.line, "NUL byte in line")
	}
	return nil
}

func (r *Reader) checkName(name []byte) error {
	if len(name) == 0 {
		return r.syntax(r.line, "empty field name")
	}
	if name[0] == '-' {
		return r.syntax(r.line, "field name %q cannot start with a hyphen", name)
	}
	for _, c := range name {
		if c <= ' ' || c >= 0x7f {
			return r.syntax(r.line, "invalid character %q in field name %q", c, truncate(name))
		}
	}
	return nil
}

func truncate(b []byte) string {
	const max = 40
	if len(b) > max {
		return string(b[:max]) + "…"
	}
	return string(b)
}

// ReadAll reads every paragraph.
func ReadAll(r io.Reader, name string) ([]*Paragraph, error) {
	dr := NewReader(r, name)
	var out []*Paragraph
	for {
		p, err := dr.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}
