package audit

import (
	"context"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"path"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/evidence"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/debseal/debseal/pkg/seen"
	md5simd "github.com/minio/md5-simd"
)

// Options tune an audit.
type Options struct {
	// Conffiles checks conffiles too (against the status Conffiles hash);
	// without it they are skipped entirely, as debsums does.
	Conffiles bool
	// PathFilters are dpkg's path-exclude/path-include options in order
	// ("-glob" / "+glob"): a listed path they exclude may be absent.
	PathFilters []string
	// Cache, when set, lets the audit skip reading immutable files whose
	// stamps are unchanged, and collects what this run read (see Cache).
	// Full ignores its entries but still fills it.
	Cache *Cache
	Full  bool
	// Workers is the parallelism (default: twice the CPUs, so that reads
	// from a cold disk overlap with hashing).
	Workers int
	// Progress counts packages: the total is len(pkgs) (every package
	// with files when nil), and each is added once its findings are out.
	Progress progress.Meter
	// Evidence are the tampered files dpkg runs found before replacing
	// them (evidence.List), and EvidenceErrors the records that could not
	// be read: each is a TamperedBeforeUpgrade finding until an admin
	// clears it, whatever the file is now.
	Evidence       []evidence.Event
	EvidenceErrors []error
}

// Auditor audits the packages of one system.
type Auditor struct {
	DB        *dpkgdb.DB
	Policy    *policy.Config
	Sealed    func(pkg string) bool // which packages are expected locked (nil: none)
	FS        *fsattr.Root
	Manifests *manifest.Store // nil: no manifests
	Owners    *manifest.Owners
	// Mounts lists the mounts of the audit's mount namespace
	// (mountinfo.Self): those that hide sealed files are Shadowed
	// findings. nil: mounts are not checked.
	Mounts func() ([]mountinfo.Mount, error)
	Opts   Options
	// Seen is what debseal saw locked before (pkg/seen; nil: nothing):
	// a sealed file found mutable that was seen locked since it was last
	// let go, and that no transaction names, is Lifted rather than
	// NotLocked. The audit adds its own sightings to it (every sealed
	// inode it finds immutable, and the last sighting of each one it
	// reports lifted), for the caller to save.
	Seen *seen.Log
	// VerityDevices are the devices locks found to take fs-verity
	// (pkg/seal.LoadVerityDevices; nil: none): a sealed regular file
	// there without it is VerityLost.
	VerityDevices map[uint64]bool
	// Transactions are the journals of dpkg runs (pkg/seal): what they
	// unlocked is not lifted, and while their process runs, not a
	// finding at all.
	Transactions []Transaction
}

// Summary counts what an audit did.
type Summary struct {
	Packages int
	Files    int // listed paths examined
	Hashed   int // regular files read
	Cached   int // regular files whose digest came from the cache
	// VerityMeasured are regular files whose content was checked by
	// asking the kernel for their fs-verity digest: no byte read.
	VerityMeasured int
	BytesHashed    int64
	Manifests      int // packages checked against a manifest
	// ShadowedFiles are the sealed files the Shadowed mounts hide, summed
	// over the mounts.
	ShadowedFiles int
	ByKind        [NumKinds]int
	Duration      time.Duration
}

// Findings is the number of findings, informational kinds excluded.
func (s *Summary) Findings() int {
	n := 0
	for k, c := range s.ByKind {
		if !Kind(k).Info() {
			n += c
		}
	}
	return n
}

// shared is what every package's check needs, read once.
type shared struct {
	div        *dpkgdb.Diversions
	overrides  map[string]dpkgdb.StatOverride
	confPaths  map[string]string // every conffile path of every package → its status hash (first owner's)
	hasManif   bool
	manifests  *manifest.Reader // nil: Manifests.Load for each
	lanes      *md5Lanes        // nil: crypto/md5 only
	locks      *lockTable
	hashedN    atomic.Int64
	cachedN    atomic.Int64
	verityN    atomic.Int64
	bytesN     atomic.Int64
	filesN     atomic.Int64
	manifestsN atomic.Int64
}

