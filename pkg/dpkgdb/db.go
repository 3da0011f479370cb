// Package dpkgdb reads dpkg's database (the admindir, /var/lib/dpkg by
// default): the status file with the updates/ journal applied, each
// package's file list, md5sums and maintainer scripts under info/, the
// diversions, statoverride and trigger-interest files.
//
// It only reads. Parsers take an io.Reader so tests and fuzzers feed bytes;
// DB opens the real files under a configurable admindir. Paths it returns
// are the package paths dpkg lists (absolute, undiverted); mapping them to
// the files on disk (diversions, a --root prefix) is the caller's job, with
// Diversions.Resolve for the first.
package dpkgdb

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/regfile"
	"golang.org/x/sys/unix"
)

// DB is an opened admindir.
type DB struct {
	Admindir string
	Packages []*Package // sorted by name, then architecture

	infoFormat int

	divOnce sync.Once
	div     *Diversions
	divErr  error
}

// Open reads the status database under admindir, applying pending entries
// of the updates/ journal the way dpkg does when it next opens the
// database. A missing status file is an empty database, as it is for dpkg
// (a fresh admindir has none until dpkg first writes it); any other
// failure to read it is an error.
func Open(admindir string) (*DB, error) {
	db := &DB{Admindir: admindir}
	statusPath := filepath.Join(admindir, "status")
	var pkgs []*Package
	f, err := openRegular(statusPath)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return nil, fmt.Errorf("dpkgdb: %w", err)
	default:
		// 64 KB, the parser's own buffer size: a bigger one saves a few
		// read calls and costs a page fault per 4 KB, each of which is
		// tens of microseconds on a virtual machine (every hook reads
		// this file).
		pkgs, err = ParseStatus(bufio.NewReaderSize(f, 64<<10), statusPath)
		f.Close()
		if err != nil {
			return nil, err
		}
		if err := checkInstances(pkgs, statusPath); err != nil {
			return nil, err
		}
	}
	updates, err := db.readUpdates()
	if err != nil {
		return nil, err
	}
	db.setPackages(append(pkgs, updates...))
	if db.infoFormat, err = readInfoFormat(admindir); err != nil {
		return nil, err
	}
	return db, nil
}

// checkInstances applies dpkg's rule for the instances of one package
// name in the status file (parse_find_set_slot): at most one instance that
// is not Multi-Arch: same, and never one of each kind, among those that are
// not not-installed.
func checkInstances(pkgs []*Package, file string) error {
	type count struct{ single, multi int32 }
	counts := make(map[string]count, len(pkgs))
	for _, p := range pkgs {
		if p.State == StateNotInstalled {
			continue
		}
		c := counts[p.Name]
		if p.MultiArch == "same" {
			c.multi++
		} else {
			c.single++
		}
		counts[p.Name] = c
		if c.single > 1 || c.single > 0 && c.multi > 0 {
			return &CorruptError{File: file, Line: p.line, Err: fmt.Errorf("package %s: several instances that cannot be installed together", p.Name)}
		}
	}
	return nil
}

