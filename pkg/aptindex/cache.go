package aptindex

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"unicode"

	"github.com/debseal/debseal/pkg/confined"
	"golang.org/x/sys/unix"
)

// Index answers "what hash did apt's indices publish for this package,
// version and architecture?". It is built from every index in a lists
// directory and kept as a sorted cache file, rebuilt when any index
// changes (size, mtime or the set of files): after each apt update the
// first lookup pays for parsing the indices (about a second for Debian's
// main archive), later lookups are a binary search.
type Index struct {
	data  []byte // sorted lines: "pkg version arch algo hex filename\n"
	unmap func()
	// Sources are the index files the cache was built from.
	Sources []string
	// Rebuilt is true when this Load parsed the indices.
	Rebuilt bool
}

const cacheMagic = "debseal-aptindex 1\n"

// Load returns the index of every *_Packages file in listsDir (apt's
// Dir::State::lists, ROOT/var/lib/apt/lists by default). cacheName, when
// not empty, is where the sorted cache lives within cacheRoot (reached
// through the root: pkg/confined): it is used when it matches the indices
// and rewritten otherwise (a write failure is not an error: the index is
// still returned). A missing lists directory gives an empty index.
func Load(listsDir, cacheRoot, cacheName string) (*Index, error) {
	sources, fp, err := fingerprint(listsDir)
	if err != nil {
		return nil, err
	}
	var cache *confined.Root
	if cacheName != "" {
		if cache, err = confined.Open(cacheRoot); err != nil {
			return nil, fmt.Errorf("aptindex: %w", err)
		}
		defer cache.Close()
		if b, unmap, err := mapFile(cache, cacheName); err == nil {
			if body, ok := bytes.CutPrefix(b, []byte(cacheMagic+fp+"\n")); ok {
				ix, err := fromSorted(body)
				if err == nil {
					ix.Sources, ix.unmap = sources, unmap
					return ix, nil
				}
			}
			unmap()
		}
	}
	var lines []string
	for _, src := range sources {
		err := parseFile(filepath.Join(listsDir, src), func(e Entry) error {
			lines = append(lines, cacheLine(e))
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Strings(lines)
	var body bytes.Buffer
	prev := ""
	for _, l := range lines {
		if l != prev {
			body.WriteString(l)
		}
		prev = l
	}
	ix, err := fromSorted(body.Bytes())
	if err != nil {
		return nil, err
	}
	ix.Sources, ix.Rebuilt = sources, true
	if cache != nil {
		// Not durable: a cache lost in a crash is rebuilt.
		cache.ReplaceFile(cacheName, append([]byte(cacheMagic+fp+"\n"), body.Bytes()...), 0o644)
	}
	return ix, nil
}

// Close releases the cache file's mapping.
func (ix *Index) Close() {
	if ix != nil && ix.unmap != nil {
		ix.unmap()
		ix.unmap, ix.data = nil, nil
	}
}

// mapFile maps a cache file read-only. Reading it instead cost 80 ms for
// Debian's main archive on the test machine (page faults on 11 MB), which
// a dpkg hook cannot afford; a lookup touches a few dozen pages.
func mapFile(r *confined.Root, name string) ([]byte, func(), error) {
	f, err := r.Open(name)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if st.Size() == 0 || st.Size() > 1<<31 {
		return nil, nil, errors.New("aptindex: cache: bad size")
	}
	b, err := unix.Mmap(int(f.Fd()), 0, int(st.Size()), unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return nil, nil, err
	}
	return b, func() { unix.Munmap(b) }, nil
}

// fingerprint lists the index files and describes them in one line per
// file: name, size and mtime.
func fingerprint(dir string) ([]string, string, error) {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, "", nil
	}
	if err != nil {
		return nil, "", fmt.Errorf("aptindex: %w", err)
	}
	var names []string
	var fp strings.Builder
	for _, e := range ents {
		if !e.Type().IsRegular() || !isIndexName(e.Name()) {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile (apt update running)
		}
		names = append(names, e.Name())
		fmt.Fprintf(&fp, "source %s %d %d\n", e.Name(), info.Size(), info.ModTime().UnixNano())
	}
	return names, fp.String(), nil
}

// cacheLine is one entry in the cache's line format. Fields never contain
// blanks (parse refuses them); a Filename with one (any Unicode space, as
// parseCacheLine splits with strings.Fields) is cut at it: it is only
// informative.
func cacheLine(e Entry) string {
	fn := e.Filename
	if i := strings.IndexFunc(fn, unicode.IsSpace); i >= 0 {
		fn = fn[:i]
	}
	if fn == "" {
		fn = "-"
	}
	return e.Package + " " + e.Version + " " + e.Arch + " " + e.Hash.Algo.String() + " " + hex.EncodeToString(e.Hash.Sum) + " " + fn + "\n"
}

// fromSorted wraps a sorted cache body. Lines are checked when a lookup
// reads them, not here: the cache of Debian's main archive has 66,000
// lines and a hook cannot afford to parse them all.
func fromSorted(body []byte) (*Index, error) {
	if len(body) > 0 && body[len(body)-1] != '\n' {
		return nil, errors.New("aptindex: cache: truncated")
	}
	return &Index{data: body}, nil
}

func parseCacheLine(l []byte) (Entry, error) {
	f := strings.Fields(string(l))
	if len(f) != 6 {
		return Entry{}, fmt.Errorf("aptindex: cache: bad line %q", truncate(l))
	}
	a, ok := parseAlgo(f[3])
	if !ok {
		return Entry{}, fmt.Errorf("aptindex: cache: bad algorithm %q", f[3])
	}
	sum, err := hex.DecodeString(f[4])
	if err != nil || len(sum) != a.size() {
		return Entry{}, fmt.Errorf("aptindex: cache: bad hash %q", f[4])
	}
	fn := f[5]
	if fn == "-" {
		fn = ""
	}
	return Entry{Package: f[0], Version: f[1], Arch: f[2], Filename: fn, Hash: Hash{Algo: a, Sum: sum}}, nil
}

// lineAt returns the line containing byte off and the offset after it.
func (ix *Index) lineAt(off int) (line []byte, next int) {
	start := bytes.LastIndexByte(ix.data[:off], '\n') + 1
	end := bytes.IndexByte(ix.data[start:], '\n')
	if end < 0 {
		return ix.data[start:], len(ix.data)
	}
	return ix.data[start : start+end], start + end + 1
}

// Lookup returns every entry for the package, version and architecture
// (several indices may list the same .deb): a binary search over the
// sorted lines, by byte offset.
func (ix *Index) Lookup(pkg, version, arch string) []Entry {
	if ix == nil || len(ix.data) == 0 {
		return nil
	}
	prefix := []byte(key(pkg, version, arch) + " ")
	// Find the first line >= prefix: lo is always a line start.
	lo, hi := 0, len(ix.data)
	for lo < hi {
		mid := lo + (hi-lo)/2
		line, next := ix.lineAt(mid)
		start := next - len(line) - 1
		if next == len(ix.data) && (len(ix.data) == 0 || ix.data[len(ix.data)-1] != '\n') {
			start = next - len(line)
		}
		if bytes.Compare(line, prefix) < 0 {
			lo = next
		} else {
			hi = start
		}
	}
	var out []Entry
	for off := lo; off < len(ix.data); {
		line, next := ix.lineAt(off)
		if !bytes.HasPrefix(line, prefix) {
			break
		}
		if e, err := parseCacheLine(line); err == nil {
			out = append(out, e)
		}
		off = next
	}
	return out
}

// hashReader computes the given algorithms over r in one pass.
func hashReader(r io.Reader, algos ...Algo) (map[Algo][]byte, error) {
	hs := map[Algo]io.Writer{}
	var ws []io.Writer
	sums := map[Algo][]byte{}
	for _, a := range algos {
		if _, ok := hs[a]; ok {
			continue
		}
		h := a.New()
		hs[a] = h
		ws = append(ws, h)
	}
	if _, err := io.Copy(io.MultiWriter(ws...), r); err != nil {
		return nil, err
	}
	for a, w := range hs {
		sums[a] = w.(interface{ Sum([]byte) []byte }).Sum(nil)
	}
	return sums, nil
}

// Match returns the entry whose hash equals the corresponding sum in sums
// (computed over the .deb), if any.
func Match(entries []Entry, sums map[Algo][]byte) (Entry, bool) {
	for _, e := range entries {
		if s, ok := sums[e.Hash.Algo]; ok && bytes.Equal(s, e.Hash.Sum) {
			return e, true
		}
	}
	return Entry{}, false
}

// Algos lists the algorithms the entries use (what to compute over a .deb).
func Algos(entries []Entry) []Algo {
	seen := map[Algo]bool{}
	var out []Algo
	for _, e := range entries {
		if !seen[e.Hash.Algo] {
			seen[e.Hash.Algo] = true
			out = append(out, e.Hash.Algo)
		}
	}
	return out
}