// Run audits pkgs (every package with files when nil) and calls emit for
// each finding: first the mounts that hide sealed files (Shadowed: they
// explain what follows), then per package in order, each package's
// findings in the order of its file list, then the lock-state findings
// (which depend on every package sharing an inode) at the end. emit is
// called from one goroutine.
// A returned error means the audit could not be done at all; problems with
// single files or packages are findings.
func (a *Auditor) Run(ctx context.Context, pkgs []*dpkgdb.Package, emit func(Finding)) (*Summary, error) {
	start := time.Now()
	sum := &Summary{}
	div, err := a.DB.Diversions()
	if err != nil {
		return nil, err
	}
	ovr, err := a.DB.StatOverrides()
	if err != nil {
		return nil, err
	}
	subset := pkgs != nil
	if pkgs == nil {
		for _, p := range a.DB.Packages {
			if p.HasFiles() {
				pkgs = append(pkgs, p)
			}
		}
	}
	sh := &shared{div: div, overrides: ovr, confPaths: map[string]string{}, locks: newLockTable()}
	for _, p := range a.DB.Packages {
		for _, c := range p.Conffiles {
			if _, ok := sh.confPaths[c.Path]; !ok {
				sh.confPaths[c.Path] = c.Hash
			}
		}
	}
	if a.Manifests != nil {
		if _, err := fsStat(a.Manifests.Dir); err == nil {
			sh.hasManif = true
			// One open directory for every package's manifest; when it
			// cannot be opened, each Load says why for its package.
			if rd, err := a.Manifests.Reader(); err == nil {
				sh.manifests = rd
				defer rd.Close()
			}
		}
	}
	if a.Owners == nil {
		a.Owners = manifest.LoadOwners(a.FS.Path)
	}
	shadowed, hidden, err := a.shadowed(ctx, pkgs)
	if err != nil {
		return nil, err
	}
	sum.ShadowedFiles = hidden
	for _, f := range shadowed {
		sum.ByKind[f.Kind]++
		emit(f)
	}
	prog := a.Opts.Progress
	if prog == nil {
		prog = progress.None
	}
	// Packages, not files: their number is known without reading every
	// list an extra time.
	prog.Start("auditing", progress.Packages, len(pkgs))
	defer prog.Done()

	sh.lanes = newMD5Lanes()
	defer sh.lanes.Close()
	workers := a.Opts.Workers
	if v, err := strconv.Atoi(os.Getenv("DEBSEAL_AUDIT_WORKERS")); err == nil && v > 0 {
		workers = v
	}
	if workers <= 0 {
		workers = max(4, 2*runtime.GOMAXPROCS(0))
		if sh.lanes != nil {
			workers = 16 * runtime.GOMAXPROCS(0) // enough files in flight to fill the lanes (md5lanes.go)
		}
	}
	jobs := make(chan *dirJob, 256)
	big := make(chan *dirJob, 4096)
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			wk := &worker{a: a, sh: sh, buf: make([]byte, 128<<10), big: big}
			defer wk.close()
			defer func() {
				if wk.lane != nil {
					wk.lane.Close()
				}
			}()
			for {
				// Big files first: they were split off their directory's
				// job so that every worker shares them.
				select {
				case j := <-big:
					wk.run(ctx, j)
					continue
				default:
				}
				select {
				case j := <-big:
					wk.run(ctx, j)
				case j, ok := <-jobs:
					if !ok {
						return
					}
					wk.run(ctx, j)
				}
			}
		}()
	}
	// Packages flow through a bounded window: the feeder prepares
	// packages ahead of the one being emitted while fewer than
	// windowFiles of their files are in flight (and always at least
	// windowPackages of them), so memory stays bounded by the window,
	// not by the number of packages. The window must be wide enough that
	// a big file at its head does not leave the MD5 lanes underfilled:
	// with 64 packages, a 100 MB library at the head stalled the feeder
	// while one worker hashed it, and a fifth of a host audit's bytes were
	// hashed one lane at a time at a quarter of the speed (issue 12).
	// Reading a package's list, md5sums and manifest is done by up to
	// `workers` preparers at once (it was a fifth of an incremental audit
	// when one goroutine did it); each hands its directory jobs over when
	// ready.
	window := make(chan *pkgJob, windowPackagesMax)
	var inflight windowCount
	go func() {
		defer close(window)
		var preparers sync.WaitGroup
		defer func() {
			preparers.Wait()
			close(jobs)
		}()
		sem := make(chan struct{}, workers)
		for _, p := range pkgs {
			if ctx.Err() != nil {
				return
			}
			inflight.waitBelow(windowFiles, windowPackages)
			pj := &pkgJob{p: p, done: make(chan struct{})}
			inflight.add(1, 0)
			window <- pj
			sem <- struct{}{}
			preparers.Add(1)
			go func() {
				defer preparers.Done()
				a.prepare(pj, sh)
				inflight.add(0, len(pj.files))
				<-sem
				for _, dj := range pj.dirs {
					jobs <- dj
				}
				if len(pj.dirs) == 0 {
					close(pj.done)
				}
			}()
		}
	}()
	for pj := range window {
		<-pj.done
		sum.Packages++
		prog.Add(1)
		for _, f := range pj.pre {
			sum.ByKind[f.Kind]++
			emit(f)
		}
		for i := range pj.files {
			for _, f := range pj.files[i].findings {
				sum.ByKind[f.Kind]++
				emit(f)
			}
			pj.files[i].findings = nil
		}
		inflight.add(-1, -len(pj.files))
		pj.files = nil
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if subset {
		a.countOtherLinks(ctx, pkgs, sh)
	}
	v := &lockVerdict{seen: a.Seen, txns: a.Transactions, start: start, now: time.Now()}
	for _, f := range sh.locks.findings(v) {
		sum.ByKind[f.Kind]++
		emit(f)
	}
	for _, f := range a.evidenceFindings(pkgs, subset) {
		sum.ByKind[f.Kind]++
		emit(f)
	}
	sum.Files = int(sh.filesN.Load())
	sum.Hashed = int(sh.hashedN.Load())
	sum.Cached = int(sh.cachedN.Load())
	sum.VerityMeasured = int(sh.verityN.Load())
	sum.BytesHashed = sh.bytesN.Load()
	sum.Manifests = int(sh.manifestsN.Load())
	sum.Duration = time.Since(start)
	return sum, nil
}