// readUpdates returns the stanzas of the updates/ journal in the order dpkg
// applies them (the numbered files, sorted). Each replaces the whole record
// of its package.
func (db *DB) readUpdates() ([]*Package, error) {
	dir := filepath.Join(db.Admindir, "updates")
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: %w", err)
	}
	var names []string
	for _, e := range ents {
		if isJournalName(e.Name()) {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []*Package
	for _, n := range names {
		p := filepath.Join(dir, n)
		f, err := openRegular(p)
		if err != nil {
			return nil, fmt.Errorf("dpkgdb: %w", err)
		}
		pkgs, err := ParseStatus(f, p)
		f.Close()
		if err != nil {
			return nil, err
		}
		out = append(out, pkgs...)
	}
	return out, nil
}

// isJournalName matches dpkg's journal entries: all digits (dpkg writes
// "0000"…; "tmp.i" is its in-progress file).
func isJournalName(n string) bool {
	if n == "" {
		return false
	}
	for _, c := range n {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// readInfoFormat reads info/format: 1 for the multiarch layout, 0 when
// the file is absent (the legacy layout).
func readInfoFormat(admindir string) (int, error) {
	b, err := readRegular(filepath.Join(admindir, "info", "format"))
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("dpkgdb: %w", err)
	}
	if strings.TrimSpace(string(b)) == "1" {
		return 1, nil
	}
	return 0, nil
}

// setPackages indexes pkgs; a later stanza for the same name and
// architecture replaces an earlier one (journal semantics), and a record
// with an architecture replaces an earlier bare selection of the same
// name. db.Packages ends up sorted by name and architecture, which is
// what Lookup searches.
func (db *DB) setPackages(pkgs []*Package) {
	if sortedUnique(pkgs) {
		// The status file alone, as dpkg writes it: sorted, each name
		// and architecture once. No index needed (every hook opens the
		// database: at 50,000 packages the maps were a third of it).
		db.Packages = pkgs[:0]
		for i, p := range pkgs {
			if p.Arch == "" && i+1 < len(pkgs) && pkgs[i+1].Name == p.Name {
				continue // a bare selection, replaced by the record after it
			}
			db.Packages = append(db.Packages, p)
		}
	} else {
		db.Packages = replaceInOrder(pkgs)
		slices.SortFunc(db.Packages, byNameArch)
	}
	for i := 0; i < len(db.Packages); {
		j := i + 1
		for j < len(db.Packages) && db.Packages[j].Name == db.Packages[i].Name {
			j++
		}
		n := 0
		for _, p := range db.Packages[i:j] {
			if p.State != StateNotInstalled {
				n++
			}
		}
		for _, p := range db.Packages[i:j] {
			p.sameInstance = n > 1
		}
		i = j
	}
}

func byNameArch(a, b *Package) int {
	if c := strings.Compare(a.Name, b.Name); c != 0 {
		return c
	}
	return strings.Compare(a.Arch, b.Arch)
}

// sortedUnique reports whether pkgs are in strictly increasing name and
// architecture order.
func sortedUnique(pkgs []*Package) bool {
	for i := 1; i < len(pkgs); i++ {
		if byNameArch(pkgs[i-1], pkgs[i]) >= 0 {
			return false
		}
	}
	return true
}

// replaceInOrder applies setPackages' replacement rules in input order
// (the status file, then the journal's entries).
func replaceInOrder(pkgs []*Package) []*Package {
	type key struct{ name, arch string }
	idx := make(map[key]int, len(pkgs))
	list := make([]*Package, 0, len(pkgs))
	for _, p := range pkgs {
		k := key{p.Name, p.Arch}
		if i, ok := idx[k]; ok {
			list[i] = p
			continue
		}
		// A record without architecture (a bare selection) and one with
		// the same name describe the same package.
		if p.Arch != "" {
			if i, ok := idx[key{p.Name, ""}]; ok && list[i] != nil {
				list[i] = nil
				delete(idx, key{p.Name, ""})
			}
		}
		idx[k] = len(list)
		list = append(list, p)
	}
	out := list[:0]
	for _, p := range list {
		if p != nil {
			out = append(out, p)
		}
	}
	return out
}

// byName returns the packages named name, every architecture (a slice of
// db.Packages that cannot be appended to in place).
func (db *DB) byName(name string) []*Package {
	i := sort.Search(len(db.Packages), func(i int) bool { return db.Packages[i].Name >= name })
	j := i
	for j < len(db.Packages) && db.Packages[j].Name == name {
		j++
	}
	if i == j {
		return nil
	}
	return db.Packages[i:j:j]
}

// Lookup finds packages by "name" (every architecture) or "name:arch".
func (db *DB) Lookup(spec string) []*Package {
	name, arch, hasArch := strings.Cut(spec, ":")
	ps := db.byName(name)
	if !hasArch || arch == "any" {
		return ps
	}
	var out []*Package
	for _, p := range ps {
		if p.Arch == arch {
			out = append(out, p)
		}
	}
	return out
}

// InfoPath is the path of one of the package's info files ("list",
// "md5sums", "postinst", …): info/<name>:<arch>.<kind> for Multi-Arch: same
// packages in the current database format, info/<name>.<kind> otherwise.
func (db *DB) InfoPath(p *Package, kind string) string {
	base := p.Name
	if db.infoFormat >= 1 && p.MultiArch == "same" && p.Arch != "" {
		base += ":" + p.Arch
	}
	return filepath.Join(db.Admindir, "info", base+"."+kind)
}

// Files returns the package's file list (info/<pkg>.list): every path it
// owns, directories included, undiverted, in dpkg's order. A package
// without a list (not installed) has no files.
func (db *DB) Files(p *Package) ([]string, error) {
	files, _, err := db.files(p, nil)
	return files, err
}

// files is Files reading through buf's storage, which it returns for the
// next call (the paths are copied out of it).
func (db *DB) files(p *Package, buf []byte) ([]string, []byte, error) {
	if !p.HasFiles() {
		return nil, buf, nil
	}
	path := db.InfoPath(p, "list")
	b, err := regfile.ReadFile(path, "dpkgdb", buf)
	if errors.Is(err, fs.ErrNotExist) && (p.State == StateConfigFiles || p.State == StateHalfInstalled) {
		// dpkg removes the list of packages left with conffiles only
		// (sometimes), and a package whose unpack was cut short before
		// dpkg wrote its list has none: dpkg then assumes it has no
		// files (lib/dpkg/db-fsys-files.c), and so do we.
		return nil, buf, nil
	}
	if err != nil {
		return nil, buf, fmt.Errorf("dpkgdb: %s: %w", p.ID(), err)
	}
	files, err := parseList(string(b), path)
	return files, b, err
}

// Listing returns, for each of paths, the installed packages whose list
// names it (undiverted, as lists are), like "dpkg -S" for exact paths. It
// reads every list once, without keeping or validating it: the cost of a
// lookup is one pass over the bytes, a tenth of parsing them (a hook asks
// this for the few locked files a maintainer script names). A list that
// cannot be read is skipped, as ownership is only looked for, not trusted.
func (db *DB) Listing(paths []string) map[string][]*Package {
	want := make(map[string]bool, len(paths))
	for _, p := range paths {
		want[p] = true
	}
	out := map[string][]*Package{}
	if len(want) == 0 {
		return out
	}
	// Lists are read by a few goroutines (opening 1,000 small files is
	// most of the cost); found owners are put back in database order.
	workers := min(runtime.GOMAXPROCS(0), 4)
	found := make([][]string, len(db.Packages))
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			var buf []byte
			for i := w; i < len(db.Packages); i += workers {
				found[i], buf = db.listing(db.Packages[i], want, buf)
			}
		}(w)
	}
	wg.Wait()
	for i, names := range found {
		for _, name := range names {
			out[name] = append(out[name], db.Packages[i])
		}
	}
	return out
}

