package deb

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/debseal/debseal/pkg/deb822"
	"github.com/debseal/debseal/pkg/debfmt"
)

// ReadInfo reads the control member of the .deb in r; name is used in
// errors. It stops after the data member's header: the data member is never
// decompressed (nor read, when r is seekable).
func ReadInfo(r io.Reader, name string) (*Info, error) {
	return ReadInfoOptions(r, name, Options{})
}

// ReadInfoFile is ReadInfo on a file.
func ReadInfoFile(path string) (*Info, error) {
	f, err := OpenFile(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadInfo(f, path)
}

// ReadInfoOptions is ReadInfo with explicit limits (Options.Hashes and
// Concurrency do not matter here).
func ReadInfoOptions(r io.Reader, name string, opt Options) (*Info, error) {
	dr := NewReader(r, name)
	info, err := readInfo(dr, opt)
	if err != nil {
		return nil, err
	}
	if _, err := dr.Next(); err != nil {
		return nil, err
	}
	info.DataMember, info.DataSize = dr.cur.Name, dr.cur.Size
	return info, nil
}

// readInfo reads the control member; dr is left on it.
func readInfo(dr *Reader, opt Options) (*Info, error) {
	m, err := dr.Next()
	if err != nil {
		return nil, err
	}
	info := &Info{Format: dr.Format(), ControlMember: m.Name, ControlSize: m.Size, Scripts: map[string][]byte{}}
	rc, err := dr.Open(opt)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	files, err := readControlTar(rc, dr, m, info, opt)
	if err != nil {
		return nil, err
	}
	// Verify the rest of the compressed stream (gzip's CRC comes after
	// the tar's end) like dpkg-deb, which decompresses all of it.
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, err
	}
	if err := info.parse(files, dr.name, m); err != nil {
		return nil, err
	}
	return info, nil
}

// controlFiles are the control files Info interprets, by name.
var controlFiles = map[string]bool{
	"control": true, "md5sums": true, "conffiles": true, "triggers": true,
	"preinst": true, "postinst": true, "prerm": true, "postrm": true, "config": true,
}

// readControlTar lists control.tar into info and returns the contents of
// the control files Info interprets.
func readControlTar(r io.Reader, dr *Reader, m *Member, info *Info, opt Options) (map[string][]byte, error) {
	fail := func(path string, sentinel error, format string, args ...any) error {
		return &Error{File: dr.name, Member: m.Name, Offset: m.Offset, Path: path,
			Err: fmt.Errorf("%w: "+format, append([]any{sentinel}, args...)...)}
	}
	files := map[string][]byte{}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return files, nil
		}
		if err != nil {
			return nil, tarError(dr, m, "", err)
		}
		typ, err := entryType(hdr)
		if err != nil {
			return nil, wrapEntryError(dr, m, hdr.Name, err)
		}
		name, err := controlName(hdr.Name)
		if err != nil {
			return nil, wrapEntryError(dr, m, hdr.Name, err)
		}
		if name == "" {
			continue // the "./" entry
		}
		info.ControlFiles = append(info.ControlFiles, name)
		ce := ControlEntry{Name: name, Type: typ, Mode: fileMode(hdr.Mode), Size: hdr.Size}
		if typ == TypeHardlink || typ == TypeSymlink {
			ce.Size = 0
		}
		if controlFiles[name] {
			if typ != TypeFile {
				return nil, fail(hdr.Name, ErrUnsupported, "control file is a %s, not a regular file", typ)
			}
			if _, dup := files[name]; dup {
				return nil, fail(hdr.Name, ErrFormat, "duplicate control file")
			}
			if max := opt.maxControl(); max >= 0 && hdr.Size > max {
				return nil, fail(hdr.Name, ErrLimit, "control file of %d bytes exceeds the control size limit (Options.MaxControlSize) of %d bytes", hdr.Size, max)
			}
			b := make([]byte, hdr.Size)
			if _, err := io.ReadFull(tr, b); err != nil {
				return nil, tarError(dr, m, hdr.Name, err)
			}
			files[name] = b
			ce.Lines = bytes.Count(b, []byte("\n"))
			ce.Interpreter = interpreter(b)
		} else if typ == TypeFile {
			lc := &lineCounter{}
			if _, err := io.Copy(lc, tr); err != nil {
				return nil, tarError(dr, m, hdr.Name, err)
			}
			ce.Lines, ce.Interpreter = lc.lines, interpreter(lc.first)
		}
		info.ControlEntries = append(info.ControlEntries, ce)
	}
}

