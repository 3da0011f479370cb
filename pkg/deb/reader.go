package deb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// MemberKind tells the control member from the data member.
type MemberKind int

// Member kinds.
const (
	MemberControl MemberKind = iota + 1 // control.tar[.*]
	MemberData                          // data.tar[.*]
)

func (k MemberKind) String() string {
	switch k {
	case MemberControl:
		return "control"
	case MemberData:
		return "data"
	}
	return fmt.Sprintf("MemberKind(%d)", int(k))
}

// Member is the control or data member of a .deb.
type Member struct {
	Name        string // "control.tar.xz", without a GNU-style trailing '/'
	Kind        MemberKind
	Compression string // "none", "gzip", "xz", "zstd", "bzip2" or "lzma"
	Size        int64  // bytes in the .deb (compressed)
	Offset      int64  // offset of the member's data in the .deb
}

// Reader reads the members of a .deb in the order deb(5) prescribes. It is
// shaped like archive/tar.Reader: Next returns the control member, then the
// data member, then io.EOF; Read reads the current member's raw bytes and
// Open its decompressed contents; errors are sticky.
//
// Next checks what dpkg-deb checks: the ar magic, debian-binary first with
// a 2.x version, members starting with '_' skipped, control.tar before
// data.tar, one control member, known compressions, no empty members.
// Members after data.tar are never read, as in dpkg, but a second data or
// control member there is an error (see afterData).
type Reader struct {
	ar     *arReader
	name   string
	state  int
	format string
	cur    *Member
	dec    io.Closer // decompressor opened on cur
	err    error
}

const (
	stateStart = iota
	stateControl
	stateData
	stateDone
)

// NewReader reads a .deb from r; name is used in errors. If r is an
// io.Seeker (an *os.File), members are skipped by seeking and sizes are
// checked against the file size before anything is read.
func NewReader(r io.Reader, name string) *Reader {
	return &Reader{ar: newArReader(r, name), name: name}
}

// Format is the content of debian-binary without its newline ("2.0"),
// once Next has returned the control member.
func (r *Reader) Format() string { return r.format }

func (r *Reader) errorf(member string, off int64, sentinel error, format string, args ...any) error {
	return r.ar.errorf(member, off, sentinel, format, args...)
}

// Next advances to the next member: the control member, then the data
// member, then io.EOF. It closes what Open returned for the previous one.
func (r *Reader) Next() (*Member, error) {
	if r.dec != nil {
		r.dec.Close()
		r.dec = nil
	}
	r.cur = nil
	if r.err != nil {
		return nil, r.err
	}
	m, err := r.next()
	if err != nil {
		r.err = err
		return nil, err
	}
	r.cur = m
	return m, nil
}

func (r *Reader) next() (*Member, error) {
	switch r.state {
	case stateStart:
		if err := r.readBinary(); err != nil {
			return nil, err
		}
		return r.member("control.tar", stateControl)
	case stateControl:
		return r.member("data.tar", stateData)
	case stateData:
		r.state = stateDone
		return nil, r.afterData()
	default:
		return nil, io.EOF
	}
}

// afterData looks at the members after data.tar. dpkg never reads them,
// and neither does debseal, with one exception: a second data.tar or
// control.tar is refused. dpkg-deb never builds one, and an archive whose
// contents depend on which of two data members a tool reads is built to
// show one thing to a scanner and install another. Anything else after
// data.tar, even truncated, is ignored as dpkg ignores it.
func (r *Reader) afterData() error {
	for {
		h, err := r.ar.Next()
		if err != nil {
			return io.EOF
		}
		if prefix, _, ok := splitMember(h.Name); ok && (prefix == "data.tar" || prefix == "control.tar") {
			return r.errorf(printable(h.Name), h.HeaderOffset, ErrFormat,
				"duplicate %s member after data.tar (dpkg would ignore it; refused, since tools may disagree on which one counts)", prefix)
		}
	}
}