// listing returns the paths of want that p's list names.
func (db *DB) listing(p *Package, want map[string]bool, buf []byte) ([]string, []byte) {
	if !p.HasFiles() {
		return nil, buf
	}
	b, err := regfile.ReadFile(db.InfoPath(p, "list"), "dpkgdb", buf)
	if err != nil {
		return nil, buf
	}
	buf = b
	var out []string
	for rest := buf; len(rest) > 0; {
		line := rest
		if i := bytes.IndexByte(rest, '\n'); i >= 0 {
			line, rest = rest[:i], rest[i+1:]
		} else {
			rest = nil
		}
		switch {
		case want[string(line)]: // no allocation for a lookup
			out = append(out, string(line))
		case bytes.Contains(line, []byte("/.")) || bytes.Contains(line, []byte("//")) || bytes.HasSuffix(line, []byte("/")):
			// Not written by dpkg, but what Files would clean.
			if c, err := debfmt.CleanPath(string(line)); err == nil && want[c] {
				out = append(out, c)
			}
		}
	}
	return out, buf
}

// FilesOf is Files for many packages, read by a few goroutines (opening
// thousands of small files is most of the cost of reading them, and it
// is system calls: they overlap). files[i] and errs[i] are pkgs[i]'s.
func (db *DB) FilesOf(pkgs []*Package) (files [][]string, errs []error) {
	files, errs = make([][]string, len(pkgs)), make([]error, len(pkgs))
	var next atomic.Int64
	work := func() {
		var buf []byte
		for {
			i := int(next.Add(1)) - 1
			if i >= len(pkgs) {
				return
			}
			files[i], buf, errs[i] = db.files(pkgs[i], buf)
		}
	}
	inParallel(min(2*runtime.GOMAXPROCS(0), len(pkgs), 8), work)
	return files, errs
}

// ListsChangedAfter returns the packages with files whose list was
// modified after t, in database order. A list that cannot be examined is
// left out. Every hook asks this about every package (a dpkg run debseal
// did not see is found so), so it makes one fstatat per list, relative to
// the info directory and from a few goroutines, and nothing else.
func (db *DB) ListsChangedAfter(t time.Time) ([]*Package, error) {
	dir, err := unix.Open(filepath.Join(db.Admindir, "info"), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: %w", &os.PathError{Op: "open", Path: filepath.Join(db.Admindir, "info"), Err: err})
	}
	defer unix.Close(dir)
	since := t.UnixNano()
	changed := make([]bool, len(db.Packages))
	var next atomic.Int64
	const chunk = 256
	work := func() {
		var st unix.Stat_t
		for {
			start := int(next.Add(chunk)) - chunk
			if start >= len(db.Packages) {
				return
			}
			for i := start; i < min(start+chunk, len(db.Packages)); i++ {
				p := db.Packages[i]
				if !p.HasFiles() {
					continue
				}
				if unix.Fstatat(dir, filepath.Base(db.InfoPath(p, "list")), &st, 0) != nil {
					continue
				}
				changed[i] = st.Mtim.Nano() > since
			}
		}
	}
	inParallel(min(2*runtime.GOMAXPROCS(0), 8), work)
	var out []*Package
	for i, c := range changed {
		if c {
			out = append(out, db.Packages[i])
		}
	}
	return out, nil
}

