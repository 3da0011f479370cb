package deb

import (
	"archive/tar"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"strings"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/verity"
)

// WalkData calls fn for every entry of the data member of the .deb in r, in
// archive order, reading in constant memory. The control member is skipped
// without being decompressed. fn must not keep e's pointer past the call if
// it wants constant memory; an error from fn stops the walk and is returned
// as is.
func WalkData(r io.Reader, name string, opt Options, fn func(e *Entry) error) error {
	dr := NewReader(r, name)
	if _, err := dr.Next(); err != nil {
		return err
	}
	_, err := walkData(dr, opt, fn)
	return err
}

// WalkDataFile is WalkData on a file.
func WalkDataFile(path string, opt Options, fn func(e *Entry) error) error {
	f, err := OpenFile(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return WalkData(f, path, opt, fn)
}

// Walk reads the control member into an Info, then walks the data member
// like WalkData, in one pass over r (for inputs that cannot be read twice).
func Walk(r io.Reader, name string, opt Options, fn func(e *Entry) error) (*Info, error) {
	dr := NewReader(r, name)
	info, err := readInfo(dr, opt)
	if err != nil {
		return nil, err
	}
	m, err := walkData(dr, opt, fn)
	if err != nil {
		return nil, err
	}
	info.DataMember, info.DataSize = m.Name, m.Size
	return info, nil
}

// walkFile is Walk on a file.
func walkFile(path string, opt Options, fn func(e *Entry) error) (*Info, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Walk(f, path, opt, fn)
}

// walkData walks the data member; dr is on the control member.
func walkData(dr *Reader, opt Options, fn func(*Entry) error) (*Member, error) {
	m, err := dr.Next()
	if err != nil {
		return nil, err
	}
	rc, err := dr.Open(opt)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	var sha, md hash.Hash
	var w io.Writer
	var vh *verity.Hasher
	if opt.Hashes {
		sha, md, vh = sha256.New(), md5.New(), verity.New()
		w = io.MultiWriter(sha, md, vh)
	}
	buf := make([]byte, 128<<10)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, tarError(dr, m, "", err)
		}
		e, err := newEntry(hdr)
		if err != nil {
			return nil, wrapEntryError(dr, m, hdr.Name, err)
		}
		if opt.Hashes && e.Type == TypeFile {
			sha.Reset()
			md.Reset()
			vh.Reset()
			n, err := io.CopyBuffer(w, tr, buf)
			if err != nil {
				return nil, tarError(dr, m, hdr.Name, err)
			}
			if n != e.Size {
				return nil, wrapEntryError(dr, m, hdr.Name, fmt.Errorf("%w: read %d of %d bytes", ErrFormat, n, e.Size))
			}
			sha.Sum(e.SHA256[:0])
			md.Sum(e.MD5[:0])
			e.Verity = vh.Sum()
			e.Hashed = true
		}
		if err := fn(e); err != nil {
			return nil, err
		}
	}
	// dpkg-deb decompresses the whole member: so do we, which verifies
	// the trailing checks (xz block checks and index, gzip CRC) and
	// catches garbage behind the tar's end.
	if _, err := io.CopyBuffer(io.Discard, rc, buf); err != nil {
		return nil, err
	}
	if _, err := dr.Next(); err != io.EOF {
		return nil, err // a second data or control member
	}
	return m, nil
}

// newEntry converts a tar header, refusing what dpkg refuses.
func newEntry(hdr *tar.Header) (*Entry, error) {
	typ, err := entryType(hdr)
	if err != nil {
		return nil, err
	}
	if err := checkTarPath(hdr.Name); err != nil {
		return nil, err
	}
	p, err := debfmt.CleanPath(hdr.Name)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	e := &Entry{
		Path:     p,
		Type:     typ,
		Typeflag: hdr.Typeflag,
		Mode:     fileMode(hdr.Mode),
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		Uname:    hdr.Uname,
		Gname:    hdr.Gname,
		Size:     hdr.Size,
		ModTime:  hdr.ModTime,
	}
	switch typ {
	case TypeSymlink:
		if hdr.Linkname == "" {
			return nil, fmt.Errorf("%w: symlink without a target", ErrFormat)
		}
		e.Linkname, e.Size = hdr.Linkname, 0
	case TypeHardlink:
		if err := checkTarPath(hdr.Linkname); err != nil {
			return nil, fmt.Errorf("hard link target %q: %w", hdr.Linkname, err)
		}
		t, err := debfmt.CleanPath(hdr.Linkname)
		if err != nil || t == "/" {
			return nil, fmt.Errorf("%w: bad hard link target %q", ErrFormat, hdr.Linkname)
		}
		e.Linkname, e.Size = t, 0
	case TypeDir:
		e.Size = 0
	case TypeOther:
		e.Devmajor, e.Devminor, e.Size = hdr.Devmajor, hdr.Devminor, 0
	}
	return e, nil
}

// entryType maps a tar type flag to an EntryType as dpkg's tar extractor
// (lib/dpkg/tarfn.c) does, refusing the types it refuses.
func entryType(hdr *tar.Header) (EntryType, error) {
	// archive/tar applies PAX records silently; dpkg refuses the
	// headers that carry them, so must we.
	if hdr.Typeflag == tar.TypeXGlobalHeader || len(hdr.PAXRecords) > 0 || hdr.Format == tar.FormatPAX {
		return 0, fmt.Errorf("%w: PAX extended header (dpkg does not support them)", ErrUnsupported)
	}
	switch hdr.Typeflag {
	case tar.TypeReg:
		if strings.HasSuffix(hdr.Name, "/") {
			return TypeDir, nil // pre-POSIX directories, as dpkg reads them
		}
		return TypeFile, nil
	case tar.TypeDir:
		return TypeDir, nil
	case tar.TypeSymlink:
		return TypeSymlink, nil
	case tar.TypeLink:
		return TypeHardlink, nil
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return TypeOther, nil
	case tar.TypeGNUSparse:
		return 0, fmt.Errorf("%w: GNU sparse file (dpkg does not support them)", ErrUnsupported)
	}
	return 0, fmt.Errorf("%w: tar entry type %q (dpkg does not support it)", ErrUnsupported, hdr.Typeflag)
}

// checkTarPath refuses names that could leave the root once extracted.
func checkTarPath(name string) error {
	if strings.HasPrefix(name, "/") {
		return fmt.Errorf("%w: %w: absolute path", ErrFormat, ErrInsecurePath)
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == ".." {
			return fmt.Errorf("%w: %w: path contains \"..\"", ErrFormat, ErrInsecurePath)
		}
	}
	return nil
}

// fileMode converts tar mode bits (permissions, setuid, setgid, sticky).
func fileMode(m int64) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	if m&0o4000 != 0 {
		mode |= fs.ModeSetuid
	}
	if m&0o2000 != 0 {
		mode |= fs.ModeSetgid
	}
	if m&0o1000 != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}

// tarError puts an error met while reading a tar member in context.
func tarError(dr *Reader, m *Member, path string, err error) error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	if errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("%w: truncated tar archive: %w", ErrFormat, err)
	} else {
		err = fmt.Errorf("%w: tar: %w", ErrFormat, err)
	}
	return &Error{File: dr.name, Member: m.Name, Offset: m.Offset, Path: path, Err: err}
}

func wrapEntryError(dr *Reader, m *Member, path string, err error) error {
	return &Error{File: dr.name, Member: m.Name, Offset: m.Offset, Path: path, Err: err}
}
