package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/seen"
	"github.com/urfave/cli/v2"
)

func init() {
	register(lockCommand)
	register(unlockCommand)
}

type lockOpts struct {
	All        bool
	NoManifest bool // lock only: do not record missing manifests
	DryRun     bool
	Verify     bool
	Verbose    bool
	Unlock     bool
	Pkgs       []string
	Stderr     io.Writer
}

func lockCommand() *cli.Command {
	return &cli.Command{
		Name:      "lock",
		Usage:     "make the files of installed packages immutable",
		ArgsUsage: "[--all | PKG[:ARCH]...]",
		Description: "Sets the immutable flag on every regular file the packages own, except conffiles and\n" +
			"paths the policy excludes (/var, /run, /tmp, /home, /srv, /dev, /proc, /sys by default).\n" +
			"Records the packages as sealed, so debseal relocks them after dpkg changes them, and\n" +
			"records a SHA-256 manifest (debseal audit's baseline) for each package that has none for\n" +
			"its installed version, from its files checked against the package's md5sums; with --all,\n" +
			"it deletes the manifests of packages no longer installed.\n" +
			"While another dpkg or apt holds dpkg's locks, nothing is locked (exit 2).\n\n" + exitHelp("lock"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every installed package"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show what would be locked; change nothing"},
			&cli.BoolFlag{Name: "verify", Usage: "check each file's MD5 against the package's md5sums first; mismatching files are reported and not locked (exit 1)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list every file changed or skipped"},
			&cli.BoolFlag{Name: "no-manifest", Usage: "do not record manifests for packages that have none (see debseal manifest)"},
		},
		Action: func(c *cli.Context) error {
			o := lockOpts{All: c.Bool("all"), DryRun: c.Bool("dry-run"), Verify: c.Bool("verify"), NoManifest: c.Bool("no-manifest"),
				Verbose: c.Bool("verbose"), Pkgs: c.Args().Slice(), Stderr: c.App.ErrWriter}
			limitMemory()
			return runLock(c.Context, globalsFrom(c), o, c.App.Writer)
		},
	}
}

func unlockCommand() *cli.Command {
	return &cli.Command{
		Name:      "unlock",
		Usage:     "make the files of installed packages mutable again",
		ArgsUsage: "[--all | PKG[:ARCH]...]",
		Description: "Clears the immutable flag on the packages' files (conffiles included, should one have been\n" +
			"locked) and records them as unlocked on\n" +
			"purpose: debseal will not relock them until you lock them again. unlock --all turns\n" +
			"sealing off for the whole system. Files with fs-verity keep it (the kernel cannot take it\n" +
			"back): they can be replaced, as dpkg does, not written into; unlock says how many it let go of.\n\n" + exitHelp("unlock"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every installed package"},
			&cli.BoolFlag{Name: "dry-run", Aliases: []string{"n"}, Usage: "show what would be unlocked; change nothing"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "list every file changed"},
		},
		Action: func(c *cli.Context) error {
			o := lockOpts{All: c.Bool("all"), DryRun: c.Bool("dry-run"), Verbose: c.Bool("verbose"),
				Unlock: true, Pkgs: c.Args().Slice(), Stderr: c.App.ErrWriter}
			limitMemory()
			return runLock(c.Context, globalsFrom(c), o, c.App.Writer)
		},
	}
}

