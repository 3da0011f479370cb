package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/debseal/debseal/dpkghook"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func init() { register(dpkgCommand) }

func dpkgCommand() *cli.Command {
	return &cli.Command{
		Name:            "dpkg",
		Usage:           "run dpkg with the files it changes unlocked, then relock them",
		ArgsUsage:       "DPKG-ARGUMENTS...",
		SkipFlagParsing: true,
		Description: "Runs the real dpkg with the same arguments, standard input and output, file\n" +
			"descriptors and exit status. Before a run that changes package files (install,\n" +
			"unpack, configure, remove, purge, triggers-only) debseal unlocks what the run may\n" +
			"change; afterwards it relocks every sealed package the run touched. Queries\n" +
			"(-l, -L, -S, --compare-versions, …) and calls from maintainer scripts go straight\n" +
			"to dpkg. The wrapper and divert modes run it through a small script (apt's\n" +
			"Dir::Bin::dpkg, or /usr/bin/dpkg itself) that sends queries and maintainer scripts'\n" +
			"calls to dpkg directly; debseal invoked under the name dpkg behaves the same.\n\n" +
			"The real dpkg is $DEBSEAL_REAL_DPKG, else /usr/bin/dpkg.distrib when present (the\n" +
			"divert mode puts it there), else /usr/bin/dpkg.\n\n" +
			"EXIT CODES:\n" +
			"   dpkg's own exit status (or its signal), whatever debseal's relock does\n" +
			"   2   also when debseal could not run dpkg (it says why)\n" +
			"   4   refused: refuse-tampered-upgrade is on and sealed files the run would replace\n" +
			"       are tampered (each is listed and kept as evidence); dpkg did not run\n" +
			"   64  usage: a bad debseal option before dpkg (an empty --root, roots that disagree)",
		Action: func(c *cli.Context) error {
			var outer *globalOpts
			if c.IsSet("root") || c.IsSet("admindir") {
				g := globalsFrom(c)
				outer = &g
			}
			args, err := withOuterRoot(c.Args().Slice(), outer)
			if err != nil {
				return err
			}
			code := runDpkgWrapper(c.Context, args, c.App.ErrWriter)
			if code != 0 {
				return exitStatus(code)
			}
			return nil
		},
	}
}

// runDpkgName is main when the binary runs under the name dpkg.
func runDpkgName(args []string, stderr io.Writer) int {
	return runDpkgWrapper(context.Background(), args[1:], stderr)
}

// realDpkg finds the dpkg to run, never this binary itself.
func realDpkg() (string, error) {
	cand := os.Getenv("DEBSEAL_REAL_DPKG")
	if cand == "" {
		cand = "/usr/bin/dpkg"
		if _, err := os.Stat("/usr/bin/dpkg.distrib"); err == nil {
			cand = "/usr/bin/dpkg.distrib"
		}
	}
	var a, b unix.Stat_t
	if err := unix.Stat(cand, &a); err != nil {
		return "", fmt.Errorf("the real dpkg %s: %w", cand, err)
	}
	if err := unix.Stat("/proc/self/exe", &b); err == nil && a.Dev == b.Dev && a.Ino == b.Ino {
		return "", fmt.Errorf("the real dpkg %s is debseal itself (set DEBSEAL_REAL_DPKG, or run debseal setup again)", cand)
	}
	return cand, nil
}

