package seal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"runtime"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
)

// Reason says why a listed path is not a target.
type Reason uint8

// Reasons a listed path is not locked.
const (
	SkipConffile    Reason = iota // a conffile, or an inode a conffile shares
	SkipExcluded                  // excluded by policy (path), or an inode an excluded path shares
	SkipSymlink                   // symlinks carry no flag
	SkipDirectory                 // directories are locked only when the policy asks
	SkipSpecial                   // device, FIFO or socket
	SkipMissing                   // listed but absent (dpkg path-exclude, or removed by hand)
	SkipUnsupported               // the filesystem has no inode flags
	SkipMismatch                  // --verify: the content differs from the package's md5sums
	SkipForeignLink               // the inode has more links than package paths reach it (see Plan)
	numReasons
)

var reasonNames = [numReasons]string{"conffile", "excluded", "symlink", "directory", "special", "missing", "unsupported", "mismatch", "foreign-link"}

func (r Reason) String() string { return reasonNames[r] }

// Reasons lists every reason, in order (for reports).
func Reasons() []Reason {
	out := make([]Reason, numReasons)
	for i := range out {
		out[i] = Reason(i)
	}
	return out
}

// Owner is one way a target is reached: a package lists Path, which is
// really at Real (they differ for diverted files).
type Owner struct {
	Pkg  string // package ID (name or name:arch)
	Path string // as listed in the package's .list
	Real string // on disk, after diversions
}

// Target is one inode to lock or unlock.
type Target struct {
	Dir, Name string      // where it is opened: parent directory and last component of the first owner's Real path
	Info      fsattr.Info // the planned inode, as lstat saw it
	Owners    []Owner
}

// Path is the target's first real path.
func (t *Target) Path() string { return path.Join(t.Dir, t.Name) }

// Skip is a listed path that is not a target.
type Skip struct {
	Owner
	Reason Reason
	Detail string // e.g. the filesystem name, or the excluding rule
}

// Plan is what to change, and what was left alone and why.
type Plan struct {
	Targets []*Target
	Skips   []Skip
	Errors  []error // paths that could not be examined; never targets
	// Packages maps each planned package ID to its state of planning:
	// nil when its list was read, the error otherwise (then none of its
	// files is a target: nothing is locked on the strength of bad data).
	Packages map[string]error
	// Pending are packages that are unpacked but not configured: their
	// files are locked once dpkg configures them.
	Pending []string
}

// Failed returns the IDs of the packages whose lists could not be read,
// sorted.
func (p *Plan) Failed() []string {
	var ids []string
	for id, err := range p.Packages {
		if err != nil {
			ids = append(ids, id)
		}
	}
	sort.Strings(ids)
	return ids
}

// Planner builds plans against one database, policy and filesystem.
type Planner struct {
	DB     *dpkgdb.DB
	Policy *policy.Config
	FS     FS
	// Workers is the parallelism for filesystem calls (default: the CPUs).
	Workers int
	// ForUnlock plans an unlock: every package that has files, whatever
	// its state, and every non-conffile path whatever the path policy says
	// now (a file locked under an older policy must still come undone).
	ForUnlock bool
	// Conffiles, with ForUnlock, makes conffiles targets too (debseal
	// unlock only ever makes files more mutable: a conffile locked by an
	// older debseal, or while a corrupt status had lost its Conffiles
	// entry, must still come undone). Never used to lock.
	Conffiles bool
}

// workers is the parallelism for filesystem calls. The work is mostly in
// the kernel (an ioctl that changes flags journals the inode), so twice
// as many workers as CPUs keep them busy while others wait (measured on a
// minbase chroot: 2 workers 186 ms, 3 or more 113 ms).
func (pl *Planner) workers() int {
	if pl.Workers > 0 {
		return pl.Workers
	}
	return max(4, 2*runtime.GOMAXPROCS(0))
}

// conffiles returns every conffile path of every package (listed and, when
// diverted, real): conffiles are never locked, whoever owns them.
func (pl *Planner) conffiles(div *dpkgdb.Diversions) map[string]bool {
	cf := map[string]bool{}
	for _, p := range pl.DB.Packages {
		for _, c := range p.Conffiles {
			cf[c.Path] = true
			cf[div.Resolve(c.Path, p.Name)] = true
		}
	}
	return cf
}

