package seal

import (
	"context"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
)

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
	// the journal goes: the CLI records their manifests there (pkg/manifest).
	// Its error is reported, not fatal.
	// digests are what End read of the files it verified (MD5 and
	// SHA-256 in one read), so they need not be read again.
	Record func(ctx context.Context, pkgs []*dpkgdb.Package, debs []DebRef, digests Digests) error
	// Forget, when set, is called by End with the packages (name and
	// architecture) the transaction removed or purged: the CLI deletes
	// their manifests there. Its error is reported, not fatal.
	Forget func(gone []PkgArch) error
	// Manifest, when set, returns the SHA-256 debseal's manifest records
	// for each regular file of p, by listed path (nil: none, or none for
	// its installed version): the check before an unlock compares with
	// it as with the md5sums.
	Manifest func(p *dpkgdb.Package) (map[string][32]byte, error)
	// Cached, when set, is asked by that check for digests read earlier
	// (the audit's incremental cache) of the files no relock record
	// vouches for, which would cost reading bytes: it returns a lookup,
	// or nil when it has none or loading it would cost more than reading
	// the files. The lookup gives the digests of a file only if it is
	// immutable and has the stamps it had when it was read.
	Cached func(bytes int64) func(info fsattr.Info) (Known, bool)
	// Keep, when set, is called by Begin with each tampered file it found
	// before unlocking anything, and open to read the very inode it
	// checked (nil when it is not a regular file): the CLI keeps the
	// evidence there (pkg/evidence). It says where, or why not; its error
	// is reported, never fatal.
	Keep    func(t Tampered, open func() (io.ReadCloser, error)) (string, error)
	Workers int
	// Ours reports whether a process belongs to this run (the dpkg a hook
	// serves, the apt above it): a dpkg lock it holds does not make the
	// system busy. nil: no process is ours.
	Ours func(pid int) bool
	// holdsDpkgLock: Recover holds dpkg's lock (Busy does not ask).
	holdsDpkgLock bool
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
	// Errors are files that could not be unlocked. They do not stop dpkg:
	// it may not need them, and if it does it fails on them as it would
	// on any unwritable file. Each is logged.
	Errors []error
	// Ignored counts locked paths that scripts or archives name but that
	// no sealed package owns: debseal never touches them.
	Ignored int
	// What the check before the unlock found (checkBeforeUnlock): the
	// sealed files it looked at, how many of them it read (the others'
	// stamps vouched for them), the tampered ones, and what it could not
	// check or keep. None of it stops dpkg unless refuse-tampered-upgrade
	// is on and Tampered is not empty.
	Checked, Read int
	// CheckTime and CheckCPU are what the check took: wall time, and this
	// process's CPU time (user+sys) meanwhile.
	CheckTime, CheckCPU time.Duration
	Tampered            []Tampered
	CheckErrors         []error
}

