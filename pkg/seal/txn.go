package seal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/policy"
)

func init() {
	policy.RegisterKey("unlock-scope", "string")
}

// Request says what a dpkg run, or a whole apt transaction, is about to
// do. The dpkghook package builds it from dpkg's command line or apt's
// Pre-Install-Pkgs lines.
type Request struct {
	Debs             []string `json:"debs,omitempty"`      // archives to unpack; with Recursive also directories
	Recursive        bool     `json:"recursive,omitempty"` // -R: find *.deb under the Debs directories
	Configure        []string `json:"configure,omitempty"` // package specs
	Remove           []string `json:"remove,omitempty"`    // package specs to remove or purge
	TriggersOnly     []string `json:"triggers_only,omitempty"`
	ConfigurePending bool     `json:"configure_pending,omitempty"`
	RemovePending    bool     `json:"remove_pending,omitempty"`
	PurgePending     bool     `json:"purge_pending,omitempty"`
	TriggersPending  bool     `json:"triggers_pending,omitempty"`
	NoTriggers       bool     `json:"no_triggers,omitempty"` // --no-triggers: triggers are only recorded
	// Unknown: what dpkg will do cannot be told (no command line): unlock
	// everything sealed.
	Unknown string `json:"unknown,omitempty"`
}

// Empty reports whether the request touches nothing.
func (r Request) Empty() bool {
	return len(r.Debs) == 0 && len(r.Configure) == 0 && len(r.Remove) == 0 && len(r.TriggersOnly) == 0 &&
		!r.ConfigurePending && !r.RemovePending && !r.PurgePending && !r.TriggersPending && r.Unknown == ""
}

// DebInfo is what a transaction needs to know about an archive before dpkg
// unpacks it: read from the control member only (pkg/deb).
type DebInfo struct {
	Path                                  string
	Package, Version, Arch, MultiArch     string
	Replaces, Conflicts, Breaks, Provides string
	Paths                                 []string            // regular files from md5sums, plus conffiles
	MD5                                   map[string][16]byte // md5sums, by absolute path
	Scripts                               map[string][]byte   // preinst, postinst, prerm, postrm
	Triggers                              []debfmt.Trigger
}

// System is one target system: root, database, policy, sealed state.
type System struct {
	Root     string
	Admindir string
	Config   string // path of debseal.conf
	FS       FS
	DB       *dpkgdb.DB
	Policy   *policy.Config
	State    *State
	// ReadDeb reads an archive's control information (pkg/deb).
	ReadDeb func(path string) (*DebInfo, error)
	// Alive reports whether a transaction's process still runs.
	Alive func(Process) bool
	// Record, when set, is called by End with the packages it relocked and
	// the archives of the transaction (those apt or dpkg was given), before
	// the journal goes: the audit records its manifests there. Its error
	// is reported, not fatal.
	// digests are what End read of the files it verified (MD5 and
	// SHA-256 in one read), so they need not be read again.
	Record  func(ctx context.Context, pkgs []*dpkgdb.Package, debs []DebRef, digests Digests) error
	Workers int
	// Fresh says the database and state were read after the dpkg run the
	// next End follows (a post-invoke hook is a new process): that End
	// does not read them again. End clears it.
	Fresh bool
}

func (s *System) planner(forUnlock bool) *Planner {
	return &Planner{DB: s.DB, Policy: s.Policy, FS: s.FS, Workers: s.Workers, ForUnlock: forUnlock}
}

// Reload re-reads the database, the policy and the state (after dpkg ran).
func (s *System) Reload() error {
	db, err := dpkgdb.Open(s.Admindir)
	if err != nil {
		return err
	}
	st, err := LoadState(s.Root)
	if err != nil {
		return err
	}
	s.DB, s.State = db, st
	return nil
}

// BeginReport says what Begin did.
type BeginReport struct {
	Journal  *Journal
	Names    []string // IDs of the packages whose files were considered
	Packages int      // how many
	Unlocked int      // inodes unlocked
	All      bool     // everything sealed was unlocked
	Reason   string   // why everything
	Skipped  string   // non-empty: nothing to do, and why
}

