package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/debseal/debseal/dpkghook"
	"github.com/debseal/debseal/pkg/audit"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/evidence"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/seen"
	"github.com/debseal/debseal/pkg/shadow"
	"github.com/urfave/cli/v2"
)

func init() { register(auditCommand) }

type auditOpts struct {
	Format    string // text, dpkg, json, prometheus
	Conffiles bool
	Full      bool
	NoCache   bool
	Verbose   bool
	Textfile  string // directory of node_exporter's textfile collector, "" for none
	Pkgs      []string
	Stderr    io.Writer
}

func auditCommand() *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "check installed package files: content, type, mode, owner, symlink targets, lock state",
		ArgsUsage: "[PKG[:ARCH]...]",
		Description: "Checks every file of the given packages (default: all) against dpkg's md5sums, debseal's\n" +
			"SHA-256 manifests (mode, owner, type, symlink target), statoverrides and the lock policy.\n" +
			"Read-only. Conffiles are skipped unless --conffiles (dpkg format checks them, as dpkg does).\n" +
			"Incremental once ROOT/var/lib/debseal/audit.cache exists: an immutable file whose ctime,\n" +
			"mtime, size and inode are unchanged is not read again (--full reads everything; the\n" +
			"cache is written when ROOT/var/lib/debseal exists). See docs/audit.md.\n" +
			"Mounts below the root that hide sealed files (a bind, tmpfs, overlay or FUSE mount over a\n" +
			"package path; not /proc, /sys, /dev, /run, a separate filesystem at /usr, /boot, /var...,\n" +
			"nor mount-allow) are reported first, as shadowed (see debseal(8)).\n" +
			"A sealed file found mutable that debseal saw locked since, with no dpkg run's journal\n" +
			"naming it, is reported as lifted, with the window (last seen locked, found mutable).\n" +
			"Tampered files that dpkg runs found before replacing them are reported as\n" +
			"tampered-before-upgrade until debseal evidence clear acknowledges them.\n" +
			"Informational lines (path-excluded files) are not findings.\n\n" + exitHelp("audit"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "format", Aliases: []string{"f"}, Value: "text", Usage: "output `FORMAT`: text, dpkg (dpkg --verify lines), json (one object per line), prometheus (node_exporter textfile)"},
			&cli.BoolFlag{Name: "conffiles", Usage: "check conffiles against their status hash too (default: yes with --format dpkg, no otherwise)"},
			&cli.BoolFlag{Name: "full", Usage: "read every file, ignoring the incremental cache"},
			&cli.BoolFlag{Name: "no-cache", Usage: "neither read nor write the incremental cache"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "text format: also list informational lines (path-excluded files)"},
			&cli.StringFlag{Name: "textfile-dir", Usage: "also write the Prometheus metrics to `DIR`/debseal.prom (atomically, for node_exporter's textfile collector; empty: no)"},
		},
		Action: func(c *cli.Context) error {
			o := auditOpts{Format: c.String("format"), Conffiles: c.Bool("conffiles"), Full: c.Bool("full"),
				NoCache: c.Bool("no-cache"), Verbose: c.Bool("verbose"), Textfile: c.String("textfile-dir"),
				Pkgs: c.Args().Slice(), Stderr: c.App.ErrWriter}
			if !c.IsSet("conffiles") && o.Format == "dpkg" {
				o.Conffiles = true
			}
			limitMemory()
			return runAudit(c.Context, globalsFrom(c), o, c.App.Writer)
		},
	}
}

// renderer turns the finding stream into one output format.
type renderer interface {
	finding(f audit.Finding)
	done(sum *audit.Summary)
}

func newRenderer(format string, w *bufio.Writer, verbose bool) (renderer, error) {
	switch format {
	case "text", "":
		return &textRenderer{w: w, verbose: verbose}, nil
	case "dpkg":
		return &dpkgRenderer{w: w}, nil
	case "json":
		return &jsonRenderer{w: w, enc: json.NewEncoder(w)}, nil
	case "prometheus":
		return &promRenderer{w: w}, nil
	}
	return nil, usagef("unknown --format %q (text, dpkg, json, prometheus)", format)
}

