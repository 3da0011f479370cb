package seal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"golang.org/x/sys/unix"
)

// Tampered is a sealed file that the check before an unlock found to
// differ from what debseal knows of it: its content from the package's
// md5sums or from debseal's manifest, or its type (a symlink, a FIFO, a
// socket or a device where a regular file belongs). dpkg was about to
// replace it.
type Tampered struct {
	Owner Owner       // the package and path whose expectation it breaks
	Info  fsattr.Info // what is there, as lstat sees it
	Link  string      // a symlink's target, as stored (never followed)
	// The expectations (Has*: the md5sums or the manifest has one) and,
	// for a regular file, its digests.
	WantMD5, GotMD5       [16]byte
	HasMD5                bool
	WantSHA256, GotSHA256 [32]byte
	HasSHA256             bool
	// Evidence says where System.Keep kept it, or why it could not.
	Evidence string

	target *Target // the regular file that was read; nil otherwise
}

// Regular reports whether a regular file was found (its content differs).
func (t *Tampered) Regular() bool { return t.Info.IsRegular() }

func (t Tampered) String() string {
	s := fmt.Sprintf("%s (package %s)", t.Owner.Real, t.Owner.Pkg)
	if !t.Regular() {
		what := typeName(t.Info)
		if t.Info.IsSymlink() {
			what += " to " + t.Link
		}
		return s + ": " + what + " where a regular file belongs"
	}
	var parts []string
	if t.HasMD5 {
		parts = append(parts, fmt.Sprintf("md5 %x, md5sums says %x", t.GotMD5, t.WantMD5))
	}
	if t.HasSHA256 {
		parts = append(parts, fmt.Sprintf("sha256 %x, manifest says %x", t.GotSHA256, t.WantSHA256))
	}
	return s + ": " + strings.Join(parts, "; ")
}

// typeName names a file type as the evidence records it.
func typeName(info fsattr.Info) string {
	switch info.Mode & 0o170000 {
	case 0o100000:
		return "file"
	case 0o120000:
		return "symlink"
	case 0o040000:
		return "directory"
	case 0o010000:
		return "fifo"
	case 0o140000:
		return "socket"
	case 0o020000:
		return "character device"
	case 0o060000:
		return "block device"
	}
	return "unknown"
}

// TypeName names what t found: "file", "symlink", "fifo"…
func (t *Tampered) TypeName() string { return typeName(t.Info) }

// ErrTampered: refuse-tampered-upgrade is on and sealed files the run
// would unlock are tampered; nothing was unlocked. Match with errors.Is;
// the error is a *TamperedError.
var ErrTampered = errors.New("seal: refusing to unlock tampered files for dpkg (refuse-tampered-upgrade = yes)")

// TamperedError names the tampered files a refused run found.
type TamperedError struct{ Files []Tampered }

func (e *TamperedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "refusing to let dpkg replace %d tampered sealed files (refuse-tampered-upgrade = yes); nothing was unlocked:", len(e.Files))
	for i, t := range e.Files {
		if i == 20 {
			fmt.Fprintf(&b, "\n  and %d more (see the log)", len(e.Files)-i)
			break
		}
		fmt.Fprintf(&b, "\n  %s", t)
	}
	b.WriteString("\nthe evidence is under /var/lib/debseal/evidence (debseal evidence list); to let dpkg replace them, run debseal unlock on their packages first, and debseal lock after")
	return b.String()
}

// Is makes errors.Is(err, ErrTampered) true.
func (e *TamperedError) Is(target error) bool { return target == ErrTampered }

// checkResult is what the check before an unlock found.
type checkResult struct {
	tampered []Tampered
	good     map[fsattr.Ident]bool // regular files that match what debseal knows
	checked  int                   // files checked
	read     int                   // of which read (nothing vouched for them)
	errs     []error               // files or expectations that could not be read
}

// checkCand is a file the check looks at, with the owners whose
// expectations count (sealed, configured, not excluded by policy).
type checkCand struct {
	t      *Target
	owners []Owner
}