// readBinary reads and checks the debian-binary member.
func (r *Reader) readBinary() error {
	h, err := r.ar.Next()
	if err == io.EOF {
		return r.errorf("", r.ar.off, ErrFormat, "not a Debian package: empty ar archive")
	}
	if err != nil {
		return err
	}
	if h.Name != "debian-binary" {
		return r.errorf(printable(h.Name), h.HeaderOffset, ErrFormat, "not a Debian binary package: the first member must be debian-binary")
	}
	// dpkg reads any size; a real one has 4 bytes.
	if h.Size > 1024 {
		return r.errorf(h.Name, h.HeaderOffset, ErrFormat, "%d bytes is too large for a format version", h.Size)
	}
	b := make([]byte, h.Size)
	if _, err := io.ReadFull(r.ar, b); err != nil {
		return err
	}
	line, _, ok := bytes.Cut(b, []byte("\n"))
	if !ok {
		return r.errorf(h.Name, h.HeaderOffset, ErrFormat, "no newline in format version %q", b)
	}
	major, minor, ok := strings.Cut(string(line), ".")
	if _, err := strconv.ParseUint(major, 10, 31); err != nil || !ok {
		return r.errorf(h.Name, h.HeaderOffset, ErrFormat, "invalid format version %q", line)
	}
	if _, err := strconv.ParseUint(minor, 10, 31); err != nil {
		return r.errorf(h.Name, h.HeaderOffset, ErrFormat, "invalid format version %q", line)
	}
	if n, _ := strconv.Atoi(major); n != 2 {
		return r.errorf(h.Name, h.HeaderOffset, ErrUnsupported, "format version %s (only 2.x is supported)", line)
	}
	r.format = string(line)
	return nil
}

// member finds the next member, which must be want ("control.tar" or
// "data.tar"), skipping '_' members.
func (r *Reader) member(want string, next int) (*Member, error) {
	for {
		h, err := r.ar.Next()
		if err == io.EOF {
			return nil, r.errorf("", r.ar.off, ErrFormat, "missing %s member", want)
		}
		if err != nil {
			return nil, err
		}
		if strings.HasPrefix(h.Name, "_") {
			continue // dpkg: "noncritical", skipped
		}
		prefix, suffix, ok := splitMember(h.Name)
		switch {
		case ok && prefix == "control.tar" && want == "data.tar":
			return nil, r.errorf(printable(h.Name), h.HeaderOffset, ErrFormat, "second control member")
		case !ok || prefix != want:
			return nil, r.errorf(printable(h.Name), h.HeaderOffset, ErrFormat, "unexpected member before %s (deb(5) order is debian-binary, control.tar, data.tar)", want)
		}
		c, known := codecs[suffix]
		if !known || want == "control.tar" && !c.control {
			return nil, r.errorf(printable(h.Name), h.HeaderOffset, ErrUnsupported, "unknown compression %q", suffix)
		}
		if h.Size == 0 {
			return nil, r.errorf(h.Name, h.HeaderOffset, ErrFormat, "empty member")
		}
		r.state = next
		kind := MemberControl
		if want == "data.tar" {
			kind = MemberData
		}
		return &Member{Name: h.Name, Kind: kind, Compression: c.name, Size: h.Size, Offset: h.Offset}, nil
	}
}

// Read reads the raw (compressed) bytes of the current member.
func (r *Reader) Read(p []byte) (int, error) {
	if r.cur == nil {
		if r.err != nil {
			return 0, r.err
		}
		return 0, errors.New("deb: Read before Next")
	}
	return r.ar.Read(p)
}