// ParseList reads a .list file: one absolute path per line. A relative
// path, a ".." component, or an empty line is an error naming the line: a
// list like that was not written by dpkg and must not steer what gets
// locked.
func ParseList(r io.Reader, name string) ([]string, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: read %s: %w", name, err)
	}
	return parseList(string(b), name)
}

// maxListLine bounds one line of a list (as the bufio.Scanner this
// replaced did).
const maxListLine = 1 << 20

// parseList is ParseList on the list's text, read in one piece: the
// paths are substrings of it, one allocation per list rather than one
// per path (every command reads every list). Lines end as bufio.ScanLines
// ends them: at '\n', the last one without, one '\r' before it dropped.
func parseList(data, name string) ([]string, error) {
	out := make([]string, 0, strings.Count(data, "\n")+1)
	for n := 1; data != ""; n++ {
		line := data
		if i := strings.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = ""
		}
		if len(line) > maxListLine {
			return nil, fmt.Errorf("dpkgdb: read %s: %w", name, bufio.ErrTooLong)
		}
		line = strings.TrimSuffix(line, "\r")
		if line == "" {
			return nil, &CorruptError{File: name, Line: n, Err: errors.New("empty file name")}
		}
		if line[0] != '/' {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("path %q is not absolute", line)}
		}
		p, err := debfmt.CleanPath(line)
		if err != nil {
			return nil, &CorruptError{File: name, Line: n, Err: err}
		}
		out = append(out, p)
	}
	if len(out) == 0 {
		return nil, nil
	}
	return out, nil
}

// MD5Sums returns the package's md5sums (info/<pkg>.md5sums), keyed by the
// undiverted path. A package without the file yields an empty map. Bad lines
// are returned, not fatal: an audit reports them and goes on.
func (db *DB) MD5Sums(p *Package) (sums map[string][16]byte, bad []error, err error) {
	path := db.InfoPath(p, "md5sums")
	b, err := readRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string][16]byte{}, nil, nil
	}
	if err != nil {
		return nil, nil, fmt.Errorf("dpkgdb: %s: %w", p.ID(), err)
	}
	list, bad, err := debfmt.ParseMD5Sums(bytes.NewReader(b), path)
	if err != nil {
		return nil, bad, err
	}
	sums = make(map[string][16]byte, len(list))
	for _, s := range list {
		sums[s.Path] = s.MD5
	}
	return sums, bad, nil
}

// ReadInfo returns the contents of an info file (a maintainer script, the
// triggers file…), or nil if the package has none.
func (db *DB) ReadInfo(p *Package, kind string) ([]byte, error) {
	b, err := readRegular(db.InfoPath(p, kind))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: %s: %w", p.ID(), err)
	}
	return b, nil
}

// Diversions returns the diversions database, read once.
func (db *DB) Diversions() (*Diversions, error) {
	db.divOnce.Do(func() {
		path := filepath.Join(db.Admindir, "diversions")
		f, err := openRegular(path)
		if errors.Is(err, fs.ErrNotExist) {
			db.div = &Diversions{}
			return
		}
		if err != nil {
			db.divErr = fmt.Errorf("dpkgdb: %w", err)
			return
		}
		defer f.Close()
		db.div, db.divErr = ParseDiversions(f, path)
	})
	return db.div, db.divErr
}

// StatOverrides reads the statoverride database.
func (db *DB) StatOverrides() (map[string]StatOverride, error) {
	path := filepath.Join(db.Admindir, "statoverride")
	f, err := openRegular(path)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]StatOverride{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: %w", err)
	}
	defer f.Close()
	return ParseStatOverrides(f, path)
}

// inParallel runs work on n goroutines (this one among them, at least
// one) and returns when all have returned.
func inParallel(n int, work func()) {
	var wg sync.WaitGroup
	for w := 1; w < n; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work()
	wg.Wait()
}
