package seal

import (
	"path"
	"strings"

	"github.com/debseal/debseal/pkg/dpkgdb"
)

// mergedUsrLinks are the top-level directories that merged-/usr systems
// make symlinks into /usr: a file is listed under either name.
var mergedUsrLinks = []string{"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/libo32"}

// canon tells when two paths name the same file the way the kernel
// resolves them inside the root, so that a script's spelling of a file
// (/bin/rm) and the list's (/usr/bin/rm) agree. Directories are resolved
// once each.
type canon struct {
	fs    FS
	dirs  map[string]string
	links map[string]string // "/bin" -> "/usr/bin" where /bin is such a link
}

func newCanon(fsys FS) *canon {
	c := &canon{fs: fsys, dirs: map[string]string{}, links: map[string]string{}}
	for _, l := range mergedUsrLinks {
		if r := c.dir(l); r != l {
			c.links[l] = r
		}
	}
	return c
}

// dir returns dir with every symlink resolved inside the root; a directory
// that cannot be opened is returned as it is (it names no file either way).
func (c *canon) dir(dir string) string {
	if r, ok := c.dirs[dir]; ok {
		return r
	}
	r := dir
	if d, err := c.fs.OpenDir(dir); err == nil {
		if real, err := d.Real(); err == nil {
			r = real
		}
		d.Close()
	}
	c.dirs[dir] = r
	return r
}

// path returns p with its directory resolved.
func (c *canon) path(p string) string {
	if p == "/" {
		return p
	}
	return path.Join(c.dir(path.Dir(p)), path.Base(p))
}

// aliases returns the names under which a package may list the file p:
// p, its canonical path, and that path through each merged-/usr link.
func (c *canon) aliases(p string) []string {
	out := []string{p}
	cp := c.path(p)
	if cp != p {
		out = append(out, cp)
	}
	for link, target := range c.links {
		if rest, ok := strings.CutPrefix(cp, target+"/"); ok {
			if a := link + "/" + rest; a != p {
				out = append(out, a)
			}
		}
	}
	return out
}

// setOwners fills in, for targets found by path (a script names them, an
// archive ships them), the packages that list them: under any alias, and
// through diversions. It reads every package's list, so it runs only when
// such targets exist.
func (s *System) setOwners(targets []*Target) error {
	div, err := s.DB.Diversions()
	if err != nil {
		return err
	}
	c := newCanon(s.FS)
	// A package lists a file at its undiverted name: look for each
	// target's names and for the names diverted to them.
	cands := make([][]string, len(targets))
	var names []string
	for i, t := range targets {
		t.Owners = nil
		seen := map[string]bool{}
		add := func(n string) {
			if !seen[n] {
				seen[n] = true
				cands[i] = append(cands[i], n)
			}
		}
		for _, a := range c.aliases(t.Path()) {
			add(a)
			if d, ok := div.ByTo(a); ok {
				for _, f := range c.aliases(d.From) {
					add(f)
				}
			}
		}
		names = append(names, cands[i]...)
	}
	listing := s.DB.Listing(names)
	for i, t := range targets {
		want := c.path(t.Path())
		for _, f := range cands[i] {
			for _, p := range listing[f] {
				if c.path(div.Resolve(f, p.Name)) == want {
					t.Owners = append(t.Owners, Owner{Pkg: p.ID(), Path: f, Real: t.Path()})
				}
			}
		}
	}
	return nil
}

// orphans returns the journal's old files that still exist but that no
// package lists any more, under any name: what dpkg leaves behind when it
// could not remove a file (the silent failure an immutable flag causes).
// A file that moved from /bin to /usr/bin in the new version is still
// owned: on a merged-/usr system both names are one file.
func (s *System) orphans(j *Journal) ([]Listed, error) {
	if len(j.Before) == 0 {
		return nil, nil
	}
	div, err := s.DB.Diversions()
	if err != nil {
		return nil, err
	}
	c := newCanon(s.FS)
	owned := map[string]bool{}
	readList := func(p *dpkgdb.Package) {
		files, err := s.DB.Files(p)
		if err != nil {
			return
		}
		for _, f := range files {
			owned[f] = true
			owned[div.Resolve(f, p.Name)] = true
		}
		for _, cf := range p.Conffiles {
			owned[cf.Path] = true
		}
	}
	isOwned := func(l Listed) bool {
		for _, p := range []string{l.Path, l.real()} {
			for _, a := range c.aliases(p) {
				if owned[a] {
					return true
				}
			}
		}
		return false
	}
	names := map[string]bool{}
	for _, l := range j.Before {
		names[strings.SplitN(l.Pkg, ":", 2)[0]] = true
	}
	for _, n := range j.NewPackages {
		names[n] = true
	}
	for n := range names {
		for _, p := range s.DB.Lookup(n) {
			readList(p)
		}
	}
	var cands []Listed
	for _, l := range j.Before {
		if owned[l.Path] || owned[l.real()] {
			continue
		}
		if _, err := s.lstat(l.real()); err != nil {
			continue // gone, as it should be
		}
		if !isOwned(l) {
			cands = append(cands, l)
		}
	}
	if len(cands) == 0 {
		return nil, nil
	}
	// Confirm against every package: another package may have taken the
	// file over.
	for _, p := range s.DB.Packages {
		if p.HasFiles() && !names[p.Name] {
			readList(p)
		}
	}
	var out []Listed
	for _, l := range cands {
		if isOwned(l) {
			continue
		}
		if info, err := s.lstat(l.real()); err == nil && !info.IsDir() {
			out = append(out, l)
		}
	}
	return out, nil
}

// real is where the listed file is on disk.
func (l Listed) real() string {
	if l.Real != "" {
		return l.Real
	}
	return l.Path
}

func (s *System) lstat(p string) (info fsInfo, err error) {
	d, err := s.FS.OpenDir(path.Dir(p))
	if err != nil {
		return info, err
	}
	defer d.Close()
	i, err := d.Lstat(path.Base(p))
	return fsInfo{i.Mode}, err
}

type fsInfo struct{ mode uint32 }

func (f fsInfo) IsDir() bool { return f.mode&0o170000 == 0o040000 }
