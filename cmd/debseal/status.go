package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/shadow"
	"github.com/debseal/debseal/pkg/verity"
	"github.com/urfave/cli/v2"
)

func init() { register(statusCommand) }

type statusOpts struct {
	JSON   bool
	Pkgs   []string
	Stderr io.Writer // files that could not be examined (stdout stays valid JSON)
}

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show how many files of each package are locked",
		ArgsUsage: "[PKG[:ARCH]...]",
		Description: "For each package (all installed packages by default): the files debseal manages\n" +
			"(regular files the policy locks), how many are locked and unlocked, how many are on\n" +
			"filesystems without inode flags, and how many listed paths are skipped and why.\n" +
			"Then mounts below the root that hide sealed files (shadowed, as audit reports them).\n" +
			"With --json, one object as documented in docs/json.md (\"status\").\n\n" + exitHelp("status"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "machine-readable output"},
		},
		Action: func(c *cli.Context) error {
			limitMemory()
			return runStatus(c.Context, globalsFrom(c), statusOpts{JSON: c.Bool("json"), Pkgs: c.Args().Slice(), Stderr: c.App.ErrWriter}, c.App.Writer)
		},
	}
}

// pkgStatus is one package's line of the report (and its JSON object).
type pkgStatus struct {
	Package     string         `json:"package"`
	State       string         `json:"state"`
	Sealed      bool           `json:"sealed"`
	Excluded    bool           `json:"excluded,omitempty"`
	Files       int            `json:"files"`
	Locked      int            `json:"locked"`
	Unlocked    int            `json:"unlocked"`
	Unsupported int            `json:"unsupported"`
	Verity      int            `json:"verity"` // regular files with fs-verity
	Skipped     map[string]int `json:"skipped"`
	Error       string         `json:"error,omitempty"`
}

type statusReport struct {
	Sealed       sealedJSON    `json:"sealed"`
	Mode         string        `json:"mode"`      // the integration debseal setup installed, "" for none
	Installed    []string      `json:"installed"` // the modes whose pieces are actually there (hook files, wrapper script, diversion)
	Packages     []*pkgStatus  `json:"packages"`
	Total        pkgStatus     `json:"total"`
	Pending      []string      `json:"pending"`      // sealed, still to be locked: not configured yet, or the last relock failed
	Transactions []transaction `json:"transactions"` // unlocked now, by a running or interrupted dpkg/apt run
	// ForeignLinks are package files whose inode has a hard link no
	// package path accounts for (maybe outside the root): never locked.
	ForeignLinks []foreignLink `json:"foreign_links"`
	Guard        guardJSON     `json:"guard"`
	Verity       verityJSON    `json:"verity"`
	// Shadowed are the mounts below the root that hide sealed files
	// (pkg/shadow): what is there is not the package's, nor locked.
	Shadowed []*mountJSON `json:"shadowed"`
}

// guardJSON is the capability guard's state: its drop-ins under the root.
type guardJSON struct {
	On      bool     `json:"on"`
	Allowed []string `json:"allowed"` // units that keep CAP_LINUX_IMMUTABLE (their allow drop-in is there)
}

// verityJSON is the fs-verity coverage of the planned files.
type verityJSON struct {
	Mode    string `json:"mode"`    // the verity setting: auto, yes, no
	Files   int    `json:"files"`   // regular files among the planned ones
	Enabled int    `json:"enabled"` // of those, with fs-verity
	// TreeBytes is the Merkle tree fs-verity keeps for them (4096-byte
	// blocks; the filesystem may round it up further).
	TreeBytes int64              `json:"tree_bytes"`
	DataBytes int64              `json:"data_bytes"` // their size
	Devices   []verityDeviceJSON `json:"devices"`    // what locks found (ROOT/var/lib/debseal/verity)
}

type verityDeviceJSON struct {
	Device string `json:"device"` // "major:minor"
	Takes  bool   `json:"takes_verity"`
}

type foreignLink struct {
	Path    string `json:"path"`
	Package string `json:"package"`
	Detail  string `json:"detail"`
}

type transaction struct {
	Journal  string `json:"journal"`
	Via      string `json:"via"`
	Pid      int    `json:"pid"`
	Running  bool   `json:"running"`
	Unlocked int    `json:"unlocked"`
	Since    string `json:"since"`
}

