package debfmt

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
)

// Sum is one md5sums line: the MD5 of the file at Path (absolute, cleaned).
type Sum struct {
	Path string
	MD5  [16]byte
}

// ParseMD5Sums reads an md5sums file: "<32 hex digits>  <path>" per line,
// path relative to the root (dpkg also accepts "./" and "/" prefixes and a
// trailing "/", and so do we). Malformed lines are returned in bad (each a
// *LineError) and reading goes on; err is only a read error.
func ParseMD5Sums(r io.Reader, name string) (sums []Sum, bad []error, err error) {
	// Read whole: a per-file bufio.Scanner allocated 4 KB for every
	// package's md5sums, most of which are a few lines.
	data, err := io.ReadAll(r)
	if err != nil {
		return nil, nil, fmt.Errorf("debfmt: read %s: %w", name, err)
	}
	n := 0
	for len(data) > 0 {
		n++
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) > maxLine {
			return sums, bad, fmt.Errorf("debfmt: read %s: %w", name, bufio.ErrTooLong)
		}
		line = bytes.TrimSuffix(line, []byte{'\r'}) // as bufio.ScanLines
		if len(line) == 0 {
			continue // dpkg refuses these; they carry nothing, so skip them
		}
		s, msg := parseSumLine(line)
		if msg != "" {
			bad = append(bad, &LineError{File: name, Line: n, Msg: msg})
			continue
		}
		sums = append(sums, s)
	}
	return sums, bad, nil
}

// maxLine bounds one line (as the bufio.Scanner this replaced did).
const maxLine = 1 << 20

func parseSumLine(line []byte) (Sum, string) {
	var s Sum
	if len(line) < 32+2+1 {
		return s, "line too short for \"<md5>  <path>\""
	}
	if line[32] != ' ' || line[33] != ' ' {
		return s, "missing two-space separator after the MD5"
	}
	if _, err := hex.Decode(s.MD5[:], line[:32]); err != nil {
		return s, fmt.Sprintf("MD5 %q is not 32 hex digits", line[:32])
	}
	if line[len(line)-1] == '\r' {
		return s, "CRLF line ending"
	}
	p, err := CleanPath(string(line[34:]))
	if err != nil {
		return s, err.Error()
	}
	if p == "/" {
		return s, "empty file name"
	}
	s.Path = p
	return s, ""
}