// runLock implements lock and unlock.
func runLock(ctx context.Context, g globalOpts, o lockOpts, out io.Writer) error {
	sys, err := openSystem(g, !o.DryRun)
	if err != nil {
		return err
	}
	defer sys.Close()
	if !o.DryRun {
		// One debseal at a time changes a root's flags and state, and a
		// lock never runs under another dpkg or apt that is changing
		// files (it would fail on the ones locked under it), as a hook's
		// End never does. The dpkg whose maintainer script runs lock
		// (debseal's own postinst, SEAL_ON_INSTALL=yes) is not another.
		// unlock only makes files mutable: it may run any time.
		lk, err := seal.AcquireLock(g.Root, lockWait)
		if err != nil {
			return err
		}
		defer lk.Release()
		if !o.Unlock {
			if why := (&seal.System{Admindir: g.Admindir, Ours: ancestors()}).Busy(); why != "" {
				return fmt.Errorf("lock: %s: locking now would make it fail on the files it is changing; run lock again when it is done", why)
			}
		}
	}
	pkgs, excluded, err := sys.selectPackages(o.Pkgs, o.All, !o.Unlock)
	if err != nil {
		return err
	}
	verb := map[bool]string{false: "lock", true: "unlock"}[o.Unlock]
	prog := newProgress(o.Stderr, o.All)
	sys.planner.ForUnlock = o.Unlock
	sys.planner.Conffiles = o.Unlock // unlock only makes files more mutable: conffiles too
	// A file the plan found locked is a sighting as of the plan (Apply does
	// not look at it again): the run's sightings are dated before it.
	start := time.Now()
	plan, err := sys.planner.Plan(ctx, pkgs)
	if err != nil {
		return err
	}
	targets := plan.Targets
	var mismatches []seal.Mismatch
	var problems []error
	problems = append(problems, plan.Errors...)
	for _, id := range plan.Failed() {
		problems = append(problems, fmt.Errorf("package %s not %sed: %w", id, verb, plan.Packages[id]))
	}
	// What the run could not do, for its last line.
	res := lockResult{verb: verb, files: len(plan.Errors), pkgs: len(plan.Failed())}
	if o.Verify && !o.Unlock {
		vr := sys.planner.Verify(ctx, targets, prog)
		mismatches = vr.Mismatches
		var verrs []error
		verrs, res.badSums = splitBadMD5Sums(vr.Errors, nil)
		problems = append(problems, verrs...)
		res.files += len(verrs) // unreadable: not locked
		targets = append(vr.OK, vr.Unverified...)
		for _, m := range mismatches {
			fmt.Fprintf(out, "MISMATCH %s: not locked\n", m)
		}
		fmt.Fprintf(out, "verified %d files against their packages' md5sums: %d match, %d differ, %d have no checksum\n",
			len(vr.OK)+len(vr.Mismatches), len(vr.OK), len(vr.Mismatches), len(vr.Unverified))
	}

	if o.DryRun {
		n := 0
		for _, t := range targets {
			if set, known := t.Info.Immutable(); !known || set == o.Unlock {
				n++
				if o.Verbose {
					fmt.Fprintf(out, "would %s %s\n", verb, t.Path())
				}
			}
		}
		fmt.Fprintf(out, "would %s %d of %d files in %d packages (dry run: nothing changed)\n", verb, n, len(targets), len(plan.Packages))
		printSkips(out, plan, o.Verbose)
		printBadMD5Sums(out, res.badSums)
		printProblems(o.Stderr, problems)
		res.mismatches = len(mismatches)
		return res.err(problems)
	}

	if !o.Unlock {
		// The state is durable before any flag is set: the state must
		// never claim less than what is locked (a locked file the state
		// does not know is never unlocked for dpkg, and recover does not
		// see it). A failure to save (a full disk) leaves nothing locked.
		// Packages dpkg has not configured yet are locked by the first
		// relock that finds them configured.
		prev := &seal.State{All: sys.state.All, Except: maps.Clone(sys.state.Except), Pkgs: maps.Clone(sys.state.Pkgs)}
		sys.state.Lock(names(pkgs), o.All)
		if err := sys.state.Save(g.Root); err != nil {
			// The new state may be in place nonetheless (the rename
			// succeeded, the fsync after it failed): put the old one
			// back, so that it does not claim files nothing locked.
			cur, lerr := seal.LoadState(g.Root)
			changed := lerr != nil || cur.All != prev.All || !maps.Equal(cur.Except, prev.Except) || !maps.Equal(cur.Pkgs, prev.Pkgs)
			if rerr := prev.Save(g.Root); changed && rerr != nil {
				err = fmt.Errorf("%w; restoring the previous state failed too (it may name packages that are not locked: run debseal lock again once the disk works): %w", err, rerr)
			}
			return fmt.Errorf("nothing locked: the sealed state cannot be saved: %w", err)
		}
		var pending []string
		for _, id := range plan.Pending {
			pending = append(pending, strings.SplitN(id, ":", 2)[0])
		}
		if err := seal.AddPending(g.Root, pending); err != nil {
			problems = append(problems, err)
		}
	}
	sum := lockWith(ctx, sys, targets, !o.Unlock, prog)
	problems = append(problems, sum.Errors...)
	res.files += len(sum.Errors)
	// The audit's evidence (pkg/seen): a file lock left immutable that is
	// found mutable later, with no dpkg run to explain it, had its flag
	// lifted; one unlock let go of is merely unlocked.
	recs := seal.Sightings(sum, seen.Lock, start)
	if o.Unlock {
		recs = seal.Released(sum, time.Now())
	}
	if err := seen.Write(g.Root, recs); err != nil {
		problems = append(problems, fmt.Errorf("recording what was seen locked: %w", err))
	}
	if o.Verbose {
		for _, oc := range sum.Outcomes {
			if oc.Changed {
				fmt.Fprintf(out, "%sed %s\n", verb, oc.Target.Path())
			}
		}
	}
	if o.Unlock {
		if l := verityKeptLine(sum); l != "" {
			fmt.Fprintln(out, l)
		}
		// Flags first, then the state: if saving fails, the state still
		// claims the packages (it never claims less than what is locked;
		// the hooks unlock them for dpkg and relock them after), and the
		// error says so. Intent is recorded even when some files failed
		// to unlock: unlock again retries them.
		sys.state.Unlock(names(pkgs), o.All)
		if err := sys.state.Save(g.Root); err != nil {
			problems = append(problems, fmt.Errorf("the files are unlocked but still recorded as sealed: %w", err))
		}
	}
	if o.All && !o.Unlock {
		// The baseline for noticing packages dpkg changes later without
		// debseal seeing it (pkg/seal.System.End).
		ss := &seal.System{Root: g.Root}
		if err := ss.MarkSynced(); err != nil {
			problems = append(problems, err)
		}
	}
	var recorded int
	var manifestMismatches []string
	if !o.Unlock && !o.NoManifest {
		// Sealing is also where the audit's SHA-256 baseline starts: a
		// package without a manifest for its installed version gets one
		// now, from its files checked against the md5sums (a file that
		// differs is left out and reported, never sealed in silently).
		var errs []error
		recorded, manifestMismatches, errs = recordMissingManifests(ctx, sys, pkgs, prog)
		errs, res.badSums = splitBadMD5Sums(errs, res.badSums)
		problems = append(problems, errs...)
	}
	if o.All && !o.Unlock && !o.NoManifest {
		// Manifests of packages no longer installed (removed or purged
		// while debseal did not see it): the relock after a removal
		// deletes its manifest, this catches the rest.
		pruned, errs := pruneManifests(sys)
		problems = append(problems, errs...)
		if pruned > 0 {
			fmt.Fprintf(out, "removed %d manifests of packages no longer installed\n", pruned)
		}
	}
	if o.All && o.Unlock {
		// Sealing is off: debseal's own locked files (manifests) too.
		if err := seal.UnlockStateDir(g.Root); err != nil {
			problems = append(problems, err)
		}
	}

	fmt.Fprintf(out, "%sed %d files, %d already %sed, in %d packages\n", verb, sum.Changed, sum.Already, verb, len(plan.Packages))
	if recorded > 0 {
		fmt.Fprintf(out, "recorded %d manifests (the audit's SHA-256 baseline)\n", recorded)
	}
	for _, m := range manifestMismatches {
		fmt.Fprintf(out, "MISMATCH %s: differs from the package's md5sums; left out of its manifest\n", m)
	}
	if !o.Unlock {
		if err := printVerity(out, o.Stderr, g.Root, sys.pol.Verity, &sum.Verity); err != nil {
			problems = append(problems, err)
		}
	}
	for fs, ts := range sum.Unsupported {
		fmt.Fprintf(out, "unsupported: %d files on %s (no inode flags there), e.g. %s\n", len(ts), fs, ts[0].Path())
		if o.Verbose {
			for _, t := range ts {
				fmt.Fprintf(out, "unsupported %s (%s)\n", t.Path(), fs)
			}
		}
	}
	printSkips(out, plan, o.Verbose)
	if len(excluded) > 0 {
		fmt.Fprintf(out, "excluded by policy: %d packages (%s)\n", len(excluded), strings.Join(excluded, " "))
	}
	if len(plan.Pending) > 0 {
		fmt.Fprintf(out, "not configured, locked after dpkg configures them: %s\n", strings.Join(plan.Pending, " "))
	}
	printBadMD5Sums(out, res.badSums)
	printProblems(o.Stderr, problems)
	res.mismatches = len(mismatches)
	if len(mismatches) > 0 {
		fmt.Fprintf(out, "%d files do not match their md5sums and were not locked (reinstall the package, or investigate)\n", len(mismatches))
	}
	if len(manifestMismatches) > 0 && !o.Verify {
		fmt.Fprintf(out, "%d files do not match their md5sums (use lock --verify to leave such files unlocked; reinstall the package, or investigate)\n", len(manifestMismatches))
		res.mismatches = len(manifestMismatches)
	}
	return res.err(problems)
}