// Begin prepares the system for a dpkg run: it works out which locked
// files the run may change, records them durably in a journal owned by
// owner, and unlocks them. When it cannot tell, it unlocks everything
// sealed (and says why): a superset is slower but never breaks dpkg.
func (s *System) Begin(ctx context.Context, req Request, owner Process) (*BeginReport, error) {
	if !s.State.Any() {
		return &BeginReport{Skipped: "nothing is sealed"}, nil
	}
	sc, err := s.scope(req)
	if err != nil {
		return nil, err
	}
	rep := &BeginReport{All: sc.all, Reason: sc.reason}
	var pkgs []*dpkgdb.Package
	if sc.all {
		for _, p := range s.DB.Packages {
			if p.HasFiles() {
				pkgs = append(pkgs, p)
			}
		}
	} else {
		pkgs = sc.packages()
	}
	rep.Packages = len(pkgs)
	if !sc.all {
		for _, p := range pkgs {
			rep.Names = append(rep.Names, p.ID())
		}
	}
	plan, err := s.planner(true).Plan(ctx, pkgs)
	if err != nil {
		return nil, err
	}
	targets := plan.Targets
	extra, err := s.pathTargets(ctx, sc.paths)
	if err != nil {
		return nil, err
	}
	// Most paths scripts name belong to the packages already planned
	// (man-db's postinst names /usr/bin/mandb): drop those before
	// looking for owners, which reads every package's list.
	planned := make(map[[2]uint64]bool, len(targets))
	for _, t := range targets {
		planned[[2]uint64{t.Info.Dev, t.Info.Ino}] = true
	}
	kept := extra[:0]
	for _, t := range extra {
		if !planned[[2]uint64{t.Info.Dev, t.Info.Ino}] {
			kept = append(kept, t)
		}
	}
	extra = kept
	if len(extra) > 0 {
		// Locked files of other packages that a script or an archive
		// names: record who owns them, because the run may move them
		// (dpkg-divert --rename) and their owners must be relocked
		// wherever they end up.
		if err := s.setOwners(extra); err != nil {
			return nil, err
		}
	}
	targets = append(targets, extra...)
	var locked []*Target
	seen := map[[2]uint64]bool{}
	for _, t := range targets {
		k := [2]uint64{t.Info.Dev, t.Info.Ino}
		if seen[k] {
			continue
		}
		seen[k] = true
		if set, known := t.Info.Immutable(); set || !known {
			locked = append(locked, t)
		}
	}

	j := &Journal{Version: journalVersion, Owner: owner, Created: time.Now().UTC(), Request: req,
		All: sc.all, Reason: sc.reason}
	ids := map[string]bool{}
	for _, p := range pkgs {
		ids[p.ID()] = true
	}
	for _, t := range extra {
		for _, o := range t.Owners {
			if o.Pkg != "" {
				ids[o.Pkg] = true
			}
		}
	}
	j.Packages = sortedKeys(ids)
	for _, d := range sc.debs {
		j.Debs = append(j.Debs, DebRef{Path: d.Path, Package: d.Package, Arch: d.Arch})
		j.NewPackages = append(j.NewPackages, d.Package)
	}
	before, err := s.listedFiles(sc.primary)
	if err != nil {
		return nil, err
	}
	j.Before = before
	for _, t := range locked {
		e := Entry{Path: t.Path(), Dev: t.Info.Dev, Ino: t.Info.Ino, Size: t.Info.Size, Mtime: t.Info.Mtime}
		seenPkg := map[string]bool{}
		for _, o := range t.Owners {
			if o.Pkg != "" && !seenPkg[o.Pkg] {
				seenPkg[o.Pkg] = true
				e.Pkgs = append(e.Pkgs, o.Pkg)
			}
		}
		j.Unlocked = append(j.Unlocked, e)
	}
	// One owner, one journal. A long-lived front-end (packagekitd,
	// unattended-upgrades) runs one apt transaction after another in the
	// same process; when one ended without its Post-Invoke (apt skips it
	// after a failed hook), its journal is still there and what it
	// unlocked must stay on record: merge instead of overwriting.
	if old, err := FindJournal(s.Root, owner); err != nil {
		return nil, err
	} else if old != nil {
		j.merge(old)
	}
	// Durable before anything is unlocked: a crash after this point is
	// recovered from the journal.
	if err := j.save(s.Root, len(j.Unlocked) > 0); err != nil {
		return nil, err
	}
	rep.Journal = j
	sum := Apply(ctx, s.FS, locked, false, s.Workers, nil)
	rep.Unlocked = sum.Changed
	if len(sum.Errors) > 0 {
		// dpkg would fail on these files half-way; refuse before it
		// starts, and put back what was unlocked.
		undo := Apply(ctx, s.FS, locked, true, s.Workers, nil)
		if len(undo.Errors) == 0 {
			j.remove()
		}
		return rep, fmt.Errorf("seal: cannot unlock %d files, first: %w", len(sum.Errors), sum.Errors[0])
	}
	return rep, nil
}