type sealedJSON struct {
	Mode     string   `json:"mode"` // all, packages, none
	Except   []string `json:"except,omitempty"`
	Packages []string `json:"packages,omitempty"`
}

func runStatus(ctx context.Context, g globalOpts, o statusOpts, out io.Writer) error {
	sys, err := openSystem(g, false)
	if err != nil {
		return err
	}
	defer sys.Close()
	var pkgs []*dpkgdb.Package
	if len(o.Pkgs) == 0 {
		for _, p := range sys.db.Packages {
			if p.State >= dpkgdb.StateHalfInstalled {
				pkgs = append(pkgs, p)
			}
		}
	} else if pkgs, _, err = sys.selectPackages(o.Pkgs, false, false); err != nil {
		return err
	}
	plan, err := sys.planner.Plan(ctx, pkgs)
	if err != nil {
		return err
	}
	flags := seal.Inspect(ctx, sys.fs, plan.Targets, 0)

	rep := statusReport{Total: pkgStatus{Package: "TOTAL", Skipped: map[string]int{}}}
	byID := map[string]*pkgStatus{}
	for _, p := range pkgs {
		ps := &pkgStatus{Package: p.ID(), State: p.State.String(), Sealed: sys.state.Sealed(p.Name),
			Excluded: sys.pol.PackageExcluded(p.Name), Skipped: map[string]int{}}
		if err := plan.Packages[p.ID()]; err != nil {
			ps.Error = err.Error()
		}
		byID[p.ID()] = ps
		rep.Packages = append(rep.Packages, ps)
	}
	var problems []error
	for i, t := range plan.Targets {
		fl := flags[i]
		if fl.Err != nil {
			problems = append(problems, fl.Err)
		}
		seen := map[string]bool{}
		for _, ow := range t.Owners {
			ps := byID[ow.Pkg]
			if ps == nil || seen[ow.Pkg] {
				continue
			}
			seen[ow.Pkg] = true
			ps.Files++
			switch {
			case fl.Unsupported != "":
				ps.Unsupported++
			case fl.Locked:
				ps.Locked++
			default:
				ps.Unlocked++
			}
		}
		if t.Info.IsRegular() {
			rep.Verity.Files++
			rep.Verity.DataBytes += t.Info.Size
			if on, _ := t.Info.Verity(); on {
				rep.Verity.Enabled++
				rep.Verity.TreeBytes += verity.TreeSize(t.Info.Size)
				for ow := range seen {
					byID[ow].Verity++
				}
				rep.Total.Verity++
			}
		}
		rep.Total.Files++
		switch {
		case fl.Unsupported != "":
			rep.Total.Unsupported++
		case fl.Locked:
			rep.Total.Locked++
		default:
			rep.Total.Unlocked++
		}
	}
	rep.ForeignLinks = []foreignLink{}
	for _, s := range plan.Skips {
		if s.Reason == seal.SkipForeignLink {
			rep.ForeignLinks = append(rep.ForeignLinks, foreignLink{Path: s.Real, Package: s.Pkg, Detail: s.Detail})
		}
		if ps := byID[s.Pkg]; ps != nil {
			ps.Skipped[s.Reason.String()]++
			rep.Total.Skipped[s.Reason.String()]++
		}
	}
	rep.Shadowed = []*mountJSON{}
	checker := &shadow.Checker{FS: sys.fs.Root, DB: sys.db, Policy: sys.pol, Sealed: sys.state.Sealed, Manifests: manifest.StoreFor(g.Root)}
	shadows, err := checker.Find(ctx, pkgs, mountinfo.Self)
	if err != nil {
		problems = append(problems, err)
	}
	for i := range shadows {
		rep.Shadowed = append(rep.Shadowed, newMountJSON(&shadows[i]))
	}
	rep.Sealed = sealedOf(sys.state)
	rep.Verity.Mode = string(sys.pol.Verity)
	rep.Verity.Devices = []verityDeviceJSON{}
	if devs, err := seal.LoadVerityDevices(g.Root); err != nil {
		problems = append(problems, err)
	} else {
		for _, d := range slices.Sorted(maps.Keys(devs)) {
			rep.Verity.Devices = append(rep.Verity.Devices, verityDeviceJSON{Device: seal.DevName(d), Takes: devs[d]})
		}
	}
	if rep.Mode, err = installedMode(g.Root); err != nil {
		return err
	}
	if rep.Installed, err = detectModes(g); err != nil {
		problems = append(problems, err)
	}
	if rep.Installed == nil {
		rep.Installed = []string{}
	}
	if gs, gerr := readGuard(g.Root); gerr != nil {
		problems = append(problems, gerr)
	} else {
		rep.Guard = guardJSON(gs)
	}
	if rep.Guard.Allowed == nil {
		rep.Guard.Allowed = []string{}
	}
	if rep.Pending, err = seal.Pending(g.Root); err != nil {
		return err
	}
	js, jerrs := seal.Journals(g.Root)
	problems = append(problems, jerrs...)
	for _, j := range js {
		rep.Transactions = append(rep.Transactions, transaction{Journal: j.Path(), Via: j.Owner.Via, Pid: j.Owner.Pid,
			Running: alive(j.Owner), Unlocked: len(j.Unlocked), Since: j.Created.Format(time.RFC3339)})
	}
	// One write for many lines: a line per package, 50,000 write calls
	// on a big system.
	bw := bufio.NewWriterSize(out, 64<<10)
	if o.JSON {
		enc := json.NewEncoder(bw)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			return err
		}
	} else {
		printStatus(bw, rep)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if o.Stderr == nil {
		o.Stderr = io.Discard
	}
	printProblems(o.Stderr, problems)
	var parts []string
	if n := countErrs(rep.Packages, func(p *pkgStatus) bool { return p.Error != "" }); n > 0 {
		parts = append(parts, fmt.Sprintf("%d packages could not be examined (their ERROR rows say why)", n))
	}
	if len(problems) > 0 {
		parts = append(parts, fmt.Sprintf("%d problems examining files and journals (listed above)", len(problems)))
	}
	if len(parts) > 0 {
		return partialf("status: %s", strings.Join(parts, "; "))
	}
	return nil
}

