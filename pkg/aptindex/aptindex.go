// Package aptindex reads apt's downloaded package indices (the
// *_Packages files under /var/lib/apt/lists) for one purpose: to tell
// whether a .deb is the one a signed repository published, by comparing
// its hash with the index entry for the same package, version and
// architecture.
//
// It owns the index format (deb822 paragraphs; only Package, Version,
// Architecture, Filename and the hash fields are read), the compressions
// apt stores indices in (none, gzip, lz4 — apt's choice with
// Acquire::GzipIndexes on Docker images —, xz and zstd; bzip2 and lzma
// indices are not read: apt itself never keeps them that way) and a small
// sorted cache so that a lookup inside a dpkg hook does not parse 50 MB of
// index.
//
// It does not check the indices' own signatures: apt verified them against
// the signed InRelease files when it downloaded them, and apt trusts the
// same files when it checks the .debs it installs. Whoever can rewrite
// /var/lib/apt/lists can fool apt too.
package aptindex

import (
	"bufio"
	"bytes"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"strings"
	"unicode"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/pierrec/lz4/v4"
	"github.com/ulikunitz/xz"
)

// Algo is a hash algorithm an index may carry for a .deb.
type Algo uint8

// Algorithms, weakest first: Strongest picks the last one present.
const (
	MD5 Algo = iota + 1
	SHA1
	SHA256
)

var algoNames = map[Algo]string{MD5: "MD5sum", SHA1: "SHA1", SHA256: "SHA256"}

// String is the index field name of the algorithm.
func (a Algo) String() string {
	if n, ok := algoNames[a]; ok {
		return n
	}
	return fmt.Sprintf("Algo(%d)", a)
}

// New returns a hash.Hash for the algorithm.
func (a Algo) New() hash.Hash {
	switch a {
	case MD5:
		return md5.New()
	case SHA1:
		return sha1.New()
	default:
		return sha256.New()
	}
}

func (a Algo) size() int {
	switch a {
	case MD5:
		return md5.Size
	case SHA1:
		return sha1.Size
	case SHA256:
		return sha256.Size
	}
	return 0
}

// parseAlgo maps an index field name (or String's output) to an Algo.
func parseAlgo(name string) (Algo, bool) {
	switch strings.ToLower(name) {
	case "md5sum", "md5":
		return MD5, true
	case "sha1":
		return SHA1, true
	case "sha256":
		return SHA256, true
	}
	return 0, false
}

// Hash is one digest of a .deb.
type Hash struct {
	Algo Algo
	Sum  []byte
}

func (h Hash) String() string { return h.Algo.String() + ":" + hex.EncodeToString(h.Sum) }

// Entry is what one index paragraph says about one .deb. Hash is the
// strongest hash the paragraph carries (SHA256, else SHA1, else MD5sum):
// third-party repositories differ in which they publish, and a weaker one
// must not be chosen when a stronger one is there.
type Entry struct {
	Package, Version, Arch string
	Filename               string
	Hash                   Hash
}

// Key is how entries are looked up.
func (e Entry) Key() string { return key(e.Package, e.Version, e.Arch) }

func key(pkg, version, arch string) string { return pkg + " " + version + " " + arch }

// ErrSyntax is matched by every parse error.
var ErrSyntax = errors.New("aptindex: syntax error")

// SyntaxError is a malformed index line.
type SyntaxError struct {
	File string
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	return fmt.Sprintf("aptindex: %s:%d: %s", e.File, e.Line, e.Msg)
}

// Is makes errors.Is(err, ErrSyntax) true.
func (e *SyntaxError) Is(target error) bool { return target == ErrSyntax }

// maxLine bounds one index line (Description fields can be long; 1 MiB is
// far beyond any real one).
const maxLine = 1 << 20