// scope is what a request touches.
type scope struct {
	primary map[string]*dpkgdb.Package // replaced, removed, configured: their old files are compared after the run
	others  map[string]*dpkgdb.Package // their scripts run or their files may be overwritten
	paths   []string                   // locked files named by scripts or shipped by new archives
	debs    []*DebInfo
	all     bool
	reason  string
}

func (sc *scope) packages() []*dpkgdb.Package {
	var out []*dpkgdb.Package
	for id, p := range sc.primary {
		if _, dup := sc.others[id]; !dup {
			out = append(out, p)
		}
	}
	for _, p := range sc.others {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID() < out[j].ID() })
	return out
}

func (sc *scope) escalate(reason string) {
	if !sc.all {
		sc.all, sc.reason = true, reason
	}
}

// scope works out what a request touches. See the package documentation
// in DESIGN terms: the old files of every package being unpacked, removed,
// purged or configured; installed packages the new archives replace or
// conflict with; files the new archives ship that are locked now (whoever
// owns them); packages whose triggers the run activates or that have
// triggers pending; and locked files that maintainer scripts name. Anything
// undecidable escalates to everything.
func (s *System) scope(req Request) (*scope, error) {
	sc := &scope{primary: map[string]*dpkgdb.Package{}, others: map[string]*dpkgdb.Package{}}
	if req.Unknown != "" {
		sc.escalate(req.Unknown)
	}
	if s.Policy.LockDirectories {
		sc.escalate("lock-directories is on: every dpkg run unlocks everything")
	}
	if s.Policy.Setting("unlock-scope") == "all" {
		sc.escalate("unlock-scope = all")
	}
	add := func(m map[string]*dpkgdb.Package, ps []*dpkgdb.Package) {
		for _, p := range ps {
			if p.HasFiles() {
				m[p.ID()] = p
			}
		}
	}
	lookup := func(specs []string) []*dpkgdb.Package {
		var out []*dpkgdb.Package
		for _, sp := range specs {
			out = append(out, s.DB.Lookup(sp)...)
		}
		return out
	}
	// Archives.
	debs, err := expandDebs(req.Debs, req.Recursive)
	if err != nil {
		sc.escalate(err.Error())
	}
	for _, d := range debs {
		info, err := s.ReadDeb(d)
		if err != nil {
			sc.escalate(fmt.Sprintf("cannot read %s: %v", d, err))
			continue
		}
		sc.debs = append(sc.debs, info)
		add(sc.primary, s.DB.Lookup(info.Package)) // every architecture: M-A same instances share files
		// dpkg may remove what the archive conflicts with and lose (as
		// "disappeared") what it replaces: their old files are compared
		// after the run like a removal's. What it breaks is only
		// deconfigured.
		for _, field := range []string{info.Replaces, info.Conflicts} {
			for _, name := range dpkgdb.RelationNames(field) {
				add(sc.primary, s.DB.Providers(name))
			}
		}
		for _, name := range dpkgdb.RelationNames(info.Breaks) {
			add(sc.others, s.DB.Providers(name))
		}
		// Files land at their diverted location when another package
		// diverts them: consider both.
		div, err := s.DB.Diversions()
		if err != nil {
			return nil, err
		}
		for _, p := range info.Paths {
			sc.paths = append(sc.paths, p)
			if r := div.Resolve(p, info.Package); r != p {
				sc.paths = append(sc.paths, r)
			}
		}
	}
	// Named packages and --pending sets.
	add(sc.primary, lookup(req.Configure))
	add(sc.primary, lookup(req.Remove))
	add(sc.others, lookup(req.TriggersOnly))
	for _, p := range s.DB.Packages {
		switch {
		case req.ConfigurePending && p.State >= dpkgdb.StateUnpacked && p.State < dpkgdb.StateInstalled:
			add(sc.primary, []*dpkgdb.Package{p})
		case req.RemovePending && (p.Want == dpkgdb.WantDeinstall || p.Want == dpkgdb.WantPurge) && p.State > dpkgdb.StateConfigFiles:
			add(sc.primary, []*dpkgdb.Package{p})
		case req.PurgePending && p.Want == dpkgdb.WantPurge && p.State > dpkgdb.StateNotInstalled:
			add(sc.primary, []*dpkgdb.Package{p})
		}
		// Pending triggers are processed by any run that processes
		// triggers: their packages' scripts run.
		if p.State == dpkgdb.StateTriggersPending || p.State == dpkgdb.StateTriggersAwaited {
			add(sc.others, []*dpkgdb.Package{p})
		}
	}
	// Maintainer scripts: of the new archives and of the installed
	// packages involved.
	var scans []ScriptScan
	for _, d := range sc.debs {
		for _, name := range sortedScriptNames(d.Scripts) {
			scans = append(scans, ScanScript(d.Package+"."+name, d.Scripts[name]))
		}
	}
	scanned := map[string]bool{}
	scanPkgs := func() error {
		for _, p := range sc.packages() {
			if scanned[p.ID()] {
				continue
			}
			scanned[p.ID()] = true
			for _, kind := range []string{"preinst", "postinst", "prerm", "postrm"} {
				b, err := s.DB.ReadInfo(p, kind)
				if err != nil {
					return err
				}
				if b != nil {
					scans = append(scans, ScanScript(p.ID()+"."+kind, b))
				}
			}
		}
		return nil
	}
	if err := scanPkgs(); err != nil {
		return nil, err
	}
	// Triggers the run activates: their interested packages run their
	// postinst. With --no-triggers they are only recorded (and processed,
	// with their packages in the plan, by a later run).
	if !req.NoTriggers {
		if err := s.addTriggered(sc, scans); err != nil {
			return nil, err
		}
		if err := scanPkgs(); err != nil {
			return nil, err
		}
	}
	for _, scn := range scans {
		if scn.Escalate != "" {
			sc.escalate(scn.Escalate)
		}
		sc.paths = append(sc.paths, scn.Paths...)
	}
	return sc, nil
}

