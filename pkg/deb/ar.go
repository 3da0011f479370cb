package deb

import (
	"bytes"
	"fmt"
	"io"
)

// The ar layer is our own rather than github.com/blakesmith/ar (the design
// card's choice): blakesmith/ar panics on malformed headers (a mode field of
// "0" or blanks, a negative size), does not check the "!<arch>\n" magic or
// the header terminator and reports truncation as a clean io.EOF; a fuzzer
// found the first panic within seconds (testdata/fuzz/FuzzAr). deb(5) only
// needs the common ar format with names of at most 15 characters, which is
// small enough to own.

const (
	arMagic      = "!<arch>\n"
	arHeaderSize = 60
)

// arHeader is one member header.
type arHeader struct {
	Name         string // trailing blanks and a GNU-style trailing '/' removed
	Size         int64  // bytes of member data (without the padding byte)
	HeaderOffset int64  // offset of the 60-byte header in the archive
	Offset       int64  // offset of the member data
}

// arReader reads an ar archive member by member, like archive/tar.Reader:
// Next returns each header then io.EOF, Read reads the current member,
// errors are sticky. It reads exactly the bytes it needs from r: after the
// last member of interest, r is positioned right behind it.
type arReader struct {
	r      io.Reader
	seeker io.Seeker // r as a Seeker when seeking works, to skip members
	name   string    // file name for errors
	size   int64     // archive size when known (seekable input), else -1
	off    int64     // bytes consumed from r
	cur    arHeader  // current member
	remain int64     // unread bytes of the current member
	pad    int64     // padding byte after the current member
	magic  bool      // the magic has been read
	err    error     // sticky error of Next
	rerr   error     // sticky error of Read
	hdr    [arHeaderSize]byte
}

func newArReader(r io.Reader, name string) *arReader {
	a := &arReader{r: r, name: name, size: -1}
	if s, ok := r.(io.Seeker); ok {
		// Knowing the size lets us reject a member that claims to extend
		// past the end before reading it, as dpkg does, and skip members
		// with a seek. Pipes are Seekers that fail: then we read.
		if cur, err := s.Seek(0, io.SeekCurrent); err == nil {
			if end, err := s.Seek(0, io.SeekEnd); err == nil {
				if _, err := s.Seek(cur, io.SeekStart); err == nil && end >= cur {
					a.size = end - cur
					a.seeker = s
				}
			}
		}
	}
	return a
}

