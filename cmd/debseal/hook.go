package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/debseal/debseal/dpkghook"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/urfave/cli/v2"
)

func init() { register(hookCommand) }

func hookCommand() *cli.Command {
	return &cli.Command{
		Name:   "hook",
		Usage:  "entry points for dpkg's and apt's hooks (written by debseal setup)",
		Hidden: true,
		Description: "dpkg-pre, dpkg-post: dpkg's pre-invoke/post-invoke (dpkg.cfg.d).\n" +
			"apt-pre-invoke, apt-pre-install-pkgs, apt-post-invoke: apt's DPkg:: hooks\n" +
			"(Pre-Install-Pkgs reads the VERSION 3 protocol on standard input).\n" +
			"Set DEBSEAL_DISABLE=1 to make every hook do nothing.",
		Subcommands: []*cli.Command{
			{Name: "dpkg-pre", Action: func(c *cli.Context) error {
				return runHookDpkg(c.Context, true, c.App.ErrWriter)
			}},
			{Name: "dpkg-post", Action: func(c *cli.Context) error {
				return runHookDpkg(c.Context, false, c.App.ErrWriter)
			}},
			{Name: "apt-pre-invoke", Action: func(c *cli.Context) error {
				return runHookAptPreInvoke(c.Context, globalsFrom(c), c.App.ErrWriter)
			}},
			{Name: "apt-pre-install-pkgs", Action: func(c *cli.Context) error {
				return runHookAptPkgs(c.Context, globalsFrom(c), os.Stdin, c.App.ErrWriter)
			}},
			{Name: "apt-post-invoke", Action: func(c *cli.Context) error {
				return runHookAptPostInvoke(c.Context, globalsFrom(c), c.App.ErrWriter)
			}},
		},
	}
}

func disabled() bool { return os.Getenv("DEBSEAL_DISABLE") == "1" }

// dpkgGlobals derives the root and admindir of the dpkg run a hook belongs
// to from the environment dpkg sets for its hooks.
func dpkgGlobals() globalOpts {
	root := os.Getenv("DPKG_ROOT")
	if root == "" {
		root = "/"
	}
	admindir := os.Getenv("DPKG_ADMINDIR")
	if admindir == "" {
		admindir = filepath.Join(root, "var/lib/dpkg")
	}
	return globalOpts{Root: root, Admindir: admindir, Config: filepath.Join(root, "etc/debseal/debseal.conf")}
}

// runHookDpkg is dpkg's pre-invoke (pre) or post-invoke hook. dpkg passes
// no package list, so the hook reads dpkg's command line from /proc (hook
// <- sh -c <- dpkg). A failing pre hook stops dpkg before it changes
// anything (exit 2); the post hook never fails dpkg.
func runHookDpkg(ctx context.Context, pre bool, stderr io.Writer) error {
	if disabled() {
		return nil
	}
	g := dpkgGlobals()
	if nothingSealed(g.Root) {
		return nil
	}
	log := newEventLog(g.Root, "dpkg-hook", stderr)
	dpkg, err := dpkghook.FindInvoker("/proc", os.Getpid())
	if err != nil {
		if pre {
			return fmt.Errorf("cannot find the dpkg process this hook belongs to: %w", err)
		}
		log.Errorf("cannot find the dpkg process this hook belongs to: %v", err)
		return nil
	}
	owner := processOf(dpkg, "dpkg-hook")
	req, what := dpkgRequest(dpkg)
	se, closeFS, err := openSession(g, owner, true, log, what)
	if err != nil {
		log.Errorf("%s: %v", what, err)
		if pre {
			return hookFailed(err)
		}
		return nil
	}
	defer closeFS()
	if pre {
		rep, err := se.Start(ctx, req)
		log.session(rep, what)
		if err != nil {
			log.startFailed(what, err)
			return hookFailed(err)
		}
		fault("after-unlock")
		log.timing(what+" (pre-invoke)", 0)
		return nil
	}
	fault("before-relock")
	se.Fresh = true // this process started after dpkg's run
	rep, err := se.Finish(ctx, nil)
	log.session(rep, what)
	if err != nil {
		log.Errorf("%s: %v (run debseal recover)", what, err)
	}
	log.timing(what+" (post-invoke)", 0)
	return nil
}

// dpkgRequest reads what the dpkg process will do from its command line,
// with dpkg's configuration files applied first as dpkg does.
func dpkgRequest(dpkg *dpkghook.Proc) (seal.Request, string) {
	if len(dpkg.Cmdline) == 0 {
		return seal.Request{Unknown: "dpkg's command line is unreadable"}, "dpkg"
	}
	what := "dpkg " + shortArgs(dpkg.Cmdline[1:])
	base, err := dpkghook.ParseConfig("/etc/dpkg")
	if err != nil {
		base = nil
	}
	inv, err := dpkghook.Parse(dpkg.Cmdline[1:], base)
	if err != nil {
		return seal.Request{Unknown: fmt.Sprintf("cannot parse dpkg's command line: %v", err)}, what
	}
	if action := os.Getenv("DPKG_HOOK_ACTION"); action != "" && action != inv.Action {
		return seal.Request{Unknown: fmt.Sprintf("dpkg's command line says %q, its hook says %q", inv.Action, action)}, what
	}
	cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", dpkg.Pid))
	if err != nil {
		cwd = "/"
	}
	return inv.Request(cwd), what
}

func shortArgs(args []string) string {
	s := fmt.Sprint(args)
	s = s[1 : len(s)-1]
	if len(s) > 120 {
		s = s[:117] + "..."
	}
	return s
}