type candidate struct {
	owner   Owner
	protect Reason // for protect-only paths: why their inode must stay unlocked
	target  bool   // a lockable candidate (else: only stat'ed to protect its inode)
}

// Plan computes the targets for pkgs. Packages not configured are reported
// as pending, not planned.
func (pl *Planner) Plan(ctx context.Context, pkgs []*dpkgdb.Package) (*Plan, error) {
	div, err := pl.DB.Diversions()
	if err != nil {
		return nil, err
	}
	plan := &Plan{Packages: map[string]error{}}
	conff := pl.conffiles(div)

	var planned []*dpkgdb.Package
	for _, p := range pkgs {
		if !p.Configured() && !(pl.ForUnlock && p.HasFiles()) {
			if p.State >= dpkgdb.StateHalfInstalled {
				plan.Pending = append(plan.Pending, p.ID())
			}
			continue
		}
		planned = append(planned, p)
	}
	lists, listErrs := pl.DB.FilesOf(planned)
	n := 0
	for _, l := range lists {
		n += len(l)
	}
	cands := make([]candidate, 0, n)
	for k, p := range planned {
		files, err := lists[k], listErrs[k]
		lists[k] = nil
		if err != nil {
			plan.Packages[p.ID()] = err
			continue
		}
		plan.Packages[p.ID()] = nil
		for _, f := range files {
			if f == "/" {
				continue
			}
			o := Owner{Pkg: p.ID(), Path: f, Real: div.Resolve(f, p.Name)}
			switch {
			case (conff[o.Path] || conff[o.Real]) && pl.ForUnlock && pl.Conffiles:
				cands = append(cands, candidate{owner: o, target: true})
			case conff[o.Path] || conff[o.Real]:
				plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipConffile})
			default:
				if ok, rule := pl.Policy.PathLocked(o.Real); !ok && !pl.ForUnlock {
					plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipExcluded, Detail: rule.String()})
					cands = append(cands, candidate{owner: o, protect: SkipExcluded})
				} else {
					cands = append(cands, candidate{owner: o, target: true})
				}
			}
		}
	}
	// Conffiles protect their inodes: a hard link between a conffile and a
	// package file must not lock the conffile. dpkg creates hard links
	// only within one package's archive, so the planned packages' own
	// conffiles are the ones to look at, which keeps the work for one
	// package proportional to that package.
	for _, p := range pkgs {
		if pl.ForUnlock && pl.Conffiles {
			break // unlocking conffiles too: nothing to protect
		}
		for _, c := range p.Conffiles {
			cands = append(cands, candidate{owner: Owner{Pkg: p.ID(), Path: c.Path, Real: div.Resolve(c.Path, p.Name)}, protect: SkipConffile})
		}
	}

	// dpkg lists every directory above each file, so a listed path that
	// other listed paths sit under is a directory. Unless directories are
	// to be locked (or unlocked), it needs no stat: that is 40% of the
	// paths on a typical system.
	implied := make(map[string]bool, len(cands)/4)
	if !pl.Policy.LockDirectories && !pl.ForUnlock {
		for _, c := range cands {
			implied[path.Dir(c.owner.Real)] = true
		}
	}
	// Several packages list the same paths: stat each real path once.
	statIdx := make([]int, len(cands))
	seen := make(map[string]int, len(cands)/2)
	var reals []string
	dirSkips := 0
	for i, c := range cands {
		statIdx[i] = -1
		if implied[c.owner.Real] {
			if c.target {
				dirSkips++
			}
			continue
		}
		j, ok := seen[c.owner.Real]
		if !ok {
			j = len(reals)
			seen[c.owner.Real] = j
			reals = append(reals, c.owner.Real)
		}
		statIdx[i] = j
	}
	infos, dirIDs, errs := pl.statAllDirs(ctx, reals)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// Most skips are those directories: room for them at once (a third
	// of the paths; growing the slice by doubling was most of a status's
	// garbage).
	plan.Skips = slices.Grow(plan.Skips, dirSkips)
	protected := map[fsattr.Ident]Reason{}
	for i, c := range cands {
		j := statIdx[i]
		if c.target || j < 0 || errs[j] != nil {
			continue
		}
		if info := infos[j]; info.IsRegular() || info.IsDir() {
			if _, dup := protected[info.Ident]; !dup {
				protected[info.Ident] = c.protect
			}
		}
	}
	byIdent := make(map[fsattr.Ident]*Target, len(reals))
	// The directory entries of planned package paths that reach each
	// inode, to compare with its link count (see foreignLinks).
	dentries := map[fsattr.Ident]map[dentry]bool{}
	for i, c := range cands {
		if !c.target {
			continue
		}
		o := c.owner
		j := statIdx[i]
		if j < 0 {
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipDirectory})
			continue
		}
		info, err := infos[j], errs[j]
		switch {
		case err != nil && isMissing(err):
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipMissing})
		case err != nil:
			plan.Errors = append(plan.Errors, err)
		case info.IsSymlink():
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipSymlink})
		case info.IsDir() && !pl.Policy.LockDirectories && !pl.ForUnlock:
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipDirectory})
		case !info.IsRegular() && !info.IsDir():
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipSpecial})
		default:
			if why, ok := protected[info.Ident]; ok {
				plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: why, Detail: "shares its inode with a " + why.String()})
				continue
			}
			if info.Nlink > 1 { // one link cannot be a foreign one
				if dentries[info.Ident] == nil {
					dentries[info.Ident] = map[dentry]bool{}
				}
				dentries[info.Ident][dentryOf(reals[j], dirIDs[j])] = true
			}
			t := byIdent[info.Ident]
			if t == nil {
				t = &Target{Dir: path.Dir(o.Real), Name: path.Base(o.Real), Info: info}
				byIdent[info.Ident] = t
				plan.Targets = append(plan.Targets, t)
			}
			t.Owners = append(t.Owners, o)
		}
	}
	if err := pl.foreignLinks(ctx, plan, pkgs, div, dentries); err != nil {
		return nil, err
	}
	sort.Slice(plan.Targets, func(i, j int) bool {
		a, b := plan.Targets[i], plan.Targets[j]
		if a.Dir != b.Dir {
			return a.Dir < b.Dir
		}
		return a.Name < b.Name
	})
	return plan, nil
}