// runDpkgWrapper is the wrapper. Its exit status is dpkg's.
func runDpkgWrapper(ctx context.Context, args []string, stderr io.Writer) int {
	real, err := realDpkg()
	if err != nil {
		fmt.Fprintf(stderr, "debseal: %v\n", err)
		return 2
	}
	execDpkg := func() int {
		beforeExec()
		err := syscall.Exec(real, append([]string{"dpkg"}, args...), os.Environ())
		fmt.Fprintf(stderr, "debseal: exec %s: %v\n", real, err)
		return 2
	}
	// Maintainer scripts call dpkg for queries (and dpkg-maintscript-helper);
	// dpkg itself holds the lock: pass them through untouched.
	if os.Getenv("DPKG_MAINTSCRIPT_NAME") != "" || disabled() {
		return execDpkg()
	}
	// Queries (apt makes several per transaction) are told apart from the
	// command line alone, before anything else is read: dpkg's
	// configuration files cannot set an action.
	// A command line debseal cannot parse (an option of a newer dpkg)
	// that names a file action is treated as "cannot tell": everything
	// sealed is unlocked. Passing it through would fail open.
	inv, perr := dpkghook.Parse(args, nil)
	if perr != nil {
		inv = dpkghook.Salvage(args)
	}
	if inv.Kind() != dpkghook.Files {
		return execDpkg() // queries, database-only actions, bad command lines
	}
	if perr == nil {
		base, err := dpkghook.ParseConfig("/etc/dpkg")
		if err != nil {
			base = nil // dpkg will report its own configuration errors
		}
		if inv, err = dpkghook.Parse(args, base); err != nil || inv.Kind() != dpkghook.Files {
			return execDpkg() // --no-act from the configuration
		}
	}
	g := wrapperGlobals(inv)
	if nothingSealed(g.Root) {
		return execDpkg()
	}
	log := newEventLog(g.Root, "wrapper", stderr)
	what := "dpkg " + shortArgs(args)
	owner, err := self("wrapper")
	if err != nil {
		fmt.Fprintf(stderr, "debseal: %v\n", err)
		return 2
	}
	// Descriptors to hand over, found before debseal opens any of its own.
	fds := inheritedFDs()

	se, closeFS, err := openSession(g, owner, true, log, what)
	if err != nil {
		log.Errorf("%s: %v", what, err)
		fmt.Fprintf(stderr, "debseal: %v\n", hookFailed(err))
		return 2
	}
	defer closeFS()
	cwd, _ := os.Getwd()
	req := inv.Request(cwd)
	if perr != nil {
		req = seal.Request{Unknown: fmt.Sprintf("cannot parse dpkg's command line: %v", perr)}
	}
	rep, err := se.Start(ctx, req)
	log.session(rep, what)
	if err != nil {
		log.startFailed(what, err)
		fmt.Fprintf(stderr, "debseal: %v\n", hookFailed(err))
		return exitCode(err) // 2, or 4 when it refuses tampered files
	}
	fault("after-unlock")

	childStart := time.Now()
	status, childErr := runChild(real, args, fds)
	dpkgTime := time.Since(childStart)
	if childErr != nil {
		log.Errorf("%s: %v", what, childErr)
	}
	fault("before-relock")

	var j *seal.Journal
	if rep.Begin != nil {
		j = rep.Begin.Journal
	}
	// The relock runs to its end even after a signal: dpkg has exited,
	// and stopping half-way would only leave files unlocked.
	end, err := se.Finish(context.WithoutCancel(ctx), j)
	log.session(end, what)
	if err != nil {
		log.Errorf("%s: %v (run debseal recover)", what, err)
	}
	log.timing(what, dpkgTime)
	if childErr != nil {
		return 2 // dpkg did not run, or was lost: never report success
	}
	return exitLike(status)
}

// withOuterRoot makes "debseal --root R dpkg ARGS" (or DEBSEAL_ROOT) run
// dpkg on R: dpkg gets --root (and --admindir) unless its own arguments
// already name the same ones. Arguments that name another root are a
// usage error: one command must never work on two systems.
func withOuterRoot(args []string, outer *globalOpts) ([]string, error) {
	if outer == nil {
		return args, nil
	}
	own := dpkgPathOptions(args)
	if _, ok := own["instdir"]; ok && outer.Root != "/" {
		return nil, usagef("debseal --root and dpkg's --instdir together: give dpkg --root alone")
	}
	var extra []string
	for _, o := range []struct{ name, want, implied string }{
		{"root", outer.Root, "/"},
		{"admindir", outer.Admindir, filepath.Join(outer.Root, "var/lib/dpkg")},
	} {
		have, given := own[o.name]
		switch {
		case given && filepath.Clean(have) != filepath.Clean(o.want):
			return nil, usagef("debseal's %s is %s but dpkg's --%s is %s: give one of them", o.name, o.want, o.name, have)
		case !given && o.want != o.implied:
			extra = append(extra, "--"+o.name+"="+o.want)
		}
	}
	return append(extra, args...), nil
}