func sealedOf(s *seal.State) sealedJSON {
	switch {
	case s.All:
		var ex []string
		for n := range s.Except {
			ex = append(ex, n)
		}
		sort.Strings(ex)
		return sealedJSON{Mode: "all", Except: ex}
	case len(s.Pkgs) > 0:
		var ps []string
		for n := range s.Pkgs {
			ps = append(ps, n)
		}
		sort.Strings(ps)
		return sealedJSON{Mode: "packages", Packages: ps}
	}
	return sealedJSON{Mode: "none"}
}

// firstOf names at most n of list, and how many more there are.
func firstOf(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(list[:n], ", "), len(list)-n)
}

func skippedSum(m map[string]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func printStatus(w io.Writer, rep statusReport) {
	width := len("PACKAGE")
	for _, p := range rep.Packages {
		width = max(width, len(p.Package))
	}
	line := func(p *pkgStatus, mark string) {
		fmt.Fprintf(w, "%-*s %-6s %7d %7d %9d %11d %8d %7d\n", width, p.Package, mark, p.Files, p.Locked, p.Unlocked, p.Unsupported, skippedSum(p.Skipped), p.Verity)
	}
	fmt.Fprintf(w, "%-*s %-6s %7s %7s %9s %11s %8s %7s\n", width, "PACKAGE", "SEALED", "FILES", "LOCKED", "UNLOCKED", "UNSUPPORTED", "SKIPPED", "VERITY")
	for _, p := range rep.Packages {
		mark := "no"
		if p.Sealed {
			mark = "yes"
		}
		switch {
		case p.Error != "":
			mark = "ERROR"
		case p.Excluded:
			mark = "excl"
		case p.State != "installed" && p.State != "triggers-pending" && p.State != "triggers-awaited":
			mark = "(" + p.State + ")"
		}
		line(p, mark)
	}
	line(&rep.Total, "")
	switch rep.Sealed.Mode {
	case "all":
		fmt.Fprint(w, "sealed: all packages")
		if len(rep.Sealed.Except) > 0 {
			fmt.Fprintf(w, " except %v", rep.Sealed.Except)
		}
		fmt.Fprintln(w)
	case "packages":
		fmt.Fprintf(w, "sealed: %d packages\n", len(rep.Sealed.Packages))
	default:
		fmt.Fprintln(w, "sealed: nothing (debseal lock --all to seal the system)")
	}
	switch {
	case rep.Mode == "" && len(rep.Installed) == 0:
		fmt.Fprintln(w, "integration: none (debseal setup, or dpkg fails on locked files)")
	case len(rep.Installed) == 1 && rep.Installed[0] == rep.Mode:
		fmt.Fprintf(w, "integration: %s\n", rep.Mode)
	default:
		// A failed or interrupted setup, or files removed by hand.
		mode := rep.Mode
		if mode == "" {
			mode = "none"
		}
		inst := strings.Join(rep.Installed, ", ")
		if inst == "" {
			inst = "nothing"
		}
		fmt.Fprintf(w, "integration: the mode file says %s, but %s is installed (debseal setup --mode MODE, or debseal teardown, makes it whole)\n", mode, inst)
	}
	switch {
	case rep.Guard.On:
		fmt.Fprintf(w, "capability guard: on; these units keep CAP_LINUX_IMMUTABLE: %s\n", strings.Join(rep.Guard.Allowed, " "))
	case len(rep.Guard.Allowed) > 0:
		fmt.Fprintf(w, "capability guard: off, but allow drop-ins are left for %s (debseal setup --guard, or --guard=false, makes it whole)\n", strings.Join(rep.Guard.Allowed, " "))
	default:
		fmt.Fprintln(w, "capability guard: off (debseal setup --guard)")
	}
	printVerityStatus(w, rep.Verity)
	if len(rep.Pending) > 0 {
		fmt.Fprintf(w, "still to be locked (not configured yet, or the last relock failed; every debseal run retries): %v\n", rep.Pending)
	}
	for _, tr := range rep.Transactions {
		state := "interrupted: run debseal recover"
		if tr.Running {
			state = "running"
		}
		fmt.Fprintf(w, "transaction of %s (pid %d) since %s: %d files unlocked, %s\n", tr.Via, tr.Pid, tr.Since, tr.Unlocked, state)
	}
	if len(rep.ForeignLinks) > 0 {
		fmt.Fprintf(w, "foreign-link: %d files have a hard link no package owns (maybe outside the root); never locked:\n", len(rep.ForeignLinks))
		for _, f := range rep.ForeignLinks {
			fmt.Fprintf(w, "foreign-link %s [%s]: %s\n", f.Path, f.Package, f.Detail)
		}
	}
	if len(rep.Shadowed) > 0 {
		fmt.Fprintf(w, "shadowed: %d mounts hide sealed files (what runs there is neither the package's nor locked):\n", len(rep.Shadowed))
		for _, m := range rep.Shadowed {
			fmt.Fprintf(w, "shadowed %s: %s hides %d sealed files of %s\n", m.MountPoint, m.what, m.Hidden, firstOf(m.Packages, 5))
		}
	}
	for _, p := range rep.Packages {
		if p.Error != "" {
			fmt.Fprintf(w, "error: %s: %s\n", p.Package, p.Error)
		}
	}
}

// printVerityStatus says how much of what is planned has fs-verity, what
// its Merkle trees cost, and which filesystems take it.
func printVerityStatus(w io.Writer, v verityJSON) {
	pct := 0.0
	if v.Files > 0 {
		pct = 100 * float64(v.Enabled) / float64(v.Files)
	}
	fmt.Fprintf(w, "fs-verity: %s; %d of %d regular files (%.0f%%), Merkle trees %.1f MB for %.1f MB of data",
		v.Mode, v.Enabled, v.Files, pct, float64(v.TreeBytes)/1e6, float64(v.DataBytes)/1e6)
	var takes, not []string
	for _, d := range v.Devices {
		if d.Takes {
			takes = append(takes, d.Device)
		} else {
			not = append(not, d.Device)
		}
	}
	if len(takes) > 0 {
		fmt.Fprintf(w, "; on device %s", strings.Join(takes, " "))
	}
	if len(not) > 0 {
		fmt.Fprintf(w, "; not available on device %s", strings.Join(not, " "))
	}
	fmt.Fprintln(w)
}