func isMissing(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, errNotDir)
}

var errNotDir = errors.New("a parent is not a directory")

// errNotDirSys is what opening a directory through a non-directory gives.
var errNotDirSys error = syscall.ENOTDIR

// dentry is one directory entry: the directory's inode (its path when the
// filesystem cannot say) and a name in it. A merged-/usr alias (/bin/ls and
// /usr/bin/ls) is one dentry reached by two paths.
type dentry struct {
	dir     fsattr.Ident
	dirPath string
	name    string
}

func dentryOf(p string, dir fsattr.Ident) dentry {
	if dir.IsZero() {
		return dentry{dirPath: path.Dir(p), name: path.Base(p)}
	}
	return dentry{dir: dir, name: path.Base(p)}
}

// dirIdenter is a Dir that can identify itself (fsattr.Dir can).
type dirIdenter interface {
	Ident() (fsattr.Ident, error)
}

// foreignLinks takes out of the plan every target whose link count
// exceeds the directory entries of package paths that reach it: the extra
// link is a name no package owns, possibly outside the root (dpkg 1.21
// extracts a hard link entry "../x" under --root; anyone inside can run
// ln). Flagging it would change a file that is not the target system's,
// so it is never flagged, in either direction, and is reported as a skip
// with SkipForeignLink. When the plan covers only some packages, the
// other packages' paths are counted too before calling a link foreign
// (rare: only for inodes that look foreign, one extra pass).
func (pl *Planner) foreignLinks(ctx context.Context, plan *Plan, pkgs []*dpkgdb.Package, div *dpkgdb.Diversions, dentries map[fsattr.Ident]map[dentry]bool) error {
	suspect := map[fsattr.Ident]bool{}
	for _, t := range plan.Targets {
		if t.Info.IsRegular() && t.Info.Nlink > 1 && int(t.Info.Nlink) > len(dentries[t.Info.Ident]) {
			suspect[t.Info.Ident] = true
		}
	}
	if len(suspect) == 0 {
		return nil
	}
	planned := map[*dpkgdb.Package]bool{}
	for _, p := range pkgs {
		planned[p] = true
	}
	var others []string
	seen := map[string]bool{}
	for _, p := range pl.DB.Packages {
		if planned[p] || !p.HasFiles() {
			continue
		}
		files, err := pl.DB.Files(p)
		if err != nil {
			continue // cannot count its paths: the link stays foreign (never flagged: the safe side)
		}
		for _, f := range files {
			if r := div.Resolve(f, p.Name); !seen[r] {
				seen[r] = true
				others = append(others, r)
			}
		}
	}
	if len(others) > 0 {
		infos, dirIDs, errs := pl.statAllDirs(ctx, others)
		if err := ctx.Err(); err != nil {
			return err
		}
		for i, info := range infos {
			if errs[i] == nil && suspect[info.Ident] {
				dentries[info.Ident][dentryOf(others[i], dirIDs[i])] = true
			}
		}
	}
	kept := plan.Targets[:0]
	for _, t := range plan.Targets {
		n := len(dentries[t.Info.Ident])
		if !suspect[t.Info.Ident] || int(t.Info.Nlink) <= n {
			kept = append(kept, t)
			continue
		}
		detail := fmt.Sprintf("%d links, %d reached by package paths: a hard link no package owns, maybe outside the root", t.Info.Nlink, n)
		for _, o := range t.Owners {
			plan.Skips = append(plan.Skips, Skip{Owner: o, Reason: SkipForeignLink, Detail: detail})
		}
	}
	plan.Targets = kept
	return nil
}