// pruneManifests deletes the manifests of packages that have no files
// installed any more.
func pruneManifests(sys *system) (int, []error) {
	installed := map[string]bool{}
	for _, p := range sys.db.Packages {
		if p.State >= dpkgdb.StateHalfInstalled {
			installed[manifest.ID(p.Name, p.Arch)] = true
		}
	}
	removed, errs := manifest.StoreFor(sys.g.Root).Prune(func(pkg, arch string) bool {
		return installed[manifest.ID(pkg, arch)]
	})
	return len(removed), errs
}

// recordMissingManifests records a manifest for each configured package
// of pkgs that has none for its installed version. It returns how many it
// recorded, the files left out because they differ from the md5sums, and
// what went wrong.
func recordMissingManifests(ctx context.Context, sys *system, pkgs []*dpkgdb.Package, prog progress.Meter) (int, []string, []error) {
	b := manifest.NewBuilder(sys.g.Root, sys.db, sys.fs.Root)
	defer b.Close()
	// One open store directory for every package's header (no store
	// yet: no manifest to read).
	rd, rerr := b.Store.Reader()
	if rerr == nil {
		defer rd.Close()
	}
	var need []*dpkgdb.Package
	for _, p := range pkgs {
		if !p.Configured() || !p.HasFiles() {
			continue
		}
		if rerr == nil {
			if m, err := rd.Header(p.Name, p.Arch); err == nil && m.Version == p.Version {
				continue
			}
		}
		need = append(need, p)
	}
	if len(need) == 0 {
		return 0, nil, nil
	}
	// Every file is read for its manifest here, after the lock: what
	// matches the md5sums is recorded as verified, so that the check
	// before the first upgrade need not read it again (pkg/seal).
	var vmu sync.Mutex
	verified := map[*dpkgdb.Package][]fsattr.Info{}
	b.Verified = func(p *dpkgdb.Package, info fsattr.Info) {
		vmu.Lock()
		verified[p] = append(verified[p], info)
		vmu.Unlock()
	}
	results, err := buildManifests(ctx, b, need, false, prog)
	if err != nil {
		return 0, nil, []error{err}
	}
	n := 0
	var mism []string
	var errs []error
	for i, r := range results {
		for _, pr := range r.problems {
			var mm *manifest.Mismatch
			if errors.As(pr, &mm) {
				mism = append(mism, pr.Error())
			} else {
				errs = append(errs, fmt.Errorf("manifest of %s: %w", need[i].ID(), pr))
			}
		}
		if r.err != nil {
			errs = append(errs, fmt.Errorf("manifest of %s: %w", need[i].ID(), r.err))
			delete(verified, need[i])
			continue
		}
		n++
	}
	if err := seal.RecordVerified(sys.g.Root, verified); err != nil {
		errs = append(errs, err)
	}
	return n, mism, errs
}