func runAudit(ctx context.Context, g globalOpts, o auditOpts, stdout io.Writer) error {
	out := bufio.NewWriterSize(stdout, 64<<10)
	defer out.Flush()
	rend, err := newRenderer(o.Format, out, o.Verbose)
	if err != nil {
		return err
	}
	for _, n := range o.Pkgs {
		if strings.HasPrefix(n, "-") {
			return usagef("option %q after package names: options come first (debseal audit [OPTIONS] PKG...)", n)
		}
	}
	sys, err := openSystem(g, false)
	if err != nil {
		return err
	}
	defer sys.Close()
	var pkgs []*dpkgdb.Package
	if len(o.Pkgs) > 0 {
		var unknown []string
		for _, id := range o.Pkgs {
			found := false
			for _, p := range sys.db.Lookup(id) {
				if p.HasFiles() {
					pkgs, found = append(pkgs, p), true
				}
			}
			if !found {
				unknown = append(unknown, id)
			}
		}
		if len(unknown) > 0 {
			return fmt.Errorf("not installed: %s", strings.Join(unknown, " "))
		}
	}
	filters, err := pathFilters(g.Root)
	if err != nil {
		return err
	}
	stateDir := seal.StateDir(g.Root)
	var cache *audit.Cache
	if !o.NoCache {
		var cerr error
		cache, cerr = audit.LoadCache(g.Root)
		if cerr != nil {
			fmt.Fprintf(o.Stderr, "debseal: warning: %v (reading every file)\n", cerr)
		}
	}
	// What tells a lifted flag from one never set: what debseal saw
	// locked (pkg/seen), and the dpkg runs that explain a mutable file.
	seenLog, serrs := seen.Load(g.Root)
	for _, e := range serrs {
		fmt.Fprintf(o.Stderr, "debseal: warning: %v (files seen locked before may be reported as not-locked instead of lifted)\n", e)
	}
	txns, jerrs := auditTransactions(g.Root)
	for _, e := range jerrs {
		fmt.Fprintf(o.Stderr, "debseal: warning: %v\n", e)
	}
	evs, everrs := evidence.List(g.Root)
	vdevs, err := seal.LoadVerityDevices(g.Root)
	if err != nil {
		fmt.Fprintf(o.Stderr, "debseal: warning: %v (files that lost fs-verity are not reported)\n", err)
	}
	a := &audit.Auditor{DB: sys.db, Policy: sys.pol, Sealed: sys.state.Sealed, FS: sys.fs.Root,
		Manifests: manifest.StoreFor(g.Root), Owners: manifest.LoadOwners(g.Root), Mounts: mountinfo.Self,
		Opts: audit.Options{Conffiles: o.Conffiles, PathFilters: filters, Cache: cache, Full: o.Full,
			Progress: newProgress(o.Stderr, true), Evidence: evs, EvidenceErrors: everrs},
		Seen: seenLog, Transactions: txns, VerityDevices: vdevs}
	sum, err := a.Run(ctx, pkgs, rend.finding)
	if err != nil {
		return err
	}
	if err := auditGuard(g, sum, rend.finding); err != nil {
		return err
	}
	rend.done(sum)
	if o.Textfile != "" {
		if err := writeTextfile(o.Textfile, sum); err != nil {
			return err
		}
	}
	if writableState(g.Root, stateDir) {
		// Auditing some packages keeps what the cache knows of the rest.
		if cache != nil {
			if err := cache.Save(g.Root, len(pkgs) > 0); err != nil {
				fmt.Fprintf(o.Stderr, "debseal: warning: %v\n", err)
			}
		}
		// A full audit folds every earlier record into its own.
		if err := seenLog.Save(g.Root, len(pkgs) == 0); err != nil {
			fmt.Fprintf(o.Stderr, "debseal: warning: %v\n", err)
		}
	}
	if n := sum.Findings(); n > 0 {
		return findingsf("audit: %d findings", n)
	}
	return nil
}