func sortedScriptNames(m map[string][]byte) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// addTriggered adds the packages interested in the triggers the request
// activates: file triggers matched by the new archives' files and the
// involved packages' files, explicit triggers activated by archives,
// installed packages and scripts.
func (s *System) addTriggered(sc *scope, scans []ScriptScan) error {
	in, err := s.DB.Triggers()
	if err != nil {
		return err
	}
	names := map[string]bool{}
	unknown := false
	for _, scn := range scans {
		for _, t := range scn.Triggers {
			names[t] = true
		}
		unknown = unknown || scn.UnknownTriggers
	}
	var paths []string
	for _, d := range sc.debs {
		for _, t := range d.Triggers {
			if !t.Interest() {
				names[t.Name] = true
			}
		}
		paths = append(paths, d.Paths...)
	}
	for _, p := range sc.packages() {
		b, err := s.DB.ReadInfo(p, "triggers")
		if err != nil {
			return err
		}
		if b != nil {
			ts, _, _ := debfmt.ParseTriggers(strings.NewReader(string(b)), s.DB.InfoPath(p, "triggers"))
			for _, t := range ts {
				if !t.Interest() {
					names[t.Name] = true
				}
			}
		}
		files, err := s.DB.Files(p)
		if err == nil {
			paths = append(paths, files...)
		}
	}
	var interested []string
	for _, p := range paths {
		interested = append(interested, in.Interested(p)...)
	}
	for n := range names {
		if strings.HasPrefix(n, "/") {
			interested = append(interested, in.Interested(n)...)
		} else {
			interested = append(interested, in.Explicit[n]...)
		}
	}
	if unknown {
		// A script activates a trigger computed at run time: every
		// package with an interest may run.
		for _, fi := range in.File {
			interested = append(interested, fi.Pkg)
		}
		for _, pkgs := range in.Explicit {
			interested = append(interested, pkgs...)
		}
	}
	for _, spec := range interested {
		for _, p := range s.DB.Lookup(spec) {
			if p.HasFiles() {
				sc.others[p.ID()] = p
			}
		}
	}
	return nil
}

