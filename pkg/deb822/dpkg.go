package deb822

import (
	"bytes"
	"io"
)

// Dpkg switches the reader to the rules of dpkg's own stanza parser for
// its status database (lib/dpkg/parse.c, parse_stanza with the lax
// stanza flag dpkg reads its status file with), so that what dpkg rejects
// is rejected and what it accepts is accepted:
//
//   - every line must end with a newline: a file cut inside a field
//     ("end of file during value", item 7 of issue 13) is an error; a
//     single character after the last newline is ignored, as dpkg does;
//   - "Name:" with nothing after it as the very last line is an error;
//   - a line of spaces or tabs does not end a stanza: inside one it is
//     part of the field value (dpkg warns), at the start of one it is an
//     error ("empty field name");
//   - a field name is anything up to a space or the colon ('#', UTF-8
//     and all), not starting with '-'; blanks may precede the colon;
//   - every field, kept or not, may appear once (names compared without
//     case);
//   - '\r' is a blank, as dpkg's c_isspace says (CRLF is not an error
//     here); a value is cut at a NUL byte, as dpkg's C strings are.
//
// Values keep dpkg's raw form: the first line from its first non-blank
// character, each continuation line after a '\n' with its leading blank,
// trailing blanks of the whole value trimmed. MS-DOS end-of-file bytes
// (^Z), which dpkg treats as line ends, are refused.
func (r *Reader) Dpkg() { r.dpkg = true }

// isSpace is dpkg's c_isspace.
func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}

// dpkgLine reads one line for the dpkg rules: its bytes without the '\n',
// whether a '\n' ended it, and eof when nothing was left.
func (r *Reader) dpkgLine() (line []byte, terminated, eof bool, err error) {
	l, eof, err := r.readLine()
	if err != nil || eof {
		return nil, false, eof, err
	}
	if bytes.IndexByte(l, 0x1a) >= 0 {
		return nil, false, false, r.syntax(r.line, "MS-DOS end of file (^Z) in line")
	}
	return l, !r.unterminated, false, nil
}

func (r *Reader) nextDpkg() (*Paragraph, error) {
	// Empty lines between stanzas.
	var line []byte
	var term bool
	for {
		l, t, eof, err := r.dpkgLine()
		if err != nil {
			return nil, err
		}
		if eof {
			return nil, io.EOF
		}
		if len(l) == 1 && !t {
			// One byte after the last newline: dpkg finds the end of
			// the file before any field and stops.
			return nil, io.EOF
		}
		if len(l) > 0 {
			line, term = l, t
			break
		}
	}
	p := &Paragraph{Line: r.line}
	if r.only != nil {
		p.Fields = make([]Field, 0, min(len(r.only), 8))
	}
	size := 0
	r.seen = r.seen[:0]
	r.seenEnd = r.seenEnd[:0]
	// The kept values go end to end into r.vals and become substrings of
	// one string when the stanza ends: one allocation per stanza rather
	// than one per field (every hook reads the whole status file).
	r.vals = r.vals[:0]
	r.spans = r.spans[:0]
	done := func() (*Paragraph, error) {
		all := string(r.vals)
		for _, sp := range r.spans {
			p.Fields = append(p.Fields, Field{Name: sp.name, Value: all[sp.start:sp.end]})
		}
		return p, nil
	}
	for {
		// A field line.
		nameEnd := 0
		for nameEnd < len(line) && !isSpace(line[nameEnd]) && line[nameEnd] != ':' {
			nameEnd++
		}
		name := line[:nameEnd]
		if !term {
			return nil, r.syntax(r.line, "end of file in field %q (missing final newline)", truncate(name))
		}
		if nameEnd == 0 {
			return nil, r.syntax(r.line, "empty field name")
		}
		if name[0] == '-' {
			return nil, r.syntax(r.line, "field name %q cannot start with a hyphen", truncate(name))
		}
		i := nameEnd
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		if i == len(line) || line[i] != ':' {
			return nil, r.syntax(r.line, "field name %q must be followed by a colon", truncate(name))
		}
		if err := r.dpkgSeen(name); err != nil {
			return nil, err
		}
		i++
		for i < len(line) && isSpace(line[i]) {
			i++
		}
		firstEmpty := i == len(line)
		nameStr, keep := r.keepName(name)
		start := len(r.vals)
		if keep {
			if r.only == nil {
				nameStr = string(name)
			}
			r.vals = append(r.vals, line[i:]...)
		}
		size += len(line)
		continuations := 0
		endStanza := false
		var next []byte
		for {
			l, t, eof, err := r.dpkgLine()
			if err != nil {
				return nil, err
			}
			if eof {
				if firstEmpty && continuations == 0 {
					errName := "" // (as the field's own spelling when kept)
					if keep {
						errName = string(name)
					}
					return nil, r.syntax(r.line, "end of file before value of field %q (missing final newline)", errName)
				}
				endStanza = true
				break
			}
			if len(l) == 0 { // an empty line: the stanza ends
				endStanza = true
				break
			}
			if !t && len(l) == 1 {
				// One byte after the last newline: dpkg reads it as the
				// start of the next line, finds the end of the file and
				// stops there.
				endStanza = true
				break
			}
			if !isSpace(l[0]) {
				next, term = l, t
				break
			}
			if !t {
				return nil, r.syntax(r.line, "end of file during value of field %q (missing final newline)", string(name))
			}
			continuations++
			size += len(l)
			if size > r.limits.MaxParagraph {
				return nil, r.syntax(r.line, "paragraph larger than %d bytes", r.limits.MaxParagraph)
			}
			if keep {
				r.vals = append(r.vals, '\n')
				r.vals = append(r.vals, l...)
			}
		}
		if keep {
			v := r.vals[start:]
			if i := bytes.IndexByte(v, 0); i >= 0 {
				v = v[:i]
			}
			for len(v) > 0 && isSpace(v[len(v)-1]) {
				v = v[:len(v)-1]
			}
			r.spans = append(r.spans, span{name: nameStr, start: start, end: start + len(v)})
		}
		if endStanza {
			return done()
		}
		line = next
	}
}

// span is one kept value of the current stanza, in Reader.vals.
type span struct {
	name       string
	start, end int
}

// dpkgSeen records a field name of the current stanza and refuses a
// second one (ASCII case-insensitive), without an allocation per field.
func (r *Reader) dpkgSeen(name []byte) error {
	start := 0
	for _, end := range r.seenEnd {
		// Lengths first: EqualFold walks both names to learn they differ
		// in length, and every stanza compares each field with the ones
		// before it.
		if end-start == len(name) && bytes.EqualFold(r.seen[start:end], name) {
			return r.syntax(r.line, "duplicate field %q", truncate(name))
		}
		start = end
	}
	r.seen = append(r.seen, name...)
	r.seenEnd = append(r.seenEnd, len(r.seen))
	return nil
}