// auditTransactions reads the journals of dpkg runs for the audit: what
// each unlocked, and whether its process still runs.
func auditTransactions(root string) ([]audit.Transaction, []error) {
	js, errs := seal.Journals(root)
	out := make([]audit.Transaction, 0, len(js))
	for _, j := range js {
		t := audit.Transaction{Live: alive(j.Owner), All: j.All, Packages: map[string]bool{}, Inodes: map[fsattr.Ident]bool{}}
		for _, id := range j.Packages {
			n, _, _ := strings.Cut(id, ":")
			t.Packages[n] = true
		}
		for _, n := range j.NewPackages {
			t.Packages[n] = true
		}
		for _, e := range j.Unlocked {
			t.Inodes[fsattr.Ident{Dev: e.Dev, Ino: e.Ino}] = true
		}
		out = append(out, t)
	}
	return out, errs
}

// writableState says whether the audit may write its cache: only where
// debseal keeps state already (it never creates /var/lib/debseal on a
// system that does not use it), and never on this machine's own root while
// the test guard is set.
func writableState(root, stateDir string) bool {
	if st, err := os.Stat(stateDir); err != nil || !st.IsDir() {
		return false
	}
	return checkHostRoot(root) == nil
}

// pathFilters returns dpkg's path-exclude/path-include options: the
// root's /etc/dpkg (what apt and dpkg inside that system use), then, for a
// --root, the host's /etc/dpkg too (dpkg --root reads the host's
// configuration, so files installed into a sandbox from outside follow
// those).
func pathFilters(root string) ([]string, error) {
	dirs := []string{filepath.Join(root, "etc/dpkg")}
	if filepath.Clean(root) != "/" {
		dirs = append(dirs, "/etc/dpkg")
	}
	var out []string
	for _, d := range dirs {
		inv, err := dpkghook.ParseConfig(d)
		if err != nil {
			return nil, err
		}
		out = append(out, inv.PathFilters...)
	}
	return out, nil
}

// --- text -------------------------------------------------------------------

type textRenderer struct {
	w       *bufio.Writer
	verbose bool
}

func (r *textRenderer) finding(f audit.Finding) {
	if f.Kind.Info() && !r.verbose {
		return
	}
	fmt.Fprintln(r.w, f.String())
}

func (r *textRenderer) done(s *audit.Summary) {
	var parts []string
	for _, k := range audit.Kinds() {
		if s.ByKind[k] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", s.ByKind[k], k))
		}
	}
	verdict := "no findings"
	if n := s.Findings(); n > 0 {
		verdict = fmt.Sprintf("%d findings", n)
	}
	if len(parts) > 0 {
		verdict += " (" + strings.Join(parts, ", ") + ")"
	}
	measured := ""
	if s.VerityMeasured > 0 {
		measured = fmt.Sprintf(", %d measured by fs-verity", s.VerityMeasured)
	}
	fmt.Fprintf(r.w, "audited %d paths of %d packages (%d with a manifest) in %.2fs: %d files read (%.1f MB), %d from the cache%s; %s\n",
		s.Files, s.Packages, s.Manifests, s.Duration.Seconds(), s.Hashed, float64(s.BytesHashed)/1e6, s.Cached, measured, verdict)
}

// --- dpkg --verify ------------------------------------------------------------

// dpkgRenderer prints what dpkg --verify prints (src/main/verify.c
// verify_output_rpm): one line per path dpkg would report, "%.9s %c %s%s".
type dpkgRenderer struct {
	w         *bufio.Writer
	lastPkg   string
	lastReal  string
	lastValid bool
}

func (r *dpkgRenderer) finding(f audit.Finding) {
	if f.Dpkg == "" {
		return
	}
	if r.lastValid && r.lastPkg == f.Package && r.lastReal == f.Real {
		return // one line per path, whatever the number of findings
	}
	r.lastPkg, r.lastReal, r.lastValid = f.Package, f.Real, true
	attr := ' '
	if f.Conffile {
		attr = 'c'
	}
	suffix := ""
	if strings.HasPrefix(f.Dpkg, "missing") {
		if e := f.Errno(); e != 0 && e != syscall.ENOENT {
			suffix = " (" + audit.Strerror(e) + ")"
		}
	}
	fmt.Fprintf(r.w, "%.9s %c %s%s\n", f.Dpkg, attr, f.Real, suffix)
}