// parse calls fn for every paragraph of an index that names a package,
// version, architecture and at least one well-formed hash. Paragraphs
// without them are skipped (an index may describe things that are not
// .debs, and an entry we cannot use simply verifies nothing); a malformed
// line (no colon outside a continuation, a hash that is not hex of the
// right length, an overlong line) is an error, because a damaged index
// must not be half-trusted.
func parse(r io.Reader, name string, fn func(Entry) error) error {
	br := bufio.NewReaderSize(r, 256<<10)
	var (
		e      Entry
		hashes [4][]byte
		seen   bool
		line   int
	)
	flush := func() error {
		defer func() { e, hashes, seen = Entry{}, [4][]byte{}, false }()
		if !seen || e.Package == "" || e.Version == "" || e.Arch == "" {
			return nil
		}
		for a := SHA256; a >= MD5; a-- {
			if hashes[a] != nil {
				e.Hash = Hash{Algo: a, Sum: hashes[a]}
				return fn(e)
			}
		}
		return nil
	}
	for {
		b, err := br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			// Only long continuation lines get here; keep reading it.
			n := len(b)
			for err == bufio.ErrBufferFull {
				b, err = br.ReadSlice('\n')
				n += len(b)
				if n > maxLine {
					return &SyntaxError{File: name, Line: line + 1, Msg: "line too long"}
				}
			}
			line++
			if err != nil && err != io.EOF {
				return fmt.Errorf("aptindex: read %s: %w", name, err)
			}
			if err == io.EOF {
				return flush()
			}
			continue
		}
		if len(b) == 0 && err == io.EOF {
			return flush()
		}
		if err != nil && err != io.EOF {
			return fmt.Errorf("aptindex: read %s: %w", name, err)
		}
		line++
		s := bytes.TrimRight(b, "\r\n")
		switch {
		case len(bytes.TrimSpace(s)) == 0:
			if ferr := flush(); ferr != nil {
				return ferr
			}
		case s[0] == ' ' || s[0] == '\t':
			if !seen {
				return &SyntaxError{File: name, Line: line, Msg: "continuation line outside a paragraph"}
			}
		case s[0] == '#':
			// deb822 comments; apt's indices have none, dpkg allows them
		default:
			seen = true
			i := bytes.IndexByte(s, ':')
			if i <= 0 {
				return &SyntaxError{File: name, Line: line, Msg: fmt.Sprintf("line %q is not \"Field: value\"", truncate(s))}
			}
			field, value := s[:i], bytes.TrimSpace(s[i+1:])
			switch {
			case equalFold(field, "Package"):
				e.Package = string(value)
			case equalFold(field, "Version"):
				e.Version = string(value)
			case equalFold(field, "Architecture"):
				e.Arch = string(value)
			case equalFold(field, "Filename"):
				e.Filename = string(value)
			default:
				a, ok := parseAlgo(string(field))
				if !ok {
					break
				}
				sum := make([]byte, a.size())
				if len(value) != 2*len(sum) {
					return &SyntaxError{File: name, Line: line, Msg: fmt.Sprintf("%s %q: want %d hex digits", field, truncate(value), 2*len(sum))}
				}
				if _, herr := hex.Decode(sum, value); herr != nil {
					return &SyntaxError{File: name, Line: line, Msg: fmt.Sprintf("%s %q is not hex", field, truncate(value))}
				}
				hashes[a] = sum
			}
			if hasSpace(e.Package) || hasSpace(e.Version) || hasSpace(e.Arch) {
				return &SyntaxError{File: name, Line: line, Msg: "blank inside a package name, version or architecture"}
			}
		}
		if err == io.EOF {
			return flush()
		}
	}
}

// hasSpace: names, versions and architectures never contain blanks, and
// the cache's line format relies on it.
func hasSpace(s string) bool { return strings.IndexFunc(s, unicode.IsSpace) >= 0 }

func equalFold(b []byte, s string) bool {
	return len(b) == len(s) && strings.EqualFold(string(b), s)
}

func truncate(b []byte) string {
	if len(b) > 60 {
		return string(b[:60]) + "…"
	}
	return string(b)
}

// suffixes are the compressions openFile reads, keyed by file suffix.
var suffixes = []string{"", ".gz", ".lz4", ".xz", ".zst"}

// isIndexName reports whether a file name in apt's lists directory is a
// binary package index openFile can read ("…_Packages" plus one of
// suffixes).
func isIndexName(name string) bool {
	for _, s := range suffixes {
		if strings.HasSuffix(name, "_Packages"+s) {
			return true
		}
	}
	return false
}

// openFile opens an index, decompressing it by its suffix.
func openFile(path string) (io.ReadCloser, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("aptindex: %w", err)
	}
	r, err := decompress(f, path)
	if err != nil {
		f.Close()
		return nil, err
	}
	fr := &fileReader{Reader: r, f: f}
	if c, ok := r.(io.Closer); ok {
		fr.dec = c // zstd's decoder goroutines end with Close
	}
	return fr, nil
}

type fileReader struct {
	io.Reader
	f   *os.File
	dec io.Closer
}

func (r *fileReader) Close() error {
	if r.dec != nil {
		r.dec.Close()
	}
	return r.f.Close()
}

func decompress(f *os.File, path string) (io.Reader, error) {
	br := bufio.NewReaderSize(f, 256<<10)
	switch {
	case strings.HasSuffix(path, ".gz"):
		z, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("aptindex: %s: %w", path, err)
		}
		return z, nil
	case strings.HasSuffix(path, ".lz4"):
		return lz4.NewReader(br), nil
	case strings.HasSuffix(path, ".xz"):
		z, err := xz.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("aptindex: %s: %w", path, err)
		}
		return z, nil
	case strings.HasSuffix(path, ".zst"):
		z, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(1<<27))
		if err != nil {
			return nil, fmt.Errorf("aptindex: %s: %w", path, err)
		}
		return z.IOReadCloser(), nil
	}
	return br, nil
}

// parseFile parses one index file.
func parseFile(path string, fn func(Entry) error) error {
	r, err := openFile(path)
	if err != nil {
		return err
	}
	defer r.Close()
	return parse(r, path, fn)
}