// checkBeforeUnlock verifies the sealed files a run is about to unlock,
// before anything is unlocked: the regular files of the plan's targets
// and of the paths scripts or archives name, and the paths where a
// regular file belongs and something else is (a symlink, a FIFO, a
// socket, a device). A file that is immutable and whose stamps are those the
// last relock recorded (stamps.go) is not read, nor one that the audit's
// cache vouches for (System.Cached); the others are read and compared
// with the md5sums and the manifests (System.Manifest). When
// the run unlocks everything (sc.all), only the packages it names are
// checked: verifying the whole system is the audit's job.
//
// It never fails: what cannot be checked is reported in errs.
func (s *System) checkBeforeUnlock(ctx context.Context, sc *scope, plan *Plan, extra []*Target) *checkResult {
	res := &checkResult{good: map[fsattr.Ident]bool{}}
	ex := newExpectations(s)
	regular, odd, carry := s.checkCandidates(sc, plan, extra, ex)
	res.checked = len(regular) + len(odd)
	if res.checked+len(carry) == 0 {
		return res
	}
	var slow []checkCand
	sr, err := openStamps(s.Root)
	if err != nil {
		res.errs = append(res.errs, err)
	}
	for _, c := range regular {
		if sr != nil && ex.vouched(sr, c) {
			res.good[c.t.Info.Ident] = true
			continue
		}
		slow = append(slow, c)
	}
	// What an everything-run unlocks beyond what it names is not read,
	// but what the stamps vouch for stays vouched for after the relock.
	for _, c := range carry {
		if sr != nil && ex.vouched(sr, c) {
			res.good[c.t.Info.Ident] = true
		}
	}
	if sr != nil {
		sr.Close()
	}
	slow = s.fromCache(slow, ex, res)
	res.read = len(slow)
	s.hashAndCompare(ctx, slow, ex, res)
	s.checkOdd(ctx, odd, ex, res)
	res.errs = append(res.errs, ex.errs...)
	return res
}

// checkCandidates picks what the check looks at: regular files, and
// other files where a regular file may belong (odd). In a run that
// unlocks everything, the regular files of the packages it does not name
// are carry: only their stamps are looked at.
func (s *System) checkCandidates(sc *scope, plan *Plan, extra []*Target, ex *expectations) (regular, odd, carry []checkCand) {
	named := map[string]bool{}
	for _, p := range sc.packages() {
		named[p.ID()] = true
	}
	live := s.liveEntries()
	sealed := func(o Owner) bool {
		if p := ex.pkg(o.Pkg); p == nil || !p.Configured() || !s.State.Sealed(p.Name) || s.Policy.PackageExcluded(p.Name) {
			return false
		}
		ok, _ := s.Policy.PathLocked(o.Real)
		return ok
	}
	owners := func(all []Owner, fromPlan bool) (own, other []Owner) {
		for _, o := range all {
			switch {
			case !sealed(o):
			case fromPlan && sc.all && !named[o.Pkg]:
				other = append(other, o)
			default:
				own = append(own, o)
			}
		}
		return own, other
	}
	seen := map[fsattr.Ident]bool{}
	for i, list := range [][]*Target{plan.Targets, extra} {
		for _, t := range list {
			if seen[t.Info.Ident] {
				continue
			}
			seen[t.Info.Ident] = true
			if _, other := live[[2]uint64{t.Info.Dev, t.Info.Ino}]; other {
				continue // another running transaction unlocked it: dpkg may be changing it
			}
			if t.Info.IsDir() {
				// Unlocked for dpkg (a directory locked under an older
				// policy); dpkg cannot replace a directory with a file, so
				// one where a file belongs stays, evidence and all.
				continue
			}
			own, other := owners(t.Owners, i == 0)
			switch {
			case len(own) == 0:
				if len(other) > 0 && t.Info.IsRegular() {
					carry = append(carry, checkCand{t: t, owners: other})
				}
			case t.Info.IsRegular():
				regular = append(regular, checkCand{t: t, owners: own})
			default:
				odd = append(odd, checkCand{t: t, owners: own})
			}
		}
	}
	for _, sk := range plan.Skips {
		if sk.Reason != SkipSymlink && sk.Reason != SkipSpecial {
			continue
		}
		if own, _ := owners([]Owner{sk.Owner}, true); len(own) > 0 {
			odd = append(odd, checkCand{t: &Target{Dir: path.Dir(sk.Real), Name: path.Base(sk.Real)}, owners: own})
		}
	}
	return regular, odd, carry
}