func (r *dpkgRenderer) done(*audit.Summary) {}

// --- JSON ---------------------------------------------------------------------

type jsonRenderer struct {
	w   *bufio.Writer
	enc *json.Encoder
}

// jsonFinding is the documented schema (docs/audit.md).
type jsonFinding struct {
	Type     string     `json:"type"` // "finding"
	Kind     string     `json:"kind"`
	Info     bool       `json:"info,omitempty"`
	Package  string     `json:"package"`
	Path     string     `json:"path"`
	Real     string     `json:"real,omitempty"`
	Conffile bool       `json:"conffile,omitempty"`
	Expected string     `json:"expected,omitempty"`
	Actual   string     `json:"actual,omitempty"`
	Source   string     `json:"source,omitempty"`
	Error    string     `json:"error,omitempty"`
	Dpkg     string     `json:"dpkg,omitempty"`
	Mount    *mountJSON `json:"mount,omitempty"`    // shadowed only
	Evidence string     `json:"evidence,omitempty"` // tampered-before-upgrade only
	// lifted: the window in which the flag was lifted
	SeenLocked    string `json:"seen_locked,omitempty"`
	SeenBy        string `json:"seen_by,omitempty"`
	FoundUnlocked string `json:"found_unlocked,omitempty"`
}

// mountJSON is a mount that hides sealed files: a shadowed finding's
// "mount", an element of status's "shadowed" (docs/audit.md, docs/json.md).
type mountJSON struct {
	MountPoint string   `json:"mount_point"` // within the root
	ID         int      `json:"id"`
	Parent     int      `json:"parent"`
	Device     string   `json:"device"` // major:minor
	Root       string   `json:"root"`   // the directory of the filesystem mounted there
	FSType     string   `json:"fstype"`
	Source     string   `json:"source"`
	Options    []string `json:"options"`
	Hidden     int      `json:"hidden_files"`
	Packages   []string `json:"packages"`
	what       string   // shadow.Mount.Describe, for the text
}

func newMountJSON(s *shadow.Shadow) *mountJSON {
	return &mountJSON{MountPoint: s.Point, ID: s.ID, Parent: s.Parent, Device: fmt.Sprintf("%d:%d", s.Major, s.Minor),
		Root: s.Root, FSType: s.FSType, Source: s.Source, Options: s.Options, Hidden: s.Hidden, Packages: s.Packages, what: s.Describe()}
}

type jsonSummary struct {
	Type        string         `json:"type"` // "summary"
	Packages    int            `json:"packages"`
	Files       int            `json:"files"`
	Hashed      int            `json:"files_read"`
	Cached      int            `json:"files_cached"`
	Measured    int            `json:"verity_measured"`
	BytesHashed int64          `json:"bytes_read"`
	Manifests   int            `json:"packages_with_manifest"`
	Findings    int            `json:"findings"`
	ByKind      map[string]int `json:"by_kind"`
	Seconds     float64        `json:"duration_seconds"`
}

func (r *jsonRenderer) finding(f audit.Finding) {
	j := jsonFinding{Type: "finding", Kind: f.Kind.String(), Info: f.Kind.Info(), Package: f.Package, Path: f.Path,
		Conffile: f.Conffile, Expected: f.Expected, Actual: f.Actual, Source: f.Source, Dpkg: strings.TrimRight(f.Dpkg, " "),
		Evidence: f.Evidence}
	if f.Real != f.Path {
		j.Real = f.Real
	}
	if f.Err != nil {
		j.Error = f.Err.Error()
	}
	if f.Shadow != nil {
		j.Mount = newMountJSON(f.Shadow)
	}
	if !f.SeenLocked.IsZero() {
		j.SeenLocked, j.SeenBy = f.SeenLocked.UTC().Format(time.RFC3339), f.SeenBy
	}
	if !f.FoundUnlocked.IsZero() {
		j.FoundUnlocked = f.FoundUnlocked.UTC().Format(time.RFC3339)
	}
	r.enc.Encode(j)
}

