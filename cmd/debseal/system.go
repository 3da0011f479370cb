package main

import (
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/seal"
	"golang.org/x/sys/unix"
)

// system is everything a command needs about the target root.
type system struct {
	g       globalOpts
	db      *dpkgdb.DB
	pol     *policy.Config
	fs      *seal.RootFS
	state   *seal.State
	planner *seal.Planner
}

func (s *system) Close() {
	if s.fs != nil {
		s.fs.Close()
	}
}

// openSystem reads the database, the policy and the sealed state of the
// root. mutating commands are refused on the host's own root while
// DEBSEAL_REFUSE_HOST_ROOT is set (the test suite sets it: the workshop
// machine must never be locked by a test that forgot --root).
func openSystem(g globalOpts, mutating bool) (*system, error) {
	if mutating {
		if err := checkHostRoot(g.Root); err != nil {
			return nil, err
		}
	}
	pol, err := loadPolicy(g, mutating)
	if err != nil {
		return nil, err
	}
	db, err := dpkgdb.Open(g.Admindir)
	if err != nil {
		return nil, err
	}
	st, err := seal.LoadState(g.Root)
	if err != nil {
		return nil, err
	}
	fs, err := seal.OpenRootFS(g.Root)
	if err != nil {
		return nil, err
	}
	return &system{g: g, db: db, pol: pol, fs: fs, state: st,
		planner: &seal.Planner{DB: db, Policy: pol, FS: fs}}, nil
}

// errHostRoot is returned when the test guard refuses the host's root.
var errHostRoot = errors.New("refusing to change this machine's own root while DEBSEAL_REFUSE_HOST_ROOT is set (use --root with a sandbox)")

// checkHostRoot refuses a root that is this process's own "/" while
// DEBSEAL_REFUSE_HOST_ROOT is set. The test suite sets it so that a test
// that forgets --root fails instead of locking the workshop machine; tests
// that run debseal inside a chroot do not pass it in.
func checkHostRoot(root string) error {
	if os.Getenv("DEBSEAL_REFUSE_HOST_ROOT") == "" {
		return nil
	}
	var a, b unix.Stat_t
	if err := unix.Stat(root, &a); err != nil {
		return fmt.Errorf("stat %s: %w", root, err)
	}
	if err := unix.Stat("/", &b); err != nil {
		return fmt.Errorf("stat /: %w", err)
	}
	if a.Dev == b.Dev && a.Ino == b.Ino {
		return errHostRoot
	}
	return nil
}

// selectPackages resolves command-line package names. With all, every
// package is selected (excluded ones are returned separately); otherwise
// each name must exist.
func (s *system) selectPackages(names []string, all, honourExclusions bool) (sel []*dpkgdb.Package, excluded []string, err error) {
	if all && len(names) > 0 {
		return nil, nil, usagef("give either --all or package names, not both")
	}
	if !all && len(names) == 0 {
		return nil, nil, usagef("no packages given (use --all for every package)")
	}
	for _, n := range names {
		if strings.HasPrefix(n, "-") {
			return nil, nil, usagef("option %q after package names: options come first (debseal CMD [OPTIONS] PKG...)", n)
		}
	}
	var cands []*dpkgdb.Package
	if all {
		cands = s.db.Packages
	} else {
		var unknown []string
		cands, unknown = seal.Lookup(s.db, names)
		if len(unknown) > 0 {
			return nil, nil, fmt.Errorf("not in the dpkg database: %v", unknown)
		}
	}
	for _, p := range cands {
		if honourExclusions && s.pol.PackageExcluded(p.Name) {
			excluded = append(excluded, p.ID())
			continue
		}
		sel = append(sel, p)
	}
	return sel, excluded, nil
}

// names returns the distinct package names of pkgs (the sealed state is
// kept by name).
func names(pkgs []*dpkgdb.Package) []string {
	seen := map[string]bool{}
	var out []string
	for _, p := range pkgs {
		if !seen[p.Name] {
			seen[p.Name] = true
			out = append(out, p.Name)
		}
	}
	sort.Strings(out)
	return out
}