// pkgJob is one package in flight.
type pkgJob struct {
	p        *dpkgdb.Package
	sealed   bool // expected locked (sealed, configured, not excluded)
	md5      map[string][16]byte
	conf     map[string]dpkgdb.Conffile // the package's own conffiles
	man      *manifest.Manifest
	pre      []Finding // findings about the package's data (bad md5sums lines, manifest)
	files    []fileJob
	dirs     []*dirJob
	pending  atomic.Int32
	done     chan struct{}
	filtered func(string) bool
}

type fileJob struct {
	listed, real string
	findings     []Finding
}

type dirJob struct {
	pj    *pkgJob
	dir   string
	files []int // indexes into pj.files
}

// chunk is the most files one job holds. A job's cost is unknown until its
// files are stat'ed: a worker that meets a file bigger than bigFile that
// must be read hands it to the big-file queue instead, so that a chunk of
// a library directory with several 100 MB files is shared by every worker
// rather than hashed by one while the others wait at the end of the
// window.
const (
	chunk   = 32
	bigFile = 1 << 20
)

// prepare reads a package's list, md5sums and manifest and splits its
// files into per-directory jobs.
func (a *Auditor) prepare(pj *pkgJob, sh *shared) {
	p := pj.p
	pj.conf = map[string]dpkgdb.Conffile{}
	pj.sealed = a.Sealed != nil && a.Sealed(p.Name) && p.Configured() && !a.Policy.PackageExcluded(p.Name)
	for _, c := range p.Conffiles {
		pj.conf[c.Path] = c
	}
	pj.filtered = func(string) bool { return false }
	if len(a.Opts.PathFilters) > 0 {
		pj.filtered = func(s string) bool { return pathExcluded(a.Opts.PathFilters, s) }
	}
	files, err := a.DB.Files(p)
	if err != nil {
		pj.pre = append(pj.pre, Finding{Kind: Unreadable, Package: p.ID(), Path: a.DB.InfoPath(p, "list"), Real: a.DB.InfoPath(p, "list"), Err: err})
		return
	}
	sums, bad, err := a.DB.MD5Sums(p)
	for _, b := range bad {
		pj.pre = append(pj.pre, Finding{Kind: BadMD5Sums, Package: p.ID(), Path: a.DB.InfoPath(p, "md5sums"), Real: a.DB.InfoPath(p, "md5sums"), Err: b})
	}
	if err != nil {
		pj.pre = append(pj.pre, Finding{Kind: Unreadable, Package: p.ID(), Path: a.DB.InfoPath(p, "md5sums"), Real: a.DB.InfoPath(p, "md5sums"), Err: err})
	}
	pj.md5 = sums
	// A sealed package always has a manifest: lock records one and every
	// relock after dpkg renews it. None (or one for another version)
	// means it was removed, or the package changed behind debseal's
	// back: the SHA-256 check is then blind, and that is a finding.
	if a.Manifests != nil && (sh.hasManif || pj.sealed) {
		pth := a.Manifests.Path(p.Name, p.Arch)
		var m *manifest.Manifest
		err := fs.ErrNotExist
		if sh.hasManif {
			if sh.manifests != nil {
				m, err = sh.manifests.Load(p.Name, p.Arch)
			} else {
				m, err = a.Manifests.Load(p.Name, p.Arch)
			}
		}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if pj.sealed {
				pj.pre = append(pj.pre, Finding{Kind: NoManifest, Package: p.ID(), Path: pth, Real: pth,
					Expected: "a manifest for " + p.Version, Actual: "none (run debseal manifest " + p.ID() + ")", Source: "policy"})
			}
		case err != nil:
			pj.pre = append(pj.pre, Finding{Kind: BadManifest, Package: p.ID(), Path: pth, Real: pth, Err: err})
		case m.Version != p.Version:
			// Stale: recorded for another version. Not evidence about
			// the files either way, but for a sealed package it means
			// dpkg changed it without debseal seeing it.
			if pj.sealed {
				pj.pre = append(pj.pre, Finding{Kind: NoManifest, Package: p.ID(), Path: pth, Real: pth,
					Expected: "a manifest for " + p.Version, Actual: "one for " + m.Version + " (run debseal manifest " + p.ID() + ")", Source: "policy"})
			}
		default:
			pj.man = m
			sh.manifestsN.Add(1)
		}
	}
	byDir := map[string]*dirJob{}
	for _, l := range files {
		if l == "/" {
			continue
		}
		real := sh.div.Resolve(l, p.Name)
		pj.files = append(pj.files, fileJob{listed: l, real: real})
		d := path.Dir(real)
		dj := byDir[d]
		if dj == nil || len(dj.files) >= chunk {
			// Directories are cut in chunks (see chunk).
			dj = &dirJob{pj: pj, dir: d}
			byDir[d] = dj
			pj.dirs = append(pj.dirs, dj)
		}
		dj.files = append(dj.files, len(pj.files)-1)
	}
	pj.pending.Store(int32(len(pj.dirs)))
}