// hookFailed explains a pre hook failure: dpkg (or apt) stops before it
// changes anything.
func hookFailed(err error) error {
	if errors.Is(err, seal.ErrTampered) {
		return fmt.Errorf("%w\ndebseal: stopping before dpkg changes anything (refuse-tampered-upgrade = yes in debseal.conf)", err)
	}
	return fmt.Errorf("%w\ndebseal: stopping before dpkg changes anything; fix the problem, or run the command with DEBSEAL_DISABLE=1 to bypass debseal (locked files will then make dpkg fail)", err)
}

// aptOwner is the apt process a hook runs for: the holder of the frontend
// lock when it is an ancestor (apt holds it for the whole transaction),
// else the nearest non-shell ancestor.
func aptOwner(admindir string) (seal.Process, error) {
	// Only an ancestor: with apt's Debug::NoLocking the holder may be some
	// other apt, whose journal this transaction must not join.
	if pid, err := seal.FrontendLockHolder(admindir); err == nil && pid > 0 && ancestors()(pid) {
		if p, err := dpkghook.ReadProc("/proc", pid); err == nil {
			return processOf(p, "apt-hook"), nil
		}
	}
	p, err := dpkghook.FindInvoker("/proc", os.Getpid())
	if err != nil {
		return seal.Process{}, err
	}
	return processOf(p, "apt-hook"), nil
}

// runHookAptPreInvoke runs before apt's first dpkg call: it recovers what
// a crashed run left unlocked. It never stops apt.
func runHookAptPreInvoke(ctx context.Context, g globalOpts, stderr io.Writer) error {
	if disabled() || nothingSealed(g.Root) {
		return nil
	}
	log := newEventLog(g.Root, "apt-hook", stderr)
	owner, err := aptOwner(g.Admindir)
	if err != nil {
		log.Errorf("pre-invoke: %v", err)
		return nil
	}
	se, closeFS, err := openSession(g, owner, true, log, "")
	if err != nil {
		log.Errorf("pre-invoke: %v", err)
		return nil
	}
	defer closeFS()
	rep, err := se.RecoverStale(ctx)
	log.session(rep, "apt pre-invoke")
	if err != nil {
		log.Errorf("pre-invoke: %v", err)
	}
	log.timing("apt pre-invoke", 0)
	return nil
}

// runHookAptPkgs is DPkg::Pre-Install-Pkgs (VERSION 3): the best planning
// input, every archive, configuration and removal of the transaction. A
// failure stops apt before any dpkg run.
func runHookAptPkgs(ctx context.Context, g globalOpts, stdin io.Reader, stderr io.Writer) error {
	if disabled() || nothingSealed(g.Root) {
		io.Copy(io.Discard, stdin)
		return nil
	}
	info, err := dpkghook.ParseApt(stdin)
	if err != nil {
		return hookFailed(err)
	}
	log := newEventLog(g.Root, "apt-hook", stderr)
	owner, err := aptOwner(g.Admindir)
	if err != nil {
		log.Errorf("pre-install-pkgs: %v", err)
		return hookFailed(err)
	}
	what := fmt.Sprintf("apt transaction (%d packages)", len(info.Lines)+len(info.Debs))
	se, closeFS, err := openSession(g, owner, true, log, what)
	if err != nil {
		log.Errorf("pre-install-pkgs: %v", err)
		return hookFailed(err)
	}
	defer closeFS()
	rep, err := se.Start(ctx, info.Request())
	log.session(rep, what)
	if err != nil {
		log.startFailed(what, err)
		return hookFailed(err)
	}
	fault("after-unlock")
	log.timing(what+" (pre-install-pkgs)", 0)
	return nil
}

// runHookAptPostInvoke runs after apt's last dpkg call, whether dpkg
// succeeded or not: it relocks. It never fails apt.
func runHookAptPostInvoke(ctx context.Context, g globalOpts, stderr io.Writer) error {
	if disabled() || nothingSealed(g.Root) {
		return nil
	}
	fault("before-relock")
	log := newEventLog(g.Root, "apt-hook", stderr)
	owner, err := aptOwner(g.Admindir)
	if err != nil {
		log.Errorf("post-invoke: %v", err)
		return nil
	}
	se, closeFS, err := openSession(g, owner, true, log, "")
	if err != nil {
		log.Errorf("post-invoke: %v", err)
		return nil
	}
	defer closeFS()
	se.Fresh = true // this process started after apt's last dpkg run
	rep, err := se.Finish(ctx, nil)
	log.session(rep, "apt transaction")
	if err != nil {
		log.Errorf("post-invoke: %v (run debseal recover)", err)
		return nil
	}
	if dpkgInterrupted(g.Admindir) {
		// apt will tell the admin to run "dpkg --configure -a"; in this
		// mode a plain dpkg is not hooked and meets locked files.
		fmt.Fprintln(stderr, "debseal: dpkg was interrupted: finish with 'debseal dpkg --configure -a' (in the apt-hooks mode a plain dpkg is not hooked and meets locked files)")
	}
	log.timing("apt transaction (post-invoke)", 0)
	return nil
}

// dpkgInterrupted reports whether dpkg's journal (ADMINDIR/updates) holds
// entries: a dpkg run was cut short and "dpkg --configure -a" is due.
func dpkgInterrupted(admindir string) bool {
	ents, err := os.ReadDir(filepath.Join(admindir, "updates"))
	if err != nil {
		return false
	}
	for _, e := range ents {
		if n := e.Name(); n != "tmp.i" && strings.Trim(n, "0123456789") == "" {
			return true
		}
	}
	return false
}
