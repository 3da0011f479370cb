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

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/mscript"
)

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
	if all, why := s.Policy.UnlockAll(); all {
		sc.escalate(why)
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
	var pending []*dpkgdb.Package
	for _, p := range s.DB.Packages {
		switch {
		case req.ConfigurePending && p.State >= dpkgdb.StateUnpacked && p.State < dpkgdb.StateInstalled:
			add(sc.primary, []*dpkgdb.Package{p})
		case req.RemovePending && (p.Want == dpkgdb.WantDeinstall || p.Want == dpkgdb.WantPurge) && p.State > dpkgdb.StateConfigFiles:
			add(sc.primary, []*dpkgdb.Package{p})
		case req.PurgePending && p.Want == dpkgdb.WantPurge && p.State > dpkgdb.StateNotInstalled:
			add(sc.primary, []*dpkgdb.Package{p})
		}
		if p.State == dpkgdb.StateTriggersPending || p.State == dpkgdb.StateTriggersAwaited {
			pending = append(pending, p)
		}
	}
	if err := s.addPendingTriggers(sc, req.NoTriggers, pending); err != nil {
		return nil, err
	}
	// Maintainer scripts: of the new archives and of the installed
	// packages involved.
	var scans []mscript.Result
	for _, d := range sc.debs {
		for _, name := range sortedScriptNames(d.Scripts) {
			scans = append(scans, mscript.Scan(d.Package+"."+name, d.Scripts[name]))
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
					scans = append(scans, mscript.Scan(p.ID()+"."+kind, b))
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
	if err := s.addScriptTargets(sc, scans); err != nil {
		return nil, err
	}
	return sc, nil
}

// addPendingTriggers adds the packages whose pending triggers the run may
// process: their postinst runs. A run that processes triggers may process
// any of them. A --no-triggers run (each of apt's unpack and configure
// runs) only records activations, with two exceptions in dpkg: a package
// it configures processes its own pending triggers (it is primary
// already), and a pending package that a dependency awaits is processed
// to satisfy it (dpkg's "fixbytrigaw", in configure and in unpack's
// pre-dependency check). Only an interest without -noawait can make an
// activator await, so under --no-triggers a pending package whose
// interests are all -noawait and that no package awaits now is left out.
// Packages in triggers-awaited (no script of theirs runs, they are rare)
// stay in.
func (s *System) addPendingTriggers(sc *scope, noTriggers bool, pending []*dpkgdb.Package) error {
	if len(pending) == 0 {
		return nil
	}
	mayAwait := func(*dpkgdb.Package) bool { return true }
	if noTriggers {
		in, err := s.DB.Triggers()
		if err != nil {
			return err
		}
		awaited := map[string]bool{}
		for _, p := range s.DB.Packages {
			for _, n := range p.TrigAwaited {
				awaited[n] = true
			}
		}
		mayAwait = func(p *dpkgdb.Package) bool {
			for _, spec := range []string{p.Name, p.Name + ":" + p.Arch} {
				if awaited[spec] || in.Awaiting[spec] {
					return true
				}
			}
			return false
		}
	}
	for _, p := range pending {
		if p.State == dpkgdb.StateTriggersAwaited || mayAwait(p) {
			if p.HasFiles() {
				sc.others[p.ID()] = p
			}
		}
	}
	return nil
}

// addScriptTargets adds what the maintainer scripts may change: the paths
// they name (and the other end of each diversion among them), the files
// under the directories and patterns where they change computed names,
// and the packages from whose file lists they compute names. Only what
// sealed packages own among them is ever unlocked (namedTargets).
func (s *System) addScriptTargets(sc *scope, scans []mscript.Result) error {
	div, err := s.DB.Diversions()
	if err != nil {
		return err
	}
	var patterns []string
	for _, scn := range scans {
		if scn.Escalate != "" {
			sc.escalate(scn.Escalate)
		}
		named := append([]string(nil), scn.Paths...)
		named = append(named, scn.Statoverrides...)
		named = append(named, scn.Truenames...)
		for _, d := range scn.Diverts {
			named = append(named, d.From)
			if d.To != "" {
				named = append(named, d.To)
			}
		}
		sc.paths = append(sc.paths, withDiversions(named, div)...)
		for _, name := range scn.Packages {
			for _, p := range s.DB.Lookup(name) {
				if p.HasFiles() {
					sc.others[p.ID()] = p
				}
			}
		}
		patterns = append(patterns, scn.Prefixes...)
		for _, g := range scn.Globs {
			patterns = append(patterns, "glob:"+g)
		}
	}
	if len(patterns) > 0 && !sc.all {
		under, err := s.listedMatching(patterns)
		if err != nil {
			return err
		}
		sc.paths = append(sc.paths, withDiversions(under, div)...)
	}
	return nil
}

// listedMatching returns the paths installed packages list under the
// given directories, or matching "glob:" patterns, under every
// merged-/usr alias of them. It reads every list, so it runs only for
// scripts that change computed names under a directory.
func (s *System) listedMatching(patterns []string) ([]string, error) {
	c := newCanon(s.FS)
	var prefixes, globs []string
	for _, p := range patterns {
		if g, ok := strings.CutPrefix(p, "glob:"); ok {
			dir, base := path.Split(g)
			for _, a := range c.aliases(strings.TrimSuffix(dir, "/")) {
				globs = append(globs, path.Join(a, base))
			}
			continue
		}
		for _, a := range c.aliases(p) {
			prefixes = append(prefixes, strings.TrimSuffix(a, "/")+"/")
		}
	}
	var out []string
	for _, p := range s.DB.Packages {
		if !p.HasFiles() {
			continue
		}
		files, err := s.DB.Files(p)
		if err != nil {
			continue // a missing or bad list: Plan reports it for its own packages
		}
		for _, f := range files {
			if matchesAny(f, prefixes, globs) {
				out = append(out, f)
			}
		}
	}
	return out, nil
}

func matchesAny(f string, prefixes, globs []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(f, p) {
			return true
		}
	}
	for _, g := range globs {
		if ok, _ := path.Match(g, f); ok {
			return true
		}
	}
	return false
}

// withDiversions adds, for each path a script names, the other end of
// its diversion: "dpkg-divert --remove --rename X" moves the file
// recorded as X's divert-to (X.distrib unless --divert said otherwise)
// back to X, and the script names only X.
func withDiversions(paths []string, div *dpkgdb.Diversions) []string {
	out := paths
	for _, p := range paths {
		if d, ok := div.ByFrom(p); ok {
			out = append(out, d.To)
		}
		if d, ok := div.ByTo(p); ok {
			out = append(out, d.From)
		}
	}
	return out
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
func (s *System) addTriggered(sc *scope, scans []mscript.Result) error {
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

// pathTargets stats paths (inside the root) and returns the regular files
// and directories among them, locked or not: files a script names or an
// archive will replace, whoever owns them.
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