// worker checks files; its buffer is reused for every read.
type worker struct {
	a   *Auditor
	sh  *shared
	buf []byte
	// the directory of the last job, kept open for the next
	dirPath string
	dir     *fsattr.Dir
	dirID   fsattr.Ident // dir's own inode, once asked (dentry)
	dirIDOK bool
	dirErr  error
	big     chan *dirJob   // where big files go (nil: hash them inline)
	lane    md5simd.Hasher // this worker's MD5 lane, once it needs one
}

func (w *worker) close() {
	if w.dir != nil {
		w.dir.Close()
		w.dir = nil
	}
}

func (w *worker) run(ctx context.Context, j *dirJob) {
	defer func() {
		if j.pj.pending.Add(-1) == 0 {
			close(j.pj.done)
		}
	}()
	if ctx.Err() != nil {
		return
	}
	if w.dirPath != j.dir || w.dir == nil && w.dirErr == nil {
		w.close()
		w.dirPath = j.dir
		w.dir, w.dirErr = w.a.FS.OpenDir(j.dir)
		w.dirIDOK = false
	}
	d, derr := w.dir, w.dirErr
	for _, i := range j.files {
		f := &j.pj.files[i]
		var info fsattr.Info
		var pf *fsattr.PathFile
		err := derr
		if err == nil {
			if w.likelyRead(j.pj, f) {
				pf, err = d.OpenPath(path.Base(f.real))
				if err == nil {
					info = pf.Info
				}
			} else {
				info, err = d.Lstat(path.Base(f.real))
			}
		}
		if w.big != nil && len(j.files) > 1 && err == nil && w.shouldSplit(info) {
			bj := &dirJob{pj: j.pj, dir: j.dir, files: []int{i}}
			j.pj.pending.Add(1)
			select {
			case w.big <- bj:
				if pf != nil {
					pf.Close()
				}
				continue
			default:
				j.pj.pending.Add(-1) // queue full: hash it here
			}
		}
		f.findings = w.check(j.pj, f, d, pf, info, err)
		if pf != nil {
			pf.Close()
		}
		w.sh.filesN.Add(1)
	}
}