// controlName turns "./postinst" into "postinst"; "" for the root entry.
func controlName(raw string) (string, error) {
	if err := checkTarPath(raw); err != nil {
		return "", err
	}
	p, err := debfmt.CleanPath(raw)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrFormat, err)
	}
	return strings.TrimPrefix(p, "/"), nil
}

// interpreter returns the "#!" line of a script without "#!", as dpkg-deb
// --info shows it.
func interpreter(b []byte) string {
	if !bytes.HasPrefix(b, []byte("#!")) {
		return ""
	}
	line, _, _ := bytes.Cut(b[2:], []byte("\n"))
	return strings.TrimSpace(string(line))
}

// lineCounter counts newlines and keeps the start of the first line.
type lineCounter struct {
	lines int
	first []byte
}

func (l *lineCounter) Write(p []byte) (int, error) {
	if len(l.first) < 256 {
		l.first = append(l.first, p[:min(len(p), 256-len(l.first))]...)
	}
	l.lines += bytes.Count(p, []byte("\n"))
	return len(p), nil
}

// parse interprets the control files.
func (info *Info) parse(files map[string][]byte, file string, m *Member) error {
	fail := func(path string, err error) error {
		return &Error{File: file, Member: m.Name, Offset: m.Offset, Path: path, Err: err}
	}
	control, ok := files["control"]
	if !ok {
		return fail("", fmt.Errorf("%w: no control file", ErrFormat))
	}
	pr := deb822.NewReader(bytes.NewReader(control), "control")
	p, err := pr.Next()
	if err == io.EOF {
		return fail("control", fmt.Errorf("%w: empty control file", ErrFormat))
	}
	if err != nil {
		return fail("control", fmt.Errorf("%w: %w", ErrFormat, err))
	}
	if _, err := pr.Next(); err != io.EOF {
		if err == nil {
			err = errors.New("more than one paragraph")
		}
		return fail("control", fmt.Errorf("%w: %w", ErrFormat, err))
	}
	info.Control = p
	info.Package = p.Value("Package")
	info.Version = p.Value("Version")
	info.Architecture = p.Value("Architecture")
	info.MultiArch = p.Value("Multi-Arch")
	if info.MultiArch == "" {
		info.MultiArch = "no" // dpkg's default, what dpkg-deb -f prints
	}
	if info.Package == "" {
		return fail("control", fmt.Errorf("%w: no Package field", ErrFormat))
	}
	if b, ok := files["md5sums"]; ok {
		sums, bad, err := debfmt.ParseMD5Sums(bytes.NewReader(b), "md5sums")
		if err != nil {
			return fail("md5sums", fmt.Errorf("%w: %w", ErrFormat, err))
		}
		info.MD5Sums = nonNil(sums)
		info.Warnings = append(info.Warnings, bad...)
	}
	if b, ok := files["conffiles"]; ok {
		cf, bad, err := debfmt.ParseConffiles(bytes.NewReader(b), "conffiles")
		if err != nil {
			return fail("conffiles", fmt.Errorf("%w: %w", ErrFormat, err))
		}
		info.Conffiles = nonNil(cf)
		info.Warnings = append(info.Warnings, bad...)
	}
	if b, ok := files["triggers"]; ok {
		ts, bad, err := debfmt.ParseTriggers(bytes.NewReader(b), "triggers")
		if err != nil {
			return fail("triggers", fmt.Errorf("%w: %w", ErrFormat, err))
		}
		info.Triggers = nonNil(ts)
		info.Warnings = append(info.Warnings, bad...)
	}
	for _, s := range scriptNames {
		if b, ok := files[s]; ok {
			info.Scripts[s] = b
		}
	}
	return nil
}

func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
