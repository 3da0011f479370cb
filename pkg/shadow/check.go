package shadow

import (
	"context"
	"path"
	"sort"
	"strings"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/policy"
)

// Shadow is a mount below the target root that hides sealed files.
type Shadow struct {
	Mount
	Hidden   int      // sealed files it hides
	Packages []string // the IDs of the packages those files belong to, sorted
}

// Checker counts the sealed files that mounts hide on one system.
type Checker struct {
	FS     *fsattr.Root // the target root: paths are looked up inside it
	DB     *dpkgdb.DB
	Policy *policy.Config        // which paths are locked, and mount-allow
	Sealed func(pkg string) bool // nil: nothing is sealed
	// Manifests, when set, add the regular files a package's manifest
	// records to those its md5sums lists (a rewritten md5sums file then
	// hides nothing from the count).
	Manifests *manifest.Store
}

// MountsError is a mount list that could not be read.
type MountsError struct{ Err error }

func (e *MountsError) Error() string { return "reading the mounts: " + e.Err.Error() }

func (e *MountsError) Unwrap() error { return e.Err }

// Find is Check with the mounts that list returns (mountinfo.Self), read
// only when some of pkgs is sealed (AnySealed): nothing else can be
// hidden. An error of list is a *MountsError.
func (c *Checker) Find(ctx context.Context, pkgs []*dpkgdb.Package, list func() ([]mountinfo.Mount, error)) ([]Shadow, error) {
	if !c.AnySealed(pkgs) {
		return nil, nil
	}
	mounts, err := list()
	if err != nil {
		return nil, &MountsError{Err: err}
	}
	return c.Check(ctx, mounts, pkgs)
}

// Check returns the mounts among mounts (this process's, from
// mountinfo.Self) that hide sealed files of pkgs (every package with files
// when nil), sorted by mount point, then mount ID.
//
// A sealed file is a path of a sealed, configured package that exclude-
// package does not name, that the package's own data says is a regular
// file (its md5sums, which dpkg writes for every package, or its
// manifest), that is no package's conffile, and whose real path
// (diversions resolved) the policy locks: what lock --all locks. A mount
// hides it when resolving the file's path inside the root passes through
// the mount: its mount point is the file, or a directory on the way to it
// (symlinks such as a merged /usr's /bin followed), or holds a symlink on
// the way. Paths are resolved by looking at the filesystem as it is now,
// mounts included, and only when some mount below the root is not
// Expected: on a system without one, Check reads nothing. A package's
// md5sums and manifest are read only when one of its paths passes through
// such a mount.
//
// A package whose list cannot be read is skipped (the audit and status
// report it).
func (c *Checker) Check(ctx context.Context, mounts []mountinfo.Mount, pkgs []*dpkgdb.Package) ([]Shadow, error) {
	cands := Unexpected(mounts, c.FS.Real(), c.Policy.MountAllowed)
	if len(cands) == 0 || c.Sealed == nil {
		return nil, nil
	}
	div, err := c.DB.Diversions()
	if err != nil {
		return nil, err
	}
	if pkgs == nil {
		for _, p := range c.DB.Packages {
			if p.HasFiles() {
				pkgs = append(pkgs, p)
			}
		}
	}
	conf := map[string]bool{}
	for _, p := range c.DB.Packages {
		for _, cf := range p.Conffiles {
			conf[cf.Path] = true
		}
	}
	var sealed []*dpkgdb.Package
	for _, p := range pkgs {
		if c.sealed(p) {
			sealed = append(sealed, p)
		}
	}
	lists, _ := c.DB.FilesOf(sealed)
	r := &resolver{fs: c.FS, cands: cands, dirs: map[string]walked{}}
	defer r.close()
	hidden := make([]map[string]bool, len(cands))
	owners := make([]map[string]bool, len(cands))
	type hit struct {
		listed, canon string
		mounts        []int
	}
	var hits []hit
	for i, p := range sealed {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// Paths first: which md5sums and manifest to read (the costly
		// part) is known once some path passes through a mount.
		hits = hits[:0]
		for _, l := range lists[i] {
			if conf[l] {
				continue
			}
			real := div.Resolve(l, p.Name)
			if conf[real] {
				continue
			}
			if ok, _ := c.Policy.PathLocked(real); !ok {
				continue
			}
			if canon, ms := r.file(real); len(ms) > 0 {
				hits = append(hits, hit{l, canon, ms})
			}
		}
		if len(hits) == 0 {
			continue
		}
		files := c.regularFiles(p)
		for _, h := range hits {
			if !files[h.listed] {
				continue
			}
			for _, m := range h.mounts {
				if hidden[m] == nil {
					hidden[m], owners[m] = map[string]bool{}, map[string]bool{}
				}
				hidden[m][h.canon] = true
				owners[m][p.ID()] = true
			}
		}
	}
	var out []Shadow
	for i, m := range cands {
		if len(hidden[i]) == 0 {
			continue
		}
		s := Shadow{Mount: m, Hidden: len(hidden[i])}
		for id := range owners[i] {
			s.Packages = append(s.Packages, id)
		}
		sort.Strings(s.Packages)
		out = append(out, s)
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Point != out[j].Point {
			return out[i].Point < out[j].Point
		}
		return out[i].ID < out[j].ID
	})
	return out, nil
}