// expandDebs returns the archives of a request: the files, and with -R the
// *.deb files under the directories (following symlinks, as dpkg does).
func expandDebs(args []string, recursive bool) ([]string, error) {
	if !recursive {
		return args, nil
	}
	var out []string
	for _, a := range args {
		err := walkFollow(a, func(p string) {
			if strings.HasSuffix(p, ".deb") {
				out = append(out, p)
			}
		}, 0)
		if err != nil {
			return out, fmt.Errorf("reading %s: %w", a, err)
		}
	}
	sort.Strings(out)
	return out, nil
}

func walkFollow(p string, fn func(string), depth int) error {
	if depth > 16 {
		return fmt.Errorf("%s: too deep", p)
	}
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		if fi.Mode().IsRegular() {
			fn(p)
		}
		return nil
	}
	ents, err := os.ReadDir(p)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := walkFollow(filepath.Join(p, e.Name()), fn, depth+1); err != nil {
			return err
		}
	}
	return nil
}

// pathTargets stats paths (inside the root) and returns those that are
// locked regular files or directories: files a script names or an archive
// will replace, whoever owns them.
func (s *System) pathTargets(ctx context.Context, paths []string) ([]*Target, error) {
	if len(paths) == 0 {
		return nil, nil
	}
	uniq := map[string]bool{}
	var ps []string
	for _, p := range paths {
		if !uniq[p] {
			uniq[p] = true
			ps = append(ps, p)
		}
	}
	infos, errs := s.planner(true).statAll(ctx, ps)
	var out []*Target
	for i, p := range ps {
		if errs[i] != nil {
			continue // absent: nothing to unlock
		}
		info := infos[i]
		if !info.IsRegular() && !info.IsDir() {
			continue
		}
		if set, known := info.Immutable(); known && !set {
			continue
		}
		out = append(out, &Target{Dir: path.Dir(p), Name: path.Base(p), Info: info, Owners: []Owner{{Path: p, Real: p}}})
	}
	return out, nil
}

// listedFiles returns the non-directory paths the packages list now.
func (s *System) listedFiles(pkgs map[string]*dpkgdb.Package) ([]Listed, error) {
	div, err := s.DB.Diversions()
	if err != nil {
		return nil, err
	}
	var out []Listed
	ids := make([]string, 0, len(pkgs))
	for id := range pkgs {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		p := pkgs[id]
		files, err := s.DB.Files(p)
		if errors.Is(err, fs.ErrNotExist) {
			// dpkg assumes a package whose list is missing has no files,
			// and goes on: so must a hook, or it would stop dpkg from
			// ever repairing such a package.
			continue
		}
		if err != nil {
			return nil, err
		}
		parents := map[string]bool{}
		for _, f := range files {
			parents[path.Dir(f)] = true
		}
		for _, f := range files {
			if f == "/" || parents[f] {
				continue // a directory
			}
			l := Listed{Pkg: p.ID(), Path: f}
			if r := div.Resolve(f, p.Name); r != f {
				l.Real = r
			}
			out = append(out, l)
		}
	}
	return out, nil
}

// EndReport says what End (or a recovery) did.
type EndReport struct {
	Locked      int        // inodes locked
	Already     int        // already locked
	Packages    []string   // packages relocked
	Pending     []string   // sealed packages left unlocked until dpkg configures them
	Mismatches  []Mismatch // files that differ from their md5sums after dpkg wrote them: not locked
	Orphans     []Listed   // old files nobody owns any more but still on disk
	Unsupported int
	Errors      []error
	Recovered   bool // End ran for a dead transaction
}