// lockResult is what a lock or unlock could not do, for its exit code and
// last line: the problems were each listed as they came.
type lockResult struct {
	verb       string
	files      int      // files not locked (unlocked): unexaminable, unreadable, or their flag could not be changed
	pkgs       int      // packages not locked (unlocked): their file lists could not be read
	mismatches int      // files that differ from their md5sums
	badSums    []string // malformed md5sums lines
}

// err is the run's result: partial when something could not be done (a
// file, a package, the state, a manifest), else findings when files differ
// from their packages' md5sums or an md5sums line is malformed.
func (r lockResult) err(problems []error) error {
	if len(problems) > 0 {
		var parts []string
		if r.files > 0 {
			parts = append(parts, fmt.Sprintf("%d files", r.files))
		}
		if r.pkgs > 0 {
			parts = append(parts, fmt.Sprintf("%d packages", r.pkgs))
		}
		if len(parts) > 0 {
			parts = []string{strings.Join(parts, " and ") + " could not be " + r.verb + "ed"}
		}
		if other := len(problems) - r.files - r.pkgs; other > 0 {
			parts = append(parts, fmt.Sprintf("%d other errors", other))
		}
		return partialf("%s: %s; each is listed above", r.verb, strings.Join(parts, ", "))
	}
	var parts []string
	if r.mismatches > 0 {
		parts = append(parts, fmt.Sprintf("%d files do not match their md5sums", r.mismatches))
	}
	if len(r.badSums) > 0 {
		parts = append(parts, fmt.Sprintf("%d md5sums lines are malformed", len(r.badSums)))
	}
	if len(parts) > 0 {
		return findingsf("%s: %s", r.verb, strings.Join(parts, ", "))
	}
	return nil
}