func (r *jsonRenderer) done(s *audit.Summary) {
	j := jsonSummary{Type: "summary", Packages: s.Packages, Files: s.Files, Hashed: s.Hashed, Cached: s.Cached,
		Measured: s.VerityMeasured, BytesHashed: s.BytesHashed, Manifests: s.Manifests, Findings: s.Findings(), ByKind: map[string]int{}, Seconds: s.Duration.Seconds()}
	for _, k := range audit.Kinds() {
		j.ByKind[k.String()] = s.ByKind[k]
	}
	r.enc.Encode(j)
}

// --- Prometheus ---------------------------------------------------------------

// writeTextfile writes the metrics to dir/debseal.prom through a temporary
// file and a rename, so node_exporter never reads half a file. dir is a
// path of the machine running the audit, not under --root.
func writeTextfile(dir string, s *audit.Summary) error {
	var b strings.Builder
	w := bufio.NewWriter(&b)
	(&promRenderer{w: w}).done(s)
	w.Flush()
	if err := seal.WriteFileAtomic(filepath.Join(dir, "debseal.prom"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing metrics: %w", err)
	}
	return nil
}

// promRenderer writes node_exporter textfile-collector metrics: write them
// to a temporary file and rename it into the collector's directory.
type promRenderer struct{ w *bufio.Writer }

func (r *promRenderer) finding(audit.Finding) {}

func (r *promRenderer) done(s *audit.Summary) {
	w := r.w
	metric := func(name, help, typ string) {
		fmt.Fprintf(w, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, typ)
	}
	metric("debseal_audit_findings", "Findings of the last debseal audit, by kind (kind=\"excluded\" is informational).", "gauge")
	kinds := audit.Kinds()
	sort.Slice(kinds, func(i, j int) bool { return kinds[i].String() < kinds[j].String() })
	for _, k := range kinds {
		fmt.Fprintf(w, "debseal_audit_findings{kind=%q} %d\n", k.String(), s.ByKind[k])
	}
	metric("debseal_audit_findings_total", "Findings of the last debseal audit, informational kinds excluded.", "gauge")
	fmt.Fprintf(w, "debseal_audit_findings_total %d\n", s.Findings())
	metric("debseal_audit_packages_checked", "Packages the last audit checked.", "gauge")
	fmt.Fprintf(w, "debseal_audit_packages_checked %d\n", s.Packages)
	metric("debseal_audit_files_checked", "Package paths the last audit checked.", "gauge")
	fmt.Fprintf(w, "debseal_audit_files_checked %d\n", s.Files)
	metric("debseal_audit_files_read", "Regular files the last audit read and hashed.", "gauge")
	fmt.Fprintf(w, "debseal_audit_files_read %d\n", s.Hashed)
	metric("debseal_audit_files_cached", "Regular files whose digest the last audit took from its incremental cache.", "gauge")
	fmt.Fprintf(w, "debseal_audit_files_cached %d\n", s.Cached)
	metric("debseal_audit_files_verity_measured", "Regular files the last audit checked by their fs-verity digest, without reading them.", "gauge")
	fmt.Fprintf(w, "debseal_audit_files_verity_measured %d\n", s.VerityMeasured)
	metric("debseal_audit_bytes_read", "Bytes the last audit hashed.", "gauge")
	fmt.Fprintf(w, "debseal_audit_bytes_read %d\n", s.BytesHashed)
	metric("debseal_audit_files_shadowed", "Sealed files that mounts below the root hide (kind=\"shadowed\" counts the mounts).", "gauge")
	fmt.Fprintf(w, "debseal_audit_files_shadowed %d\n", s.ShadowedFiles)
	metric("debseal_audit_duration_seconds", "Wall time of the last audit.", "gauge")
	fmt.Fprintf(w, "debseal_audit_duration_seconds %.3f\n", s.Duration.Seconds())
	metric("debseal_audit_last_run_timestamp_seconds", "When the last audit finished (Unix time).", "gauge")
	fmt.Fprintf(w, "debseal_audit_last_run_timestamp_seconds %d\n", time.Now().Unix())
}