// Open returns the decompressed contents of the current member, bounded by
// opt's limits. Close it (or call Next, which does) before reading on.
func (r *Reader) Open(opt Options) (io.ReadCloser, error) {
	m := r.cur
	if m == nil {
		return nil, errors.New("deb: Open without a current member")
	}
	if r.dec != nil {
		return nil, errors.New("deb: member already open")
	}
	_, suffix, _ := splitMember(m.Name)
	c := codecs[suffix]
	limit, what := opt.maxData(), "the data size limit (Options.MaxDataSize)"
	if m.Kind == MemberControl {
		limit, what = opt.maxControl(), "the control size limit (Options.MaxControlSize)"
		if limit >= 0 && m.Size > limit {
			return nil, &Error{File: r.name, Member: m.Name, Offset: m.Offset,
				Err: fmt.Errorf("%w: control member of %d bytes exceeds %s of %d bytes", ErrLimit, m.Size, what, limit)}
		}
	}
	limitDesc := func() string { return fmt.Sprintf("decompressed size exceeds %s of %d bytes", what, limit) }
	if ratio := opt.maxExpansion(); ratio >= 0 {
		bomb := max(MinExpansionLimit, satMul(ratio, m.Size))
		if limit < 0 || bomb < limit {
			limit = bomb
			limitDesc = func() string {
				return fmt.Sprintf("decompressed size exceeds %d times the compressed size of %d bytes, the expansion debseal allows: a decompression bomb?", ratio, m.Size)
			}
		}
	}
	limitErr := func() error { return fmt.Errorf("%w: %s", ErrLimit, limitDesc()) }
	dec, err := c.open(bufio.NewReaderSize(r.ar, 64<<10), decodeParams{workers: opt.concurrency(), limit: limit, limitErr: limitErr})
	if err != nil {
		return nil, r.memberError(m, err, c.name)
	}
	mr := &memberReader{r: dec, closers: []io.Closer{dec}, deb: r, m: m, codec: c.name}
	if m.Kind == MemberData && c.name != "xz" && c.name != "none" {
		// xz has its own goroutines; the others get one that reads ahead.
		ra := newReadahead(dec)
		mr.r = ra
		mr.closers = []io.Closer{ra, dec}
	}
	if limit >= 0 {
		mr.r = &limitReader{r: mr.r, max: limit, err: limitErr}
	}
	r.dec = mr
	return mr, nil
}

// memberError puts a decompressor's error in context.
func (r *Reader) memberError(m *Member, err error, codec string) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		return e // already in context (from the ar layer); drop what a decompressor added
	case errors.Is(err, ErrFormat), errors.Is(err, ErrLimit), errors.Is(err, ErrUnsupported):
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		err = fmt.Errorf("%w: truncated %s data: %w", ErrFormat, codec, io.ErrUnexpectedEOF)
	default:
		err = fmt.Errorf("%w: %s: %w", ErrFormat, codec, err)
	}
	return &Error{File: r.name, Member: m.Name, Offset: m.Offset, Err: err}
}

// memberReader is what Open returns.
type memberReader struct {
	r       io.Reader
	closers []io.Closer
	deb     *Reader
	m       *Member
	codec   string
	err     error
	closed  bool
}

func (mr *memberReader) Read(p []byte) (int, error) {
	if mr.err != nil {
		return 0, mr.err
	}
	n, err := mr.r.Read(p)
	if err != nil && err != io.EOF {
		mr.err = mr.deb.memberError(mr.m, err, mr.codec)
		return n, mr.err
	}
	return n, err
}

func (mr *memberReader) Close() error {
	if mr.closed {
		return nil
	}
	mr.closed = true
	if mr.err == nil {
		mr.err = errors.New("deb: read after Close")
	}
	var errs []error
	for _, c := range mr.closers {
		errs = append(errs, c.Close())
	}
	if mr.deb.dec == mr {
		mr.deb.dec = nil
	}
	return errors.Join(errs...)
}

// satMul is a*b for non-negative values, saturating instead of wrapping.
func satMul(a, b int64) int64 {
	if a == 0 || b == 0 {
		return 0
	}
	if a > (1<<63-1)/b {
		return 1<<63 - 1
	}
	return a * b
}