// dpkgPathOptions finds dpkg's --root, --admindir and --instdir in its
// arguments (either "--opt=V" or "--opt V"), up to "--".
func dpkgPathOptions(args []string) map[string]string {
	out := map[string]string{}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			break
		}
		for _, name := range []string{"root", "admindir", "instdir"} {
			if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
				out[name] = v
			} else if a == "--"+name && i+1 < len(args) {
				out[name] = args[i+1]
				i++
			}
		}
	}
	return out
}

// wrapperGlobals derives the root dpkg works on from its options and the
// environment variables dpkg honours.
func wrapperGlobals(inv *dpkghook.Invocation) globalOpts {
	root := inv.Root
	if root == "" {
		root = os.Getenv("DPKG_ROOT")
	}
	if root == "" {
		root = "/"
	}
	admindir := inv.Admindir
	if admindir == "" {
		admindir = os.Getenv("DPKG_ADMINDIR")
	}
	if admindir == "" {
		admindir = filepath.Join(root, "var/lib/dpkg")
	}
	return globalOpts{Root: root, Admindir: admindir, Config: filepath.Join(root, "etc/debseal/debseal.conf")}
}

// inheritedFDs lists the descriptors above 2 that this process inherited
// (those without close-on-exec: Go opens all of its own with it), such as
// apt's --status-fd pipe.
func inheritedFDs() []int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			out = append(out, fd)
		}
	}
	return out
}

// forwarded are the signals passed on to dpkg while it runs (terminal
// signals reach it directly too; a second delivery changes nothing).
var forwarded = []os.Signal{syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT,
	syscall.SIGUSR1, syscall.SIGUSR2, syscall.SIGWINCH, syscall.SIGALRM, syscall.SIGCONT}

// runChild runs dpkg with this process's standard streams and inherited
// descriptors at the same numbers, forwarding signals, and returns its
// wait status.
func runChild(path string, args []string, fds []int) (syscall.WaitStatus, error) {
	maxfd := 2
	for _, fd := range fds {
		maxfd = max(maxfd, fd)
	}
	files := make([]uintptr, maxfd+1)
	for i := range files {
		files[i] = ^uintptr(0) // closed in the child
	}
	for _, fd := range append([]int{0, 1, 2}, fds...) {
		files[fd] = uintptr(fd)
	}
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	pid, err := syscall.ForkExec(path, append([]string{"dpkg"}, args...), &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: files,
	})
	if err != nil {
		return 0, fmt.Errorf("starting %s: %w", path, err)
	}
	done := make(chan struct{})
	go func() {
		for {
			select {
			case sig := <-sigs:
				syscall.Kill(pid, sig.(syscall.Signal))
			case <-done:
				return
			}
		}
	}()
	fault("during-dpkg")
	var ws syscall.WaitStatus
	for {
		_, err = syscall.Wait4(pid, &ws, 0, nil)
		if !errors.Is(err, syscall.EINTR) {
			break
		}
	}
	close(done)
	if err != nil {
		return 0, fmt.Errorf("waiting for dpkg: %w", err)
	}
	return ws, nil
}

// exitLike turns dpkg's wait status into ours: the same exit code, or the
// same fatal signal (re-raised after the relock).
func exitLike(ws syscall.WaitStatus) int {
	switch {
	case ws.Exited():
		return ws.ExitStatus()
	case ws.Signaled():
		sig := ws.Signal()
		signal.Reset(sig)
		syscall.Kill(os.Getpid(), sig)
		return 128 + int(sig) // if the signal did not end us
	}
	return 2
}