// splitBadMD5Sums takes malformed lines of dpkg's md5sums files out of
// errs and adds them to bad, once each (the verification and the manifest
// builder read the same file). Like the audit's md5sums-corrupt finding, such a line is
// something wrong with a package's records, not a failure of the
// command: the file it names is simply not checked against it.
func splitBadMD5Sums(errs []error, bad []string) ([]error, []string) {
	var rest []error
	for _, e := range errs {
		var le *debfmt.LineError
		if errors.As(e, &le) && strings.HasSuffix(le.File, ".md5sums") {
			if s := le.Error(); !slices.Contains(bad, s) {
				bad = append(bad, s)
			}
			continue
		}
		rest = append(rest, e)
	}
	return rest, bad
}

// printBadMD5Sums lists malformed md5sums lines as the audit does.
func printBadMD5Sums(w io.Writer, bad []string) {
	for _, b := range bad {
		fmt.Fprintf(w, "md5sums-corrupt %s: the file on that line is not checked\n", b)
	}
}

func printProblems(w io.Writer, problems []error) {
	for _, p := range problems {
		fmt.Fprintf(w, "debseal: error: %v\n", p)
	}
}

// printSkips summarises the skipped paths by reason (one line), or lists
// them all when verbose.
func printSkips(w io.Writer, plan *seal.Plan, verbose bool) {
	counts := map[seal.Reason]int{}
	for _, s := range plan.Skips {
		counts[s.Reason]++
		if verbose {
			detail := ""
			if s.Detail != "" {
				detail = " (" + s.Detail + ")"
			}
			fmt.Fprintf(w, "skipped %s: %s%s [%s]\n", s.Reason, s.Real, detail, s.Pkg)
		}
	}
	var parts []string
	for _, r := range seal.Reasons() {
		if counts[r] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[r], r))
		}
	}
	if len(parts) > 0 {
		fmt.Fprintf(w, "skipped: %s\n", strings.Join(parts, ", "))
	}
}
