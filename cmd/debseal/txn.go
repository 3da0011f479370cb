package main

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/debseal/debseal/dpkghook"
	"github.com/debseal/debseal/pkg/audit"
	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/deb"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/evidence"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/seal"
	"golang.org/x/sys/unix"
)

// openSeal opens the root as a seal.System with the policy pol, for the
// commands that run transactions (hooks, wrapper, recover).
func openSeal(g globalOpts, pol *policy.Config) (*seal.System, func(), error) {
	db, err := dpkgdb.Open(g.Admindir)
	if err != nil {
		return nil, nil, err
	}
	st, err := seal.LoadState(g.Root)
	if err != nil {
		return nil, nil, err
	}
	fs, err := seal.OpenRootFS(g.Root)
	if err != nil {
		return nil, nil, err
	}
	s := &seal.System{Root: g.Root, Admindir: g.Admindir, Config: g.Config, FS: fs, DB: db, Policy: pol,
		State: st, ReadDeb: readDeb, Alive: alive}
	// After every dpkg run End records manifests of what it relocked, from
	// the database as End reread it (diversions may have changed).
	s.Record = func(ctx context.Context, pkgs []*dpkgdb.Package, debs []seal.DebRef, digests seal.Digests) error {
		b := manifest.NewBuilder(g.Root, s.DB, fs.Root)
		defer b.Close()
		b.Known = func(id fsattr.Ident, size, mtime int64) (manifest.Digests, bool) {
			d, ok := digests.Lookup(id, size, mtime)
			return manifest.Digests{SHA256: d.SHA256, MD5: d.MD5, HasVerity: d.HasVerity, Verity: d.Verity}, ok
		}
		mdebs := make([]manifest.Deb, len(debs))
		for i, d := range debs {
			mdebs[i] = manifest.Deb{Path: d.Path, Package: d.Package, Arch: d.Arch}
		}
		return b.Record(ctx, pkgs, mdebs)
	}
	s.Manifest = func(p *dpkgdb.Package) (map[string][32]byte, error) {
		return manifestSHA256(g.Root, p)
	}
	s.Cached = func(bytes int64) func(fsattr.Info) (seal.Known, bool) {
		return auditCacheLookup(g.Root, bytes)
	}
	s.Forget = func(gone []seal.PkgArch) error {
		store := manifest.StoreFor(g.Root)
		var errs []error
		for _, k := range gone {
			if err := store.Remove(k.Name, k.Arch); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
	return s, func() { fs.Close() }, nil
}

// manifestSHA256 is the SHA-256 of each regular file of p as its manifest
// records it, by listed path: nil when there is none, or only one for
// another version (it describes other files).
func manifestSHA256(root string, p *dpkgdb.Package) (map[string][32]byte, error) {
	m, err := manifest.StoreFor(root).Load(p.Name, p.Arch)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil || m.Version != p.Version {
		return nil, err
	}
	out := make(map[string][32]byte, len(m.Entries))
	for _, e := range m.Entries {
		if e.Type == manifest.TypeFile && e.HasSHA256 {
			out[e.Path] = e.SHA256
		}
	}
	return out, nil
}

// auditCacheLookup offers the audit's cache to the check before an
// unlock, for files no relock record vouches for: only when loading it
// costs less than reading bytes of files would (it holds the whole
// system, and each of its bytes is read once and checksummed).
func auditCacheLookup(root string, bytes int64) func(fsattr.Info) (seal.Known, bool) {
	if size, err := audit.CacheSize(root); err != nil || size > bytes {
		return nil
	}
	c, err := audit.LoadCache(root)
	if err != nil || c.Len() == 0 {
		return nil
	}
	return func(info fsattr.Info) (seal.Known, bool) {
		e, ok := c.Vouch(info)
		return seal.Known{MD5: e.MD5, SHA256: e.SHA256, HasMD5: e.HasMD5, HasSHA: e.HasSHA256}, ok
	}
}

// keepEvidence makes Begin keep what it finds tampered under the root
// (pkg/evidence), within the bounds of the policy, naming run (what dpkg
// was about to do).
func keepEvidence(s *seal.System, run string) {
	st := &evidence.Store{Root: s.Root, MaxFile: s.Policy.EvidenceMaxFile, MaxTotal: s.Policy.EvidenceMaxTotal}
	s.Keep = func(t seal.Tampered, open func() (io.ReadCloser, error)) (string, error) {
		ev, isNew, err := st.Keep(evidenceEvent(t, run), open)
		if err != nil {
			return "no evidence kept", err
		}
		if !isNew {
			return "recorded before: " + ev.Where(), nil
		}
		return "evidence " + ev.Where(), nil
	}
}

// evidenceEvent is what the evidence records of a tampered file.
func evidenceEvent(t seal.Tampered, run string) evidence.Event {
	ev := evidence.Event{Package: t.Owner.Pkg, Path: t.Owner.Path, Run: run, Type: t.TypeName(), Link: t.Link, Size: t.Info.Size}
	if t.Owner.Real != t.Owner.Path {
		ev.Real = t.Owner.Real
	}
	if t.HasMD5 {
		ev.ExpectedMD5 = hex.EncodeToString(t.WantMD5[:])
	}
	if t.HasSHA256 {
		ev.ExpectedSHA256 = hex.EncodeToString(t.WantSHA256[:])
	}
	if t.Regular() {
		ev.ActualMD5, ev.ActualSHA256 = hex.EncodeToString(t.GotMD5[:]), hex.EncodeToString(t.GotSHA256[:])
	}
	return ev
}

// readDeb reads an archive's control member for a transaction plan.
func readDeb(path string) (*seal.DebInfo, error) {
	info, err := deb.ReadInfoFile(path)
	if err != nil {
		return nil, err
	}
	d := &seal.DebInfo{Path: path, Package: info.Package, Version: info.Version, Arch: info.Architecture,
		MultiArch: info.MultiArch, Scripts: info.Scripts, Triggers: info.Triggers, MD5: map[string][16]byte{}}
	for _, f := range []struct {
		dst  *string
		name string
	}{{&d.Replaces, "Replaces"}, {&d.Conflicts, "Conflicts"}, {&d.Breaks, "Breaks"}, {&d.Provides, "Provides"}} {
		*f.dst = info.Control.Value(f.name)
	}
	for _, s := range info.MD5Sums {
		d.Paths = append(d.Paths, s.Path)
		d.MD5[s.Path] = s.MD5
	}
	if info.MD5Sums == nil {
		// No md5sums member (dpkg generates one at unpack): the only way
		// to know which files the archive will write is its data member.
		// Rare, and slower, but a locked file it overwrites must be
		// unlocked first.
		d.MD5 = nil
		err := deb.WalkDataFile(path, deb.Options{}, func(e *deb.Entry) error {
			if e.Type == deb.TypeFile || e.Type == deb.TypeHardlink {
				d.Paths = append(d.Paths, e.Path)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	for _, c := range info.Conffiles {
		d.Paths = append(d.Paths, c.Path)
	}
	return d, nil
}

func alive(p seal.Process) bool {
	return dpkghook.Alive("/proc", dpkghook.ProcID{Pid: p.Pid, StartTime: p.StartTime})
}

// self identifies this process.
func self(via string) (seal.Process, error) {
	p, err := dpkghook.ReadProc("/proc", os.Getpid())
	if err != nil {
		return seal.Process{}, err
	}
	return seal.Process{Pid: p.Pid, StartTime: p.StartTime, Comm: p.Comm, Via: via}, nil
}

func processOf(p *dpkghook.Proc, via string) seal.Process {
	return seal.Process{Pid: p.Pid, StartTime: p.StartTime, Comm: p.Comm, Via: via}
}

// eventLog appends one line per event to ROOT/var/log/debseal.log and
// copies warnings to stderr.
type eventLog struct {
	path   string
	via    string
	stderr io.Writer
	verity policy.Verity // the policy's, once a session is open: how fs-verity notes are told
}

func newEventLog(root, via string, stderr io.Writer) *eventLog {
	return &eventLog{path: filepath.Join(root, "var/log/debseal.log"), via: via, stderr: stderr}
}

// timing logs how long debseal itself took in this invocation (for the
// per-transaction cost; the wrapper subtracts the time dpkg ran) and the
// CPU time it used (user+sys of this process alone, never dpkg's), which
// adds up over an upgrade where wall times overlap with load.
func (l *eventLog) timing(what string, dpkgTime time.Duration) {
	var ru unix.Rusage
	cpu, faults := "?", "?"
	if unix.Getrusage(unix.RUSAGE_SELF, &ru) == nil {
		cpu = fmt.Sprintf("%.1f", float64(ru.Utime.Nano()+ru.Stime.Nano())/1e6)
		faults = strconv.FormatInt(ru.Minflt+ru.Majflt, 10)
	}
	// Page faults: on a virtual machine each fresh page can cost tens of
	// microseconds, and they are most of what a short process costs.
	l.Infof("%s: debseal took %.1f ms (cpu %s ms, %s page faults)", what, float64(time.Since(processStart)-dpkgTime)/1e6, cpu, faults)
}

func (l *eventLog) write(level, format string, args ...any) {
	l.record(level, level != "info", format, args...)
}

// record writes one line to the log, and to stderr when toStderr.
func (l *eventLog) record(level string, toStderr bool, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	line := fmt.Sprintf("%s debseal[%d] %s %s: %s\n", time.Now().UTC().Format(time.RFC3339), os.Getpid(), l.via, level, msg)
	// Through the root (pkg/confined): ROOT/var/log may be a symlink that
	// stays inside the root, debseal.log itself never is one, and a FIFO
	// or device there is refused, not opened. A root without /var/log
	// gets no log; any other failure is said once per line on stderr.
	const logName = "var/log/debseal.log"
	err := errors.New("confined: not under a root")
	if root, ok := strings.CutSuffix(l.path, logName); ok {
		var r *confined.Root
		if r, err = confined.Open(root); err == nil {
			err = r.Append(logName, []byte(line), 0o640)
			r.Close()
		}
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) && l.stderr != nil {
		fmt.Fprintf(l.stderr, "debseal: warning: log not written: %v\n", err)
	}
	if toStderr && l.stderr != nil {
		fmt.Fprintf(l.stderr, "debseal: %s: %s\n", level, msg)
	}
}

// startFailed logs why a transaction could not start. A refusal of
// tampered files goes to the log only: the error the hook or the
// wrapper returns says it on stderr already, file by file.
func (l *eventLog) startFailed(what string, err error) {
	l.record("error", !errors.Is(err, seal.ErrTampered), "%s: %v", what, err)
}

func (l *eventLog) Infof(format string, args ...any)  { l.write("info", format, args...) }
func (l *eventLog) Warnf(format string, args ...any)  { l.write("warning", format, args...) }
func (l *eventLog) Errorf(format string, args ...any) { l.write("error", format, args...) }

// logBegin records what Begin did.
func (l *eventLog) begin(rep *seal.BeginReport, what string) {
	checked := ""
	if rep != nil && rep.Checked > 0 {
		checked = fmt.Sprintf("; checked %d sealed files first, %d of them read (%.1f ms, cpu %.1f ms)", rep.Checked, rep.Read,
			float64(rep.CheckTime)/1e6, float64(rep.CheckCPU)/1e6)
	}
	switch {
	case rep == nil:
	case rep.Skipped != "":
	case rep.Journal == nil:
		// Refused, or failed before the unlock: the error says why.
	case rep.All:
		l.Warnf("%s: unlocked everything sealed (%d files in %d packages): %s%s", what, rep.Unlocked, rep.Packages, rep.Reason, checked)
	default:
		l.Infof("%s: unlocked %d files of %d packages%s%s", what, rep.Unlocked, rep.Packages, nameList(rep.Names), checked)
	}
	if rep != nil {
		// A security event: on dpkg's output and in the log, as every
		// hook event; the next audit (the daily timer: the journal)
		// reports it too.
		for _, t := range rep.Tampered {
			l.Warnf("%s: tampered-before-upgrade: %s; %s", what, t, t.Evidence)
		}
		for _, e := range rep.CheckErrors {
			l.Warnf("%s: not checked before unlocking (dpkg goes on): %v", what, e)
		}
	}
	if rep != nil && rep.Ignored > 0 {
		l.Infof("%s: left alone %d locked files that scripts or archives name but no sealed package owns", what, rep.Ignored)
	}
	if rep != nil {
		for _, e := range rep.Errors {
			l.Warnf("%s: could not unlock (dpkg goes on; it fails only if it must change this file): %v", what, e)
		}
	}
}

// nameList renders package names for a log line, at most 12 of them.
func nameList(names []string) string {
	if len(names) == 0 {
		return ""
	}
	if len(names) > 12 {
		return fmt.Sprintf(" (%s and %d more)", strings.Join(names[:12], " "), len(names)-12)
	}
	return " (" + strings.Join(names, " ") + ")"
}

// logEnd records what End did and warns about what needs attention.
func (l *eventLog) end(rep *seal.EndReport, what string) {
	if rep == nil {
		return
	}
	if rep.Deferred != "" {
		l.Infof("%s: nothing relocked now, %s; the next debseal run after it relocks", what, rep.Deferred)
		return
	}
	if len(rep.Held) > 0 {
		l.Infof("%s: left unlocked for a transaction still running: %s", what, strings.Join(rep.Held, " "))
	}
	verb := "relocked"
	if rep.Recovered {
		verb = "recovered: relocked"
	}
	l.Infof("%s: %s %d files (%d already locked) in %d packages%s", what, verb, rep.Locked, rep.Already, len(rep.Packages), nameList(rep.Packages))
	if len(rep.Pending) > 0 {
		l.Infof("%s: not configured yet, locked after configuration: %s", what, strings.Join(rep.Pending, " "))
	}
	info, warn := verityLines(l.verity, &rep.Verity, rep.VerityNew)
	for _, s := range info {
		l.Infof("%s: %s", what, s)
	}
	for _, s := range warn {
		l.Warnf("%s: %s", what, s)
	}
	for _, m := range rep.Mismatches {
		l.Warnf("%s: %s changed after dpkg wrote it; left unlocked (run debseal audit)", what, m)
	}
	for _, o := range rep.Orphans {
		real := o.Path
		if o.Real != "" {
			real = o.Real
		}
		l.Warnf("%s: orphan: %s was in %s and no package owns it now", what, real, o.Pkg)
	}
	for _, e := range rep.Errors {
		l.Errorf("%s: %v", what, e)
	}
}

// openSession opens the root for a transaction of owner (run says what
// it is, for the evidence of tampered files). For a hook or
// the wrapper (inPath), the processes above this one (the dpkg a hook
// serves, the apt that runs it) are the session's own: the locks they
// hold do not make the system busy. debseal recover has none: run from a
// maintainer script, it must not relock under the dpkg that runs it.
// They also read the policy differently (hookPolicy, loadPolicy); log is
// where a hook says which it applies.
func openSession(g globalOpts, owner seal.Process, inPath bool, log *eventLog, run string) (*seal.Session, func(), error) {
	// Without the capability nothing can be unlocked or relocked: stop
	// before dpkg changes anything rather than let it fail on the first
	// locked file it must replace, half way through.
	if why := missingCapability(); why != "" {
		return nil, nil, errors.New(why)
	}
	var pol *policy.Config
	var err error
	if inPath {
		pol, err = hookPolicy(g, log)
	} else {
		pol, err = loadPolicy(g, true)
	}
	if err != nil {
		return nil, nil, err
	}
	log.verity = pol.Verity
	s, closeFS, err := openSeal(g, pol)
	if err != nil {
		return nil, nil, err
	}
	if inPath {
		s.Ours = ancestors()
	}
	keepEvidence(s, run)
	return &seal.Session{System: s, Owner: owner, LockWait: lockWait}, closeFS, nil
}

// ancestors returns a test for "pid is this process or one above it".
func ancestors() func(int) bool {
	set := map[int]bool{os.Getpid(): true}
	for pid, depth := os.Getppid(), 0; pid > 1 && depth < 64; depth++ {
		set[pid] = true
		p, err := dpkghook.ReadProc("/proc", pid)
		if err != nil {
			break
		}
		pid = p.PPid
	}
	return func(pid int) bool { return set[pid] }
}

// session logs what a session step did.
func (l *eventLog) session(rep *seal.SessionReport, what string) {
	if rep == nil {
		return
	}
	for _, r := range rep.Recovered {
		if r.End != nil {
			l.end(r.End, fmt.Sprintf("recovery of %s (process %d, dead)", r.Journal.Owner.Via, r.Journal.Owner.Pid))
		}
	}
	for _, e := range rep.RecoverErrs {
		l.Errorf("recovery: %v", e)
	}
	l.begin(rep.Begin, what)
	l.end(rep.End, what)
}

// nothingSealed reports, without reading dpkg's database, that debseal has
// nothing to do on root: nothing sealed, no transaction left to recover.
// Hooks then return at once (a hook runs for every dpkg run).
func nothingSealed(root string) bool {
	st, err := seal.LoadState(root)
	if err != nil || st.Any() {
		return false
	}
	js, errs := seal.Journals(root)
	return len(js) == 0 && len(errs) == 0
}