// likelyRead reports whether a path will most likely be read: it has a
// digest to check, and no cache is expected to vouch for it (a sealed
// package's files are immutable, and the cache knows them). Such a path
// is opened with O_PATH and stat'ed through the handle, which the read
// then reopens: open, statx, reopen, read, close, close. The others are
// only stat'ed by name (one statx), as opening them would cost two calls
// more. dpkg --verify opens, reads and closes each file with a digest and
// stat's it: this keeps debseal's system calls near that count.
func (w *worker) likelyRead(pj *pkgJob, f *fileJob) bool {
	if _, ok := pj.md5[f.listed]; !ok {
		return false
	}
	if _, isConf := pj.conf[f.listed]; isConf && !w.a.Opts.Conffiles {
		return false // only its flags are looked at
	}
	return w.a.Opts.Cache == nil || w.a.Opts.Full || !pj.sealed
}

// shouldSplit reports whether a file of a job is a regular file big
// enough to be worth its own job (it will be read: not immutable, or not
// in the cache).
func (w *worker) shouldSplit(info fsattr.Info) bool {
	if !info.IsRegular() || info.Size < bigFile {
		return false
	}
	if imm, known := info.Immutable(); known && imm && w.a.Opts.Cache != nil && !w.a.Opts.Full {
		if e, ok := w.a.Opts.Cache.Lookup(info.Dev, info.Ino); ok && e.Ctime == info.Ctime {
			return false
		}
	}
	return true
}

// asErrno extracts the errno of a path error.
func asErrno(err error, e *syscall.Errno) bool { return errors.As(err, e) }

func hexs(b []byte) string { return hex.EncodeToString(b) }