// fromCache returns the candidates that digests read earlier
// (System.Cached: the audit's cache) do not show to be good. Only a good
// verdict is taken from there: a file whose cached digests differ is
// read, as the evidence needs both of its digests anyway.
func (s *System) fromCache(cands []checkCand, ex *expectations, res *checkResult) []checkCand {
	if s.Cached == nil || len(cands) == 0 {
		return cands
	}
	// What reading them costs, in bytes: their sizes, and a page for
	// each (the system calls a file costs, about as much as hashing 4 KiB).
	var bytes int64
	for _, c := range cands {
		bytes += c.t.Info.Size + 4096
	}
	lookup := s.Cached(bytes)
	if lookup == nil {
		return cands
	}
	var rest []checkCand
	for _, c := range cands {
		d, ok := lookup(c.t.Info)
		if ok {
			if covered, bad := compare(c, ex, d); covered && bad == nil {
				res.good[c.t.Info.Ident] = true
				continue
			}
		}
		rest = append(rest, c)
	}
	return rest
}

// Known are a file's digests as something read them earlier; Has* say
// which are known.
type Known struct {
	MD5            [16]byte
	SHA256         [32]byte
	HasMD5, HasSHA bool
}

// compare checks digests against the expectations of the candidate's
// owners: covered when some owner has one, bad for the first owner whose
// expectation the digests do not meet (or cannot: a digest not known).
func compare(c checkCand, ex *expectations, d Known) (covered bool, bad *Tampered) {
	for _, o := range c.owners {
		wm, hm := ex.md5(o)
		ws, hs := ex.sha256(o)
		if !hm && !hs {
			continue
		}
		covered = true
		if hm && (!d.HasMD5 || wm != d.MD5) || hs && (!d.HasSHA || ws != d.SHA256) {
			return true, &Tampered{Owner: o, Info: c.t.Info, WantMD5: wm, GotMD5: d.MD5, HasMD5: hm,
				WantSHA256: ws, GotSHA256: d.SHA256, HasSHA256: hs, target: c.t}
		}
	}
	return covered, nil
}

// hashAndCompare reads the candidates nothing vouched for.
func (s *System) hashAndCompare(ctx context.Context, cands []checkCand, ex *expectations, res *checkResult) {
	if len(cands) == 0 {
		return
	}
	type verdict struct {
		md  [16]byte
		sha [32]byte
		err error
	}
	verdicts := make([]verdict, len(cands))
	groups := map[string][]int{}
	var dirs []string
	for i, c := range cands {
		if _, ok := groups[c.t.Dir]; !ok {
			dirs = append(dirs, c.t.Dir)
		}
		groups[c.t.Dir] = append(groups[c.t.Dir], i)
	}
	forEachDir(ctx, s.FS, dirs, s.planner(true).workers(), func(dir string, d Dir, derr error) {
		for _, i := range groups[dir] {
			if derr != nil {
				verdicts[i].err = derr
				continue
			}
			v := &verdicts[i]
			v.md, v.sha, _, v.err = hashFile(d, cands[i].t, true, false)
		}
	})
	for i, c := range cands {
		v := verdicts[i]
		if v.err != nil {
			res.errs = append(res.errs, fmt.Errorf("seal: checking %s before unlocking it: %w", c.t.Path(), v.err))
			continue
		}
		covered, bad := compare(c, ex, Known{MD5: v.md, SHA256: v.sha, HasMD5: true, HasSHA: true})
		switch {
		case bad != nil:
			res.tampered = append(res.tampered, *bad)
		case covered:
			res.good[c.t.Info.Ident] = true
		}
	}
}

// checkOdd reports the candidates where a regular file belongs and
// something else is. dpkg's md5sums list every regular file a package
// ships and nothing else (dpkg writes one at unpack for a package that
// has none), so a symlink there is a finding; one they do not list is
// one the package ships. The manifest is not read for this: it costs
// more, and says nothing the md5sums do not.
func (s *System) checkOdd(ctx context.Context, cands []checkCand, ex *expectations, res *checkResult) {
	groups := map[string][]int{}
	var dirs []string
	owner := make([]*Owner, len(cands))
	for i, c := range cands {
		for k := range c.owners {
			if _, ok := ex.md5(c.owners[k]); ok {
				owner[i] = &c.owners[k]
				break
			}
		}
		if owner[i] == nil {
			continue // a symlink, FIFO or directory the package ships
		}
		if _, ok := groups[c.t.Dir]; !ok {
			dirs = append(dirs, c.t.Dir)
		}
		groups[c.t.Dir] = append(groups[c.t.Dir], i)
	}
	if len(dirs) == 0 {
		return
	}
	found := make([]*Tampered, len(cands))
	forEachDir(ctx, s.FS, dirs, s.planner(true).workers(), func(dir string, d Dir, derr error) {
		if derr != nil {
			return // gone meanwhile: nothing to keep
		}
		for _, i := range groups[dir] {
			c, o := cands[i], owner[i]
			info, err := d.Lstat(c.t.Name)
			if err != nil || info.IsRegular() {
				continue // gone, or a file again: nothing odd to keep
			}
			t := &Tampered{Owner: *o, Info: info}
			t.WantMD5, t.HasMD5 = ex.md5(*o)
			t.WantSHA256, t.HasSHA256 = ex.sha256(*o)
			if info.IsSymlink() {
				t.Link, _ = d.Readlink(c.t.Name)
			}
			found[i] = t
		}
	})
	for _, t := range found {
		if t != nil {
			res.tampered = append(res.tampered, *t)
		}
	}
}