// statAll lstats every path, grouped by directory so each directory is
// opened once, in parallel.
func (pl *Planner) statAll(ctx context.Context, paths []string) ([]fsattr.Info, []error) {
	infos, _, errs := pl.statAllDirs(ctx, paths)
	return infos, errs
}

// statAllDirs is statAll that also returns the paths' directories' inodes
// (zero when the filesystem cannot say).
func (pl *Planner) statAllDirs(ctx context.Context, paths []string) (infos []fsattr.Info, dirIDs []fsattr.Ident, errs []error) {
	infos = make([]fsattr.Info, len(paths))
	dirIDs = make([]fsattr.Ident, len(paths))
	errs = make([]error, len(paths))
	groups := make(map[string][]int, len(paths)/2)
	var dirs []string
	for i, p := range paths {
		d := path.Dir(p)
		if _, ok := groups[d]; !ok {
			dirs = append(dirs, d)
		}
		groups[d] = append(groups[d], i)
	}
	forEachDir(ctx, pl.FS, dirs, pl.workers(), func(dir string, d Dir, derr error) {
		var id fsattr.Ident
		idKnown := false
		for _, i := range groups[dir] {
			if derr != nil {
				errs[i] = derr
				continue
			}
			infos[i], errs[i] = d.Lstat(path.Base(paths[i]))
			// The directory's identity matters only for an inode with
			// several links (dentries): asked once, and only then.
			if errs[i] == nil && infos[i].Nlink > 1 {
				if di, ok := d.(dirIdenter); ok && !idKnown {
					id, _ = di.Ident() // zero on error: the path keys the dentry
					idKnown = true
				}
				dirIDs[i] = id
			}
		}
	})
	return infos, dirIDs, errs
}

// forEachDir opens each directory once and calls fn with it, from a pool
// of workers. A directory that cannot be opened is passed with its error
// (ENOTDIR becomes errNotDir). Workers take the next directory from an
// atomic index: directories are small jobs, and handing them over a
// channel cost more in scheduler wake-ups than the syscalls themselves.
func forEachDir(ctx context.Context, fsys FS, dirs []string, workers int, fn func(dir string, d Dir, err error)) {
	var next atomic.Int64
	work := func() {
		for {
			i := int(next.Add(1)) - 1
			if i >= len(dirs) || ctx.Err() != nil {
				return
			}
			dir := dirs[i]
			d, err := fsys.OpenDir(dir)
			if err != nil {
				if errors.Is(err, errNotDirSys) {
					err = fmt.Errorf("%w: %w", errNotDir, err)
				}
				fn(dir, nil, err)
				continue
			}
			fn(dir, d, nil)
			d.Close()
		}
	}
	workers = min(workers, len(dirs))
	var wg sync.WaitGroup
	for w := 1; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			work()
		}()
	}
	work() // this goroutine works too
	wg.Wait()
}