// countOtherLinks adds, for the inodes that look foreign-linked after
// auditing some packages only, the paths of the other packages that reach
// them (a hard link between two packages' paths is not foreign). Only
// those rare inodes cost the extra pass.
func (a *Auditor) countOtherLinks(ctx context.Context, pkgs []*dpkgdb.Package, sh *shared) {
	suspect := sh.locks.suspects()
	if len(suspect) == 0 {
		return
	}
	audited := map[*dpkgdb.Package]bool{}
	for _, p := range pkgs {
		audited[p] = true
	}
	byDir := map[string][]string{}
	for _, p := range a.DB.Packages {
		if audited[p] || !p.HasFiles() {
			continue
		}
		files, err := a.DB.Files(p)
		if err != nil {
			continue // its links stay foreign: reported, never locked
		}
		for _, f := range files {
			r := sh.div.Resolve(f, p.Name)
			byDir[path.Dir(r)] = append(byDir[path.Dir(r)], path.Base(r))
		}
	}
	for dir, names := range byDir {
		if ctx.Err() != nil {
			return
		}
		d, err := a.FS.OpenDir(dir)
		if err != nil {
			continue
		}
		id, _ := d.Ident()
		for _, n := range names {
			info, err := d.Lstat(n)
			if err != nil || !suspect[info.Ident] {
				continue
			}
			de := dentry{dir: id, name: n}
			if id.IsZero() {
				de = dentry{dirPath: dir, name: n}
			}
			sh.locks.addDentry(info.Ident, de)
		}
		d.Close()
	}
}

// The window's bounds (see Run): packages ahead of the one being emitted
// are prepared while fewer than windowFiles of their files are in flight,
// and always at least windowPackages of them, at most windowPackagesMax.
// 32,768 files are about 5 MB of file jobs.
const (
	windowFiles       = 32 << 10
	windowPackages    = 64
	windowPackagesMax = 1024
)

// windowCount counts the packages and files in the window.
type windowCount struct {
	mu          sync.Mutex
	cond        *sync.Cond
	pkgs, files int
}

func (c *windowCount) init() {
	if c.cond == nil {
		c.cond = sync.NewCond(&c.mu)
	}
}

func (c *windowCount) add(pkgs, files int) {
	c.mu.Lock()
	c.init()
	c.pkgs += pkgs
	c.files += files
	c.mu.Unlock()
	c.cond.Broadcast()
}

// waitBelow waits until fewer than minPkgs packages are in the window, or
// fewer than maxFiles files and windowPackagesMax packages.
func (c *windowCount) waitBelow(maxFiles, minPkgs int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.init()
	for c.pkgs >= minPkgs && (c.files >= maxFiles || c.pkgs >= windowPackagesMax) {
		c.cond.Wait()
	}
}

// evidenceFindings turns the recorded evidence into findings: every
// event, or those of the audited packages (by name: the package may have
// been reinstalled for another architecture since), and every record that
// cannot be read (a damaged record may hide an event).
func (a *Auditor) evidenceFindings(pkgs []*dpkgdb.Package, subset bool) []Finding {
	names := map[string]bool{}
	for _, p := range pkgs {
		names[p.Name] = true
	}
	var out []Finding
	for _, ev := range a.Opts.Evidence {
		if name, _, _ := strings.Cut(ev.Package, ":"); subset && !names[name] {
			continue
		}
		real := ev.Real
		if real == "" {
			real = ev.Path
		}
		out = append(out, Finding{Kind: TamperedBeforeUpgrade, Package: ev.Package, Path: ev.Path, Real: real,
			Expected: ev.Expected(), Actual: ev.Actual(), Source: ev.Source(),
			Evidence: "found " + ev.Time.Format(time.RFC3339) + beforeRun(ev.Run) + "; evidence " + ev.Where()})
	}
	for _, err := range a.Opts.EvidenceErrors {
		out = append(out, Finding{Kind: TamperedBeforeUpgrade, Path: "/" + evidence.Dir, Real: "/" + evidence.Dir, Err: err})
	}
	return out
}

func beforeRun(run string) string {
	if run == "" {
		return ""
	}
	return " before " + run
}