// AnySealed reports whether any of pkgs (every package when nil) has files
// that can be sealed: when none has, no mount can hide one, and callers
// need not read the mount list.
func (c *Checker) AnySealed(pkgs []*dpkgdb.Package) bool {
	if pkgs == nil {
		pkgs = c.DB.Packages
	}
	for _, p := range pkgs {
		if c.sealed(p) {
			return true
		}
	}
	return false
}

// sealed reports whether p's files are sealed: it is, it is configured,
// and exclude-package does not name it (as lock --all decides).
func (c *Checker) sealed(p *dpkgdb.Package) bool {
	return c.Sealed != nil && c.Sealed(p.Name) && p.Configured() && !c.Policy.PackageExcluded(p.Name)
}

// regularFiles are the listed paths the package's own data says are
// regular files: its md5sums, and its manifest's files. A package that
// has neither yields none.
func (c *Checker) regularFiles(p *dpkgdb.Package) map[string]bool {
	out := map[string]bool{}
	if sums, _, err := c.DB.MD5Sums(p); err == nil {
		for f := range sums {
			out[f] = true
		}
	}
	if c.Manifests != nil {
		if m, err := c.Manifests.Load(p.Name, p.Arch); err == nil && m.Version == p.Version {
			for _, e := range m.Entries {
				if e.Type == manifest.TypeFile {
					out[e.Path] = true
				}
			}
		}
	}
	return out
}

// maxSymlinks is the kernel's limit on symlinks followed in one lookup
// (MAXSYMLINKS): beyond it the rest of a path is taken literally, and no
// tree of symlinks makes a lookup cost more.
const maxSymlinks = 40

// walked is where a path leads inside the root.
type walked struct {
	canon   string // the path with every symlink resolved, inside the root
	detours []int  // candidates holding a symlink followed on the way
}

// resolver resolves paths inside the root as the kernel would, one
// component at a time, and says which candidate mounts each passes
// through. Directories are resolved once.
type resolver struct {
	fs      *fsattr.Root
	cands   []Mount
	dirs    map[string]walked
	cur     *fsattr.Dir // the last directory looked into, kept open
	curPath string
	budget  int // symlinks the current lookup may still follow
}

func (r *resolver) close() {
	if r.cur != nil {
		r.cur.Close()
		r.cur = nil
	}
}

// file returns where the file at p (clean, absolute) is, its last
// component not followed (a sealed file is no symlink), and every
// candidate it passes through.
func (r *resolver) file(p string) (string, []int) {
	r.budget = maxSymlinks
	w := r.dir(path.Dir(p))
	canon := path.Join(w.canon, path.Base(p))
	return canon, union(r.under(canon), w.detours)
}

// dir resolves a directory.
func (r *resolver) dir(d string) walked {
	if d == "/" {
		return walked{canon: "/"}
	}
	if w, ok := r.dirs[d]; ok {
		return w
	}
	parent := r.dir(path.Dir(d))
	w := r.child(parent.canon, path.Base(d))
	w.detours = union(parent.detours, w.detours)
	r.dirs[d] = w
	return w
}

// child resolves name in the resolved directory dir: a symlink is
// followed (relative to dir, or to the root when absolute), anything else
// — a directory, a file, a name that is not there — is taken as it is.
func (r *resolver) child(dir, name string) walked {
	p := path.Join(dir, name)
	if r.budget <= 0 {
		return walked{canon: p}
	}
	target, ok := r.readlink(dir, name)
	if !ok {
		return walked{canon: p}
	}
	r.budget--
	// The symlink itself lives in every candidate mount above it: what
	// it points to is what that mount says.
	w := walked{canon: dir, detours: r.under(p)}
	if strings.HasPrefix(target, "/") {
		w.canon = "/"
	}
	for _, c := range strings.Split(target, "/") {
		switch c {
		case "", ".":
		case "..":
			w.canon = path.Dir(w.canon)
		default:
			next := r.child(w.canon, c)
			w.canon = next.canon
			w.detours = union(w.detours, next.detours)
		}
	}
	return w
}

// readlink returns the target of dir/name when it is a symlink.
func (r *resolver) readlink(dir, name string) (string, bool) {
	if r.cur == nil || r.curPath != dir {
		r.close()
		d, err := r.fs.OpenDir(dir)
		if err != nil {
			return "", false // not there (or hidden): nothing to follow
		}
		r.cur, r.curPath = d, dir
	}
	info, err := r.cur.Lstat(name)
	if err != nil || !info.IsSymlink() {
		return "", false
	}
	t, err := r.cur.Readlink(name)
	if err != nil || t == "" {
		return "", false
	}
	return t, true
}

// under returns the candidates whose mount point is p or a directory
// above it.
func (r *resolver) under(p string) []int {
	var out []int
	for i, c := range r.cands {
		if p == c.Point || strings.HasPrefix(p, c.Point+"/") {
			out = append(out, i)
		}
	}
	return out
}

// union merges two sorted lists of indexes.
func union(a, b []int) []int {
	if len(b) == 0 {
		return a
	}
	if len(a) == 0 {
		return b
	}
	out := make([]int, 0, len(a)+len(b))
	i, j := 0, 0
	for i < len(a) || j < len(b) {
		switch {
		case j == len(b) || i < len(a) && a[i] < b[j]:
			out = append(out, a[i])
			i++
		case i == len(a) || b[j] < a[i]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i, j = i+1, j+1
		}
	}
	return out
}