// End relocks after dpkg: it rereads the database, locks every sealed,
// configured package the transaction touched (from the post-run lists:
// new files are new inodes), verifies the files dpkg wrote against the
// packages' md5sums first, reports old files that are now owned by no one,
// and removes the journal. j may be nil (nothing was unlocked, but
// packages may still need locking).
func (s *System) End(ctx context.Context, j *Journal) (*EndReport, error) {
	if !s.Fresh {
		if err := s.Reload(); err != nil {
			return nil, err
		}
	}
	s.Fresh = false
	rep := &EndReport{}
	if !s.State.Any() {
		// Sealing was switched off meanwhile: leave everything as it is.
		if j != nil {
			return rep, j.remove()
		}
		return rep, nil
	}
	start := time.Now()
	names := map[string]bool{}
	if j != nil {
		for _, id := range j.Packages {
			names[strings.SplitN(id, ":", 2)[0]] = true
		}
		for _, n := range j.NewPackages {
			names[n] = true
		}
	}
	pending, err := loadPending(s.Root)
	if err != nil {
		return nil, err
	}
	for n := range pending {
		names[n] = true
	}
	changed, err := s.changedSinceSync()
	if err != nil {
		return nil, err
	}
	for _, n := range changed {
		names[n] = true
	}
	var lock []*dpkgdb.Package
	newPending := map[string]bool{}
	addPkg := func(p *dpkgdb.Package) {
		if !s.State.Sealed(p.Name) || s.Policy.PackageExcluded(p.Name) {
			return
		}
		switch {
		case p.Configured():
			lock = append(lock, p)
		case p.State >= dpkgdb.StateHalfInstalled:
			newPending[p.Name] = true
			rep.Pending = append(rep.Pending, p.ID())
		}
	}
	for n := range names {
		for _, p := range s.DB.Lookup(n) {
			addPkg(p)
		}
	}
	// Every package whose file was unlocked, wherever the run moved it.
	if j != nil {
		for _, e := range j.Unlocked {
			for _, id := range e.Pkgs {
				n := strings.SplitN(id, ":", 2)[0]
				if !names[n] {
					names[n] = true
					for _, p := range s.DB.Lookup(n) {
						addPkg(p)
					}
				}
			}
		}
	}
	sort.Slice(lock, func(a, b int) bool { return lock[a].ID() < lock[b].ID() })
	for _, p := range lock {
		rep.Packages = append(rep.Packages, p.ID())
	}
	pl := s.planner(false)
	plan, err := pl.Plan(ctx, lock)
	if err != nil {
		return nil, err
	}
	rep.Errors = append(rep.Errors, plan.Errors...)
	for _, id := range plan.Failed() {
		rep.Errors = append(rep.Errors, fmt.Errorf("package %s not relocked: %w", id, plan.Packages[id]))
	}
	// Verify what dpkg wrote: every target that is not an inode debseal
	// unlocked itself, unchanged.
	unchanged := map[[2]uint64]Entry{}
	if j != nil {
		for _, e := range j.Unlocked {
			unchanged[[2]uint64{e.Dev, e.Ino}] = e
		}
	}
	var toVerify, trusted []*Target
	for _, t := range plan.Targets {
		if set, known := t.Info.Immutable(); known && set {
			trusted = append(trusted, t) // already locked: nothing to do
			continue
		}
		if e, ok := unchanged[[2]uint64{t.Info.Dev, t.Info.Ino}]; ok && e.Size == t.Info.Size && e.Mtime == t.Info.Mtime {
			trusted = append(trusted, t)
			continue
		}
		toVerify = append(toVerify, t)
	}
	var vr *VerifyResult
	if s.Record != nil {
		vr = pl.VerifyDigests(ctx, toVerify, nil) // one read for the md5sums check and the manifest
	} else {
		vr = pl.Verify(ctx, toVerify, nil)
	}
	rep.Mismatches = vr.Mismatches
	rep.Errors = append(rep.Errors, vr.Errors...)
	if j != nil {
		rep.Mismatches = append(rep.Mismatches, s.crossCheckDebs(j)...)
	}
	targets := append(trusted, vr.OK...)
	targets = append(targets, vr.Unverified...)
	sum := Apply(ctx, s.FS, targets, true, s.Workers, nil)
	rep.Locked, rep.Already = sum.Changed, sum.Already
	rep.Unsupported = sum.UnsupportedCount()
	rep.Errors = append(rep.Errors, sum.Errors...)
	// A package that could not be relocked stays pending: the journal goes
	// below, and without this nothing would ever retry it (the sync stamp
	// moves past its list too). Every later End, and debseal recover,
	// tries again and reports the error again until it succeeds.
	for _, id := range plan.Failed() {
		newPending[strings.SplitN(id, ":", 2)[0]] = true
	}
	for _, o := range sum.Outcomes {
		if o.Err != nil && !o.Unsupported() {
			for _, ow := range o.Target.Owners {
				newPending[strings.SplitN(ow.Pkg, ":", 2)[0]] = true
			}
		}
	}

	if s.Record != nil && len(lock) > 0 {
		var debs []DebRef
		if j != nil {
			debs = j.Debs
		}
		if err := s.Record(ctx, lock, debs, vr.Digests); err != nil {
			rep.Errors = append(rep.Errors, fmt.Errorf("recording manifests: %w", err))
		}
	}
	if j != nil {
		orphans, err := s.orphans(j)
		if err != nil {
			rep.Errors = append(rep.Errors, err)
		}
		rep.Orphans = orphans
	}
	if err := savePending(s.Root, pending, newPending); err != nil {
		rep.Errors = append(rep.Errors, err)
	}
	if err := s.markSynced(start); err != nil {
		rep.Errors = append(rep.Errors, err)
	}
	if j != nil {
		if err := j.remove(); err != nil {
			rep.Errors = append(rep.Errors, err)
		}
	}
	return rep, nil
}

