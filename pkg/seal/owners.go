package seal

import (
	"path"
	"strings"

	"github.com/debseal/debseal/pkg/dpkgdb"
)

// setOwners fills in, for targets found by path, the packages that list
// them (directly or through a diversion). It reads every package's list,
// so it runs only when such targets exist.
func (s *System) setOwners(targets []*Target) error {
	div, err := s.DB.Diversions()
	if err != nil {
		return err
	}
	// A package lists a file at its undiverted name: look for each
	// target's own path and for the names diverted to it.
	cands := make([][]string, len(targets))
	var names []string
	for i, t := range targets {
		t.Owners = nil
		cands[i] = []string{t.Path()}
		if d, ok := div.ByTo(t.Path()); ok {
			cands[i] = append(cands[i], d.From)
		}
		names = append(names, cands[i]...)
	}
	listing := s.DB.Listing(names)
	for i, t := range targets {
		for _, f := range cands[i] {
			for _, p := range listing[f] {
				if div.Resolve(f, p.Name) == t.Path() {
					t.Owners = append(t.Owners, Owner{Pkg: p.ID(), Path: f, Real: t.Path()})
				}
			}
		}
	}
	return nil
}

// orphans returns the journal's old files that still exist but that no
// package lists any more: what dpkg leaves behind when it could not remove
// a file (the silent failure an immutable flag causes).
func (s *System) orphans(j *Journal) ([]Listed, error) {
	if len(j.Before) == 0 {
		return nil, nil
	}
	div, err := s.DB.Diversions()
	if err != nil {
		return nil, err
	}
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
		for _, c := range p.Conffiles {
			owned[c.Path] = true
		}
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
		real := l.Path
		if l.Real != "" {
			real = l.Real
		}
		if owned[l.Path] || owned[real] {
			continue
		}
		if _, err := s.lstat(real); err != nil {
			continue // gone, as it should be
		}
		cands = append(cands, l)
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
		real := l.Path
		if l.Real != "" {
			real = l.Real
		}
		if owned[l.Path] || owned[real] {
			continue
		}
		if info, err := s.lstat(real); err == nil && !info.IsDir() {
			out = append(out, l)
		}
	}
	return out, nil
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