// expectations are the md5sums and manifests of the packages the check
// needs, each read once, only when a file must be compared.
type expectations struct {
	s    *System
	pkgs map[string]*dpkgdb.Package
	md5s map[string]map[string][16]byte // by package ID; present once read
	shas map[string]map[string][32]byte
	errs []error
}

func newExpectations(s *System) *expectations {
	return &expectations{s: s, pkgs: map[string]*dpkgdb.Package{}, md5s: map[string]map[string][16]byte{},
		shas: map[string]map[string][32]byte{}}
}

// pkg returns the installed package with this ID, or nil.
func (ex *expectations) pkg(id string) *dpkgdb.Package {
	if p, ok := ex.pkgs[id]; ok {
		return p
	}
	var found *dpkgdb.Package
	for _, p := range ex.s.DB.Lookup(id) {
		if p.ID() == id {
			found = p
			break
		}
	}
	ex.pkgs[id] = found
	return found
}

func (ex *expectations) md5(o Owner) ([16]byte, bool) {
	m, read := ex.md5s[o.Pkg]
	if !read {
		if p := ex.pkg(o.Pkg); p != nil {
			var bad []error
			var err error
			m, bad, err = ex.s.DB.MD5Sums(p)
			ex.errs = append(ex.errs, bad...)
			if err != nil {
				ex.errs = append(ex.errs, err)
			}
		}
		ex.md5s[o.Pkg] = m
	}
	v, ok := m[o.Path]
	return v, ok
}

func (ex *expectations) sha256(o Owner) ([32]byte, bool) {
	m, read := ex.shas[o.Pkg]
	if !read {
		if p := ex.pkg(o.Pkg); p != nil && ex.s.Manifest != nil {
			var err error
			if m, err = ex.s.Manifest(p); err != nil {
				ex.errs = append(ex.errs, err)
			}
		}
		ex.shas[o.Pkg] = m
	}
	v, ok := m[o.Path]
	return v, ok
}

// vouched reports whether a relock's record vouches for the candidate:
// it is immutable, with the stamps some owner's record has for it.
func (ex *expectations) vouched(sr *stampsReader, c checkCand) bool {
	for _, o := range c.owners {
		if p := ex.pkg(o.Pkg); p != nil {
			if st, ok := sr.of(p)[c.t.Info.Ident]; ok && st.matches(c.t.Info) {
				return true
			}
		}
	}
	return false
}

// keepEvidence hands each tampered file to System.Keep, with a way to
// read the very inode that was checked.
func (s *System) keepEvidence(ts []Tampered) []error {
	if s.Keep == nil {
		return nil
	}
	var errs []error
	for i := range ts {
		t := &ts[i]
		var open func() (io.ReadCloser, error)
		if t.target != nil {
			open = func() (io.ReadCloser, error) { return s.openTarget(t.target) }
		}
		where, err := s.Keep(*t, open)
		t.Evidence = where
		if err != nil {
			errs = append(errs, fmt.Errorf("seal: keeping the evidence of %s: %w", t.Owner.Real, err))
		}
	}
	return errs
}

// openTarget opens a target's regular file for reading: never a symlink,
// device or FIFO, and only the inode that was planned (Dir.Open).
func (s *System) openTarget(t *Target) (io.ReadCloser, error) {
	d, err := s.FS.OpenDir(t.Dir)
	if err != nil {
		return nil, err
	}
	f, err := d.Open(t.Name, t.Info.Ident)
	if err != nil {
		d.Close()
		return nil, err
	}
	return &dirFile{ReadCloser: f, d: d}, nil
}

// dirFile closes its directory with it.
type dirFile struct {
	io.ReadCloser
	d Dir
}

func (f *dirFile) Close() error { return errors.Join(f.ReadCloser.Close(), f.d.Close()) }

// processCPU is the CPU time (user+sys) this process used so far, for
// what the check costs (0 when the kernel does not say).
func processCPU() time.Duration {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