// Begin prepares the system for a dpkg run: it works out which locked
// files the run may change, records them durably in a journal owned by
// owner, and unlocks them. When it cannot tell, it unlocks everything
// sealed (and says why): a superset is slower but never breaks dpkg.
//
// Before unlocking, it checks the sealed files the run may replace
// against what debseal knows of them (checkBeforeUnlock: the relock's
// stamps, else the md5sums and manifests) and hands each tampered one to
// Keep: dpkg is about to overwrite the evidence. With
// refuse-tampered-upgrade it then fails with a *TamperedError before
// anything is journaled or unlocked.
//
// Begin is all or nothing: when it fails (the journal cannot be written,
// the context is cancelled half-way) it relocks what it had unlocked and
// leaves no journal behind. A file that cannot be unlocked is not a
// failure (BeginReport.Errors). Only sealed package files are ever
// touched: a path a script names that no sealed package owns (/proc/1/
// environ, a file in /tmp) is ignored.
func (s *System) Begin(ctx context.Context, req Request, owner Process) (*BeginReport, error) {
	if !s.State.Any() {
		return &BeginReport{Skipped: "nothing is sealed"}, nil
	}
	sc, err := s.scope(req)
	if err != nil {
		return nil, err
	}
	rep := &BeginReport{All: sc.all, Reason: sc.reason}
	pkgs := sc.packages()
	if sc.all {
		pkgs = pkgs[:0]
		for _, p := range s.DB.Packages {
			if p.HasFiles() {
				pkgs = append(pkgs, p)
			}
		}
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
	extra, ignored, err := s.namedTargets(ctx, sc.paths, plan.Targets)
	if err != nil {
		return nil, err
	}
	rep.Ignored = ignored
	// Evidence before anything is unlocked: dpkg is about to replace
	// these files.
	checkStart, cpuStart := time.Now(), processCPU()
	chk := s.checkBeforeUnlock(ctx, sc, plan, extra)
	rep.Checked, rep.Read, rep.Tampered = chk.checked, chk.read, chk.tampered
	rep.CheckErrors = append(chk.errs, s.keepEvidence(rep.Tampered)...)
	rep.CheckTime, rep.CheckCPU = time.Since(checkStart), processCPU()-cpuStart
	if len(rep.Tampered) > 0 && s.Policy.RefuseTampered {
		return rep, &TamperedError{Files: rep.Tampered}
	}
	locked := lockedTargets(append(plan.Targets, extra...))
	j := s.newJournal(owner, req, sc, pkgs, extra)
	before, err := s.listedFiles(sc.primary)
	if err != nil {
		return nil, err
	}
	j.Before = before
	j.Unlocked = journalEntries(locked, chk.good)
	// One owner, one journal. A long-lived front-end (packagekitd,
	// unattended-upgrades) runs one apt transaction after another in the
	// same process; when one ended without its Post-Invoke (apt skips it
	// after a failed hook), its journal is still there and what it
	// unlocked must stay on record: merge instead of overwriting.
	old, err := findJournal(s.Root, owner)
	if err != nil {
		return nil, err
	}
	if old != nil {
		j.merge(old)
	}
	// Durable before anything is unlocked: a crash after this point is
	// recovered from the journal. A journal that cannot be written stops
	// here, with nothing changed.
	if err := j.save(s.Root, len(j.Unlocked) > 0); err != nil {
		return nil, fmt.Errorf("seal: recording the transaction before unlocking: %w", err)
	}
	rep.Journal = j
	sum := Apply(ctx, s.FS, locked, false, s.Workers, nil)
	rep.Unlocked = sum.Changed
	if err := ctx.Err(); err != nil {
		return rep, s.rollback(ctx, j, old, sum, err)
	}
	rep.Errors = sum.Errors
	return rep, nil
}

// rollback puts back what a failed Begin unlocked. The journal goes only
// when everything was relocked (or an older journal of the same owner
// still covers it); otherwise it stays, so that recovery finishes the job.
func (s *System) rollback(ctx context.Context, j, old *Journal, sum *Summary, cause error) error {
	var changed []*Target
	for _, o := range sum.Outcomes {
		if o.Changed {
			changed = append(changed, o.Target)
		}
	}
	undo := Apply(context.WithoutCancel(ctx), s.FS, changed, true, s.Workers, nil)
	if len(undo.Errors) > 0 {
		return fmt.Errorf("seal: %w; relocking what was unlocked failed too (%w): the journal %s stays for debseal recover",
			cause, undo.Errors[0], j.Path())
	}
	if old != nil {
		if err := old.save(s.Root, true); err != nil {
			return fmt.Errorf("seal: %w; restoring the earlier journal: %w", cause, err)
		}
		return fmt.Errorf("seal: %w (what was unlocked is locked again)", cause)
	}
	if err := j.remove(); err != nil {
		return fmt.Errorf("seal: %w; removing the journal: %w", cause, err)
	}
	return fmt.Errorf("seal: %w (what was unlocked is locked again)", cause)
}

// namedTargets returns the locked sealed package files among paths that
// scripts name or archives ship, beyond the planned targets, with their
// owners; ignored counts the locked paths that no sealed package owns.
func (s *System) namedTargets(ctx context.Context, paths []string, planned []*Target) ([]*Target, int, error) {
	cands, err := s.pathTargets(ctx, paths)
	if err != nil || len(cands) == 0 {
		return nil, 0, err
	}
	// Most paths scripts name belong to the packages already planned
	// (man-db's postinst names /usr/bin/mandb): drop those before
	// looking for owners, which reads every package's list.
	have := make(map[[2]uint64]bool, len(planned))
	for _, t := range planned {
		have[[2]uint64{t.Info.Dev, t.Info.Ino}] = true
	}
	// A named file that is unlocked already matters only when another
	// live transaction unlocked it: this run may need it too, so its
	// owners go on this run's record, and the other run's End leaves them
	// to this one (without this, that End could relock the file just as
	// this run's dpkg gets the lock). Its owners come from that journal.
	others := s.liveEntries()
	var out []*Target
	kept := cands[:0]
	for _, t := range cands {
		k := [2]uint64{t.Info.Dev, t.Info.Ino}
		switch set, known := t.Info.Immutable(); {
		case have[k]:
		case known && !set:
			if e, ok := others[k]; ok {
				t.Owners = nil
				for _, id := range e.Pkgs {
					t.Owners = append(t.Owners, Owner{Pkg: id, Path: e.Path, Real: t.Path()})
				}
				out = append(out, t)
			}
		default:
			kept = append(kept, t)
		}
	}
	if len(kept) == 0 {
		return out, 0, nil
	}
	// Locked files of other packages: record who owns them, because the
	// run may move them (dpkg-divert --rename) and their owners must be
	// relocked wherever they end up. What no sealed package owns is not
	// debseal's to touch.
	if err := s.setOwners(kept); err != nil {
		return nil, 0, err
	}
	ignored := 0
	for _, t := range kept {
		if s.sealedOwner(t) {
			out = append(out, t)
		} else {
			ignored++
		}
	}
	return out, ignored, nil
}

func (s *System) sealedOwner(t *Target) bool {
	for _, o := range t.Owners {
		if s.State.Sealed(strings.SplitN(o.Pkg, ":", 2)[0]) {
			return true
		}
	}
	return false
}

// lockedTargets returns the targets that are (or may be) locked, each
// inode once.
func lockedTargets(targets []*Target) []*Target {
	var out []*Target
	seen := map[[2]uint64]bool{}
	for _, t := range targets {
		k := [2]uint64{t.Info.Dev, t.Info.Ino}
		if seen[k] {
			continue
		}
		seen[k] = true
		if set, known := t.Info.Immutable(); set || !known {
			out = append(out, t)
		}
	}
	return out
}

func (s *System) newJournal(owner Process, req Request, sc *scope, pkgs []*dpkgdb.Package, extra []*Target) *Journal {
	j := &Journal{Version: journalVersion, Owner: owner, Created: time.Now().UTC(), Request: req,
		All: sc.all, Reason: sc.reason}
	ids, arches := map[string]bool{}, map[string]bool{}
	for _, p := range pkgs {
		ids[p.ID()] = true
		arches[p.Arch] = true
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
		arches[d.Arch] = true
	}
	j.Arches = sortedKeys(arches)
	return j
}

// journalEntries records what is unlocked; good are the files the check
// before the unlock found to be what debseal knows (End records them
// again after the relock when dpkg left them unchanged).
func journalEntries(locked []*Target, good map[fsattr.Ident]bool) []Entry {
	out := make([]Entry, 0, len(locked))
	for _, t := range locked {
		e := Entry{Path: t.Path(), Dev: t.Info.Dev, Ino: t.Info.Ino, Size: t.Info.Size, Mtime: t.Info.Mtime, Good: good[t.Info.Ident]}
		seenPkg := map[string]bool{}
		for _, o := range t.Owners {
			if o.Pkg != "" && !seenPkg[o.Pkg] {
				seenPkg[o.Pkg] = true
				e.Pkgs = append(e.Pkgs, o.Pkg)
			}
		}
		out = append(out, e)
	}
	return out
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
	// Verity is what the relock did about fs-verity (policy verity);
	// VerityNew the devices it found without it that no lock had noted.
	Verity    VeritySummary
	VerityNew []uint64
	Errors    []error
	Recovered bool // End ran for a dead transaction
	// Deferred: nothing was relocked, because another dpkg or package
	// manager runs (it would fail on files locked under it); the journal
	// stays, and the next debseal run after it recovers it.
	Deferred string
	// Held are packages left unlocked because another live transaction
	// covers them; they stay pending and its End (or a later one) locks
	// them.
	Held []string
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
	if why := s.Busy(); why != "" {
		rep.Deferred = why
		return rep, nil
	}
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
	hold := s.liveHolds(j)
	var lock []*dpkgdb.Package
	newPending := map[string]bool{}
	addPkg := func(p *dpkgdb.Package) {
		if !s.State.Sealed(p.Name) || s.Policy.PackageExcluded(p.Name) {
			return
		}
		switch {
		case hold.names[p.Name]:
			if !newPending[p.Name] {
				newPending[p.Name] = true
				rep.Held = append(rep.Held, p.ID())
			}
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
	good := map[*Target]bool{} // verified, here or by the check before the unlock
	for _, t := range plan.Targets {
		if set, known := t.Info.Immutable(); known && set {
			trusted = append(trusted, t) // already locked: nothing to do
			continue
		}
		if e, ok := unchanged[[2]uint64{t.Info.Dev, t.Info.Ino}]; ok && e.Size == t.Info.Size && e.Mtime == t.Info.Mtime {
			trusted = append(trusted, t)
			good[t] = e.Good
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
	for _, t := range vr.OK {
		good[t] = true
	}
	if j != nil {
		rep.Mismatches = append(rep.Mismatches, s.crossCheckDebs(j)...)
	}
	targets := append(trusted, vr.OK...)
	targets = append(targets, vr.Unverified...)
	targets = hold.filter(targets, newPending)
	sum := ApplyWith(ctx, s.FS, targets, true, Options{Workers: s.Workers, Verity: s.verity()})
	rep.Locked, rep.Already = sum.Changed, sum.Already
	rep.Verity = sum.Verity
	if newly, err := RecordVerity(s.Root, &sum.Verity); err != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("recording which filesystems take fs-verity: %w", err))
	} else {
		rep.VerityNew = newly
	}
	rep.Unsupported = sum.UnsupportedCount()
	rep.Errors = append(rep.Errors, sum.Errors...)
	if err := ctx.Err(); err != nil {
		// Interrupted half-way (a signal, a shutdown): what was not
		// reached is still unlocked. Keep the journal, the pending list
		// and the sync stamp as they were, so that recovery finishes it.
		return rep, fmt.Errorf("seal: relocking interrupted, the journal stays for debseal recover: %w", err)
	}
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

	// What the audit needs to tell a flag lifted later from one never set
	// (pkg/seen): what this run left locked, and what it let go.
	if err := s.recordSeen(sum, j, start); err != nil {
		rep.Errors = append(rep.Errors, fmt.Errorf("recording what was seen locked: %w", err))
	}

	if err := s.recordStamps(ctx, lock, plan, sum, good); err != nil {
		rep.Errors = append(rep.Errors, err)
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
		if gone := s.gone(names, j.Arches); len(gone) > 0 {
			if s.Forget != nil {
				if err := s.Forget(gone); err != nil {
					rep.Errors = append(rep.Errors, fmt.Errorf("forgetting the manifests of removed packages: %w", err))
				}
			}
			if err := removeStamps(s.Root, gone); err != nil {
				rep.Errors = append(rep.Errors, err)
			}
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

// PkgArch names one package instance: a manifest's key.
type PkgArch struct{ Name, Arch string }

// gone returns the instances of the named packages that have no files
// any more: removed (config-files) or purged (not-installed). dpkg drops
// a purged package from its database, and with it the only record of
// its architecture: a name the database no longer knows stands for every
// architecture of the run (the journal's) and of the database.
func (s *System) gone(names map[string]bool, runArches []string) []PkgArch {
	var arches []string
	var out []PkgArch
	for _, n := range sortedKeys(names) {
		ps := s.DB.Lookup(n)
		if len(ps) == 0 {
			if arches == nil {
				arches = s.arches(runArches)
			}
			for _, a := range arches {
				out = append(out, PkgArch{Name: n, Arch: a})
			}
			continue
		}
		for _, p := range ps {
			if p.State < dpkgdb.StateHalfInstalled {
				out = append(out, PkgArch{Name: p.Name, Arch: p.Arch})
			}
		}
	}
	return out
}

// arches are the architectures given, those of the database's packages,
// and none.
func (s *System) arches(more []string) []string {
	set := map[string]bool{"": true}
	for _, a := range more {
		set[a] = true
	}
	for _, p := range s.DB.Packages {
		set[p.Arch] = true
	}
	return sortedKeys(set)
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