func (a *arReader) errorf(member string, off int64, sentinel error, format string, args ...any) error {
	return &Error{File: a.name, Member: member, Offset: off, Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
}

func (a *arReader) ioError(member string, off int64, err error) error {
	return &Error{File: a.name, Member: member, Offset: off, Err: err}
}

// Next advances to the next member and returns its header, or io.EOF at
// the end of the archive.
func (a *arReader) Next() (*arHeader, error) {
	if a.err != nil {
		return nil, a.err
	}
	h, err := a.next()
	if err != nil {
		a.err = err
		return nil, err
	}
	return h, nil
}

func (a *arReader) next() (*arHeader, error) {
	if !a.magic {
		var m [len(arMagic)]byte
		n, err := io.ReadFull(a.r, m[:])
		a.off += int64(n)
		switch {
		case err == io.EOF:
			return nil, a.errorf("", 0, ErrFormat, "empty file")
		case err == io.ErrUnexpectedEOF:
			return nil, a.errorf("", 0, ErrFormat, "truncated ar magic (%d bytes): %w", n, io.ErrUnexpectedEOF)
		case err != nil:
			return nil, a.ioError("", 0, err)
		case string(m[:]) != arMagic:
			return nil, a.errorf("", 0, ErrFormat, "not a Debian package: bad ar magic %q, want %q", m[:], arMagic)
		}
		a.magic = true
	}
	if err := a.skipRest(); err != nil {
		return nil, err
	}
	hoff := a.off
	n, err := io.ReadFull(a.r, a.hdr[:])
	a.off += int64(n)
	switch {
	case err == io.EOF:
		return nil, io.EOF
	case err == io.ErrUnexpectedEOF:
		return nil, a.errorf("", hoff, ErrFormat, "truncated ar member header (%d of %d bytes): %w", n, arHeaderSize, io.ErrUnexpectedEOF)
	case err != nil:
		return nil, a.ioError("", hoff, err)
	}
	h := &a.cur
	*h = arHeader{Name: arName(a.hdr[0:16]), HeaderOffset: hoff, Offset: a.off}
	if string(a.hdr[58:60]) != "`\n" {
		return nil, a.errorf(printable(h.Name), hoff, ErrFormat, "bad ar header terminator %q, want %q", a.hdr[58:60], "`\n")
	}
	size, ok := arSize(a.hdr[48:58])
	if !ok {
		return nil, a.errorf(printable(h.Name), hoff, ErrFormat, "ar size field %q is not a decimal number", a.hdr[48:58])
	}
	h.Size = size
	if a.size >= 0 && h.Offset+size > a.size {
		return nil, a.errorf(printable(h.Name), hoff, ErrFormat, "member of %d bytes extends past the end of the file (%d bytes): truncated or corrupt", size, a.size)
	}
	a.remain, a.pad, a.rerr = size, size&1, nil
	return h, nil
}

// skipRest skips what is left of the current member and its padding.
func (a *arReader) skipRest() error {
	if a.rerr != nil {
		return a.rerr
	}
	remain, n := a.remain, a.remain+a.pad
	if n == 0 {
		return nil
	}
	var skipped int64
	var err error
	if a.seeker != nil {
		// next checked that the member is inside the file; only the
		// padding byte may be missing at the very end.
		skipped = min(n, a.size-a.off)
		_, err = a.seeker.Seek(skipped, io.SeekCurrent)
	} else {
		skipped, err = io.CopyN(io.Discard, a.r, n)
	}
	a.off += skipped
	a.remain, a.pad = 0, 0
	switch {
	case err != nil && err != io.EOF:
		return a.ioError(printable(a.cur.Name), a.cur.Offset, err)
	case skipped < remain:
		return a.errorf(printable(a.cur.Name), a.cur.Offset, ErrFormat,
			"truncated member: %d of %d bytes: %w", a.cur.Size-remain+skipped, a.cur.Size, io.ErrUnexpectedEOF)
	}
	// A missing final padding byte carries no data: accept it (the next
	// header read sees the end of the file).
	return nil
}

// Read reads from the current member; io.EOF at its end.
func (a *arReader) Read(p []byte) (int, error) {
	if a.rerr != nil {
		return 0, a.rerr
	}
	if a.remain == 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > a.remain {
		p = p[:a.remain]
	}
	n, err := a.r.Read(p)
	a.remain -= int64(n)
	a.off += int64(n)
	if err == io.EOF {
		if a.remain > 0 {
			a.rerr = a.errorf(printable(a.cur.Name), a.cur.Offset, ErrFormat,
				"truncated member: %d of %d bytes: %w", a.cur.Size-a.remain, a.cur.Size, io.ErrUnexpectedEOF)
			return n, a.rerr
		}
		err = nil
	}
	if err != nil {
		a.rerr = a.ioError(printable(a.cur.Name), a.cur.Offset, err)
		return n, a.rerr
	}
	if a.remain == 0 && n == 0 {
		return 0, io.EOF
	}
	return n, nil
}

// arName normalises a name field as dpkg does: trailing blanks, then one
// GNU-style trailing '/', removed; a NUL ends the name (dpkg compares names
// with strncmp).
func arName(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	b = bytes.TrimRight(b, " ")
	b = bytes.TrimSuffix(b, []byte("/"))
	return string(b)
}

// arSize parses the size field as dpkg does (leading and trailing blanks,
// decimal digits), except that garbage after the digits is an error instead
// of being ignored. A blank field is 0, as in dpkg.
func arSize(b []byte) (int64, bool) {
	b = bytes.Trim(b, " ")
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0') // 10 digits at most: no overflow
	}
	return n, true
}

// printable quotes a member name for messages when it has odd bytes.
func printable(name string) string {
	for _, c := range []byte(name) {
		if c < ' ' || c > '~' {
			return fmt.Sprintf("%q", name)
		}
	}
	return name
}