// crossCheckDebs compares each archive's md5sums (from the .deb, when it
// is still there) with the md5sums dpkg installed: a difference means the
// installed md5sums file was changed, and verification against it proves
// nothing.
func (s *System) crossCheckDebs(j *Journal) []Mismatch {
	var out []Mismatch
	for _, ref := range j.Debs {
		info, err := s.ReadDeb(ref.Path)
		if err != nil || info.MD5 == nil {
			continue // apt may have cleaned its cache; nothing to compare
		}
		for _, p := range s.DB.Lookup(ref.Package + ":" + ref.Arch) {
			if p.Version != info.Version {
				continue
			}
			installed, _, err := s.DB.MD5Sums(p)
			if err != nil {
				continue
			}
			for path, want := range info.MD5 {
				if got, ok := installed[path]; ok && got != want {
					out = append(out, Mismatch{Owner: Owner{Pkg: p.ID(), Path: path, Real: path}, Want: want, Got: got,
						Target: &Target{Dir: filepath.Dir(path), Name: filepath.Base(path)}})
				}
			}
		}
	}
	return out
}

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

// RecoverReport is the outcome of recovering one stale transaction.
type RecoverReport struct {
	Journal *Journal
	End     *EndReport
	Skipped string // not recovered, and why
}

// Recover ends every transaction whose process is gone: it relocks what a
// crashed run left unlocked. Transactions still running are left alone,
// and so is everything while a dpkg holds its lock (it would fail on files
// relocked under it). With force, live owners are ignored (debseal recover
// --force, for a wedged process).
func (s *System) Recover(ctx context.Context, force bool) ([]RecoverReport, []error) {
	js, errs := Journals(s.Root)
	var out []RecoverReport
	for _, j := range js {
		if !force && s.Alive != nil && s.Alive(j.Owner) {
			out = append(out, RecoverReport{Journal: j, Skipped: fmt.Sprintf("process %d (%s) still runs", j.Owner.Pid, j.Owner.Via)})
			continue
		}
		release, err := HoldDpkgLock(s.Admindir)
		if err != nil {
			out = append(out, RecoverReport{Journal: j, Skipped: err.Error()})
			continue
		}
		end, err := s.End(ctx, j)
		release()
		if err != nil {
			errs = append(errs, fmt.Errorf("recovering %s: %w", j.Path(), err))
			continue
		}
		end.Recovered = true
		out = append(out, RecoverReport{Journal: j, End: end})
	}
	return out, errs
}
