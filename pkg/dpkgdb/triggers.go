package dpkgdb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// FileInterest is one line of triggers/File: Pkg is interested in changes
// to Path or anything below it.
type FileInterest struct {
	Path    string
	Pkg     string // package spec as dpkg wrote it (name or name:arch)
	NoAwait bool
}

// Interests are the trigger interests dpkg has incorporated.
type Interests struct {
	File     []FileInterest
	Explicit map[string][]string // trigger name -> interested package specs
	// Awaiting are the package specs with at least one interest (file or
	// explicit) without "-noawait": only an activation of such an
	// interest can make its activator await the package's trigger
	// processing (dpkg's trig_record_activation).
	Awaiting map[string]bool
}

// Triggers reads the trigger interests from the triggers/ directory: the
// File file for file triggers, and one file per explicit trigger name
// listing the interested packages (Lock and Unincorp are dpkg's own).
func (db *DB) Triggers() (*Interests, error) {
	dir := filepath.Join(db.Admindir, "triggers")
	in := &Interests{Explicit: map[string][]string{}, Awaiting: map[string]bool{}}
	ents, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return in, nil
	}
	if err != nil {
		return nil, fmt.Errorf("dpkgdb: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if e.IsDir() || name == "Lock" || name == "Unincorp" || strings.HasPrefix(name, ".") {
			continue
		}
		f, err := openRegular(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("dpkgdb: %w", err)
		}
		if name == "File" {
			in.File, err = ParseFileInterests(f, filepath.Join(dir, name))
			for _, fi := range in.File {
				if !fi.NoAwait {
					in.Awaiting[fi.Pkg] = true
				}
			}
		} else {
			var pkgs, awaiting []string
			pkgs, awaiting, err = parseInterestedPkgs(f, filepath.Join(dir, name))
			in.Explicit[name] = pkgs
			for _, p := range awaiting {
				in.Awaiting[p] = true
			}
		}
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	return in, nil
}

// ParseFileInterests reads triggers/File: "<path> <package>[/noawait]".
func ParseFileInterests(r io.Reader, name string) ([]FileInterest, error) {
	sc := bufio.NewScanner(r)
	var out []FileInterest
	n := 0
	for sc.Scan() {
		n++
		line := sc.Text()
		if line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i <= 0 || line[0] != '/' {
			return nil, &CorruptError{File: name, Line: n, Err: fmt.Errorf("want \"<path> <package>\", got %q", line)}
		}
		pkg, noawait := strings.CutSuffix(line[i+1:], "/noawait")
		pkg = strings.TrimSuffix(pkg, "/await")
		out = append(out, FileInterest{Path: strings.TrimRight(line[:i], "/"), Pkg: pkg, NoAwait: noawait})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("dpkgdb: read %s: %w", name, err)
	}
	return out, nil
}

// parseInterestedPkgs reads triggers/NAME: one "<package>[/noawait]" per
// line. It returns every package and those whose interest awaits.
func parseInterestedPkgs(r io.Reader, name string) (pkgs, awaiting []string, err error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		pkg, noawait := strings.CutSuffix(f[0], "/noawait")
		pkg = strings.TrimSuffix(pkg, "/await")
		pkgs = append(pkgs, pkg)
		if !noawait {
			awaiting = append(awaiting, pkg)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("dpkgdb: read %s: %w", name, err)
	}
	return pkgs, awaiting, nil
}

// Interested returns the packages interested in a change to path (file
// triggers match the interest path itself and anything below it).
func (in *Interests) Interested(path string) []string {
	var out []string
	for _, fi := range in.File {
		if path == fi.Path || strings.HasPrefix(path, fi.Path+"/") {
			out = append(out, fi.Pkg)
		}
	}
	return out
}

// RelationNames returns the package names a relationship field mentions
// (Depends/Replaces/Conflicts/Breaks/Provides syntax: comma-separated,
// '|' alternatives, version and architecture qualifiers dropped).
func RelationNames(field string) []string {
	var out []string
	for _, group := range strings.Split(field, ",") {
		for _, alt := range strings.Split(group, "|") {
			alt = strings.TrimSpace(alt)
			if i := strings.IndexAny(alt, " (:[<"); i >= 0 {
				alt = alt[:i]
			}
			if alt != "" {
				out = append(out, alt)
			}
		}
	}
	return out
}

// Providers returns the installed packages (state above config-files) that
// are named name or provide it.
func (db *DB) Providers(name string) []*Package {
	var out []*Package
	for _, p := range db.byName(name) {
		if p.State > StateConfigFiles {
			out = append(out, p)
		}
	}
	for _, p := range db.Packages {
		if p.State <= StateConfigFiles || p.Name == name || p.Provides == "" {
			continue
		}
		for _, prov := range RelationNames(p.Provides) {
			if prov == name {
				out = append(out, p)
				break
			}
		}
	}
	return out
}
