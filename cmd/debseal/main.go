// Command debseal keeps the files of installed Debian packages immutable
// and gets out of the way of dpkg and apt. See debseal(8).
//
// This file only builds the command line; each command fills an options
// struct and calls a runX function that tests call directly.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
)

// processStart is when this process started (for the timing log).
var processStart = time.Now()

// Set by the Makefile with -ldflags -X.
var (
	version = "devel"
	commit  = ""
)

// globalOpts are the options every command shares.
type globalOpts struct {
	Root     string // target root directory, like dpkg --root
	Admindir string // dpkg database, default <root>/var/lib/dpkg
	Config   string // debseal.conf, default <root>/etc/debseal/debseal.conf
}

func globalsFrom(c *cli.Context) globalOpts {
	g := globalOpts{
		Root:     c.String("root"),
		Admindir: c.String("admindir"),
		Config:   c.String("config"),
	}
	if g.Root == "" {
		g.Root = "/"
	}
	if abs, err := filepath.Abs(g.Root); err == nil {
		g.Root = abs
	}
	if g.Admindir == "" {
		g.Admindir = filepath.Join(g.Root, "var/lib/dpkg")
	}
	if g.Config == "" {
		g.Config = filepath.Join(g.Root, "etc/debseal/debseal.conf")
	}
	return g
}

var globalFlags = []cli.Flag{
	&cli.StringFlag{Name: "root", Value: "/", Usage: "operate on the system installed under `DIR` (like dpkg --root; not empty)", EnvVars: []string{"DEBSEAL_ROOT"}},
	&cli.StringFlag{Name: "admindir", Usage: "dpkg database `DIR` (default: ROOT/var/lib/dpkg)"},
	&cli.StringFlag{Name: "config", Usage: "configuration `FILE`, which must exist (default: ROOT/etc/debseal/debseal.conf, or the defaults when that is missing)"},
}

func versionString() string {
	s := "debseal " + version
	if commit != "" {
		s += " (" + commit + ")"
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		s += ", " + bi.GoVersion
		for _, set := range bi.Settings {
			if set.Key == "CGO_ENABLED" {
				s += ", CGO_ENABLED=" + set.Value
			}
		}
	}
	return s
}

func newApp(stdout, stderr io.Writer) *cli.App {
	cli.VersionPrinter = func(c *cli.Context) { fmt.Fprintln(c.App.Writer, versionString()) }
	app := &cli.App{
		Name:    "debseal",
		Usage:   "keep installed Debian package files immutable without breaking dpkg and apt",
		Version: version,
		Description: "debseal sets the immutable attribute (chattr +i) on the files that installed packages\n" +
			"own, except conffiles, and clears it exactly when dpkg must change them.\n\n" + exitHelp(""),
		Flags:                  globalFlags,
		Writer:                 stdout,
		ErrWriter:              stderr,
		HideHelpCommand:        true,
		UseShortOptionHandling: true,
		// main decides exit codes, not the library (it would os.Exit
		// from inside Run and skip deferred cleanup).
		ExitErrHandler: func(*cli.Context, error) {},
		OnUsageError: func(c *cli.Context, err error, isSub bool) error {
			return usagef("%v (see debseal --help)", err)
		},
		Before: checkGlobals,
		// Reached when the first argument names no command.
		Action: func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (see debseal --help)", c.Args().First())
			}
			return cli.ShowAppHelp(c)
		},
	}
	app.Commands = commands()
	for _, cmd := range app.Commands {
		strictCommand(cmd, "debseal")
	}
	return app
}

// strictCommand makes a command, and its subcommands, treat every bad
// command line as a usage error (exit 64, one line on stderr): an unknown
// option, an unknown subcommand, and arguments given to a command that
// takes none (no ArgsUsage), which would otherwise be ignored.
func strictCommand(cmd *cli.Command, parent string) {
	full := parent + " " + cmd.Name
	cmd.OnUsageError = func(c *cli.Context, err error, _ bool) error {
		return usagef("%s: %v (see %s --help)", strings.TrimPrefix(full, "debseal "), err, full)
	}
	switch {
	case len(cmd.Subcommands) > 0:
		cmd.Action = func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("unknown command %q (see %s --help)", strings.TrimPrefix(full, "debseal ")+" "+c.Args().First(), full)
			}
			return cli.ShowSubcommandHelp(c)
		}
		for _, sub := range cmd.Subcommands {
			strictCommand(sub, full)
		}
	case cmd.ArgsUsage == "" && !cmd.SkipFlagParsing:
		action := cmd.Action
		cmd.Action = func(c *cli.Context) error {
			if c.NArg() > 0 {
				return usagef("%s takes no arguments, got %q (see %s --help)", strings.TrimPrefix(full, "debseal "), c.Args().Slice(), full)
			}
			return action(c)
		}
	}
}

// checkGlobals refuses global options that would silently mean something
// else: an empty --root (or DEBSEAL_ROOT) would be "/", this very system;
// an empty --admindir or --config the defaults; a --config that does not
// exist the default policy. Only an explicitly given --config must exist:
// without one, a missing ROOT/etc/debseal/debseal.conf means the defaults.
// The hooks are exempt: their root is dpkg's or apt's, taken from the
// environment those run them with, and a hook must not start stopping
// dpkg or apt over it.
func checkGlobals(c *cli.Context) error {
	if c.Args().First() == "hook" {
		return nil
	}
	for _, name := range []string{"root", "admindir", "config"} {
		if c.IsSet(name) && c.String(name) == "" {
			if name == "root" {
				return usagef("--root (or DEBSEAL_ROOT) is empty: give the root directory, / for this system")
			}
			return usagef("--%s is empty: give a path, or leave the option out for the default", name)
		}
	}
	if c.IsSet("config") {
		if _, err := os.Stat(c.String("config")); errors.Is(err, fs.ErrNotExist) {
			return usagef("--config %s: no such file (without --config, debseal reads ROOT/etc/debseal/debseal.conf when it exists)", c.String("config"))
		}
	}
	return nil
}

// commands lists every command; each lives in its own file.
func commands() []*cli.Command {
	var cmds []*cli.Command
	for _, f := range commandTable {
		cmds = append(cmds, f())
	}
	return cmds
}

// commandTable is filled by the command files' init functions, so adding a
// command touches only its own file.
var commandTable []func() *cli.Command

func register(f func() *cli.Command) { commandTable = append(commandTable, f) }

// main keeps Go's default collector pace (GOGC=100). It used to collect
// four times less often (GOGC=400) to save the collector's CPU, but a
// hook's heap is small and short-lived, so the collector costs little,
// while every page the heap grows into is a page fault, and on a virtual
// machine a fresh page costs tens of microseconds (measured here: 20 µs
// of CPU each). Six packages reinstalled through the hooks: 9,000 page
// faults with GOGC=400, 6,000 with 100, and about 5% less CPU.
func main() {
	if p := os.Getenv("DEBSEAL_CPUPROFILE"); p != "" {
		// For developers: where a hook's milliseconds go. A directory
		// gets one profile per process (an apt run starts several).
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			p = filepath.Join(p, fmt.Sprintf("debseal.%d.%d.prof", time.Now().UnixMilli(), os.Getpid()))
		}
		if f, err := os.Create(p); err == nil {
			if pprof.StartCPUProfile(f) == nil {
				stop := func() {
					pprof.StopCPUProfile()
					f.Close()
				}
				beforeExec = stop
				code := run(os.Args, os.Stdout, os.Stderr)
				stop()
				os.Exit(code)
			}
			f.Close()
		}
	}
	os.Exit(run(os.Args, os.Stdout, os.Stderr))
}

// beforeExec undoes what this process set up that a program it execs in
// its place would inherit and must not: the profiler's SIGPROF timer
// (setitimer survives execve, and kills a program that does not handle
// SIGPROF, such as dpkg). Profiles end there.
var beforeExec = func() {}

// limitMemory sets a soft heap limit for a command that must stay within
// a memory budget whatever the system's size (audit, status, lock and
// unlock: they go through every package), unless GOMEMLIMIT is set.
// Measured on a host audit (860 packages, 126,000 paths, 2 CPUs): no
// limit peaks at 120 MB RSS; 48 MiB peaks at 52 MB for the same CPU
// time; 40 MiB makes the collector run often enough to cost 10% more
// CPU. At 50,000 packages, lock --all peaked at 384 MB without it and
// 178 MB with it, status at 220 MB and 113 MB. It is not global: reading a big .deb's xz data in
// parallel blocks needs more, and under this limit took 35% longer.
//
// What an audit keeps until its end grows with the system (the database,
// one lock-table entry and one cache record per package file: some 45 MB
// at 50,000 packages), so a fixed limit ends up barely above the live
// heap, and the collector then runs back to back (it was 40% of a 50,000
// package audit, and made it 20 times slower than 10,000 packages).
// After each collection the limit is raised to keep half the live heap
// as headroom (raiseLimit).
func limitMemory() {
	if os.Getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(memoryLimit)
		raiseLimit(new(limitTuner))
	}
}

// memoryLimit is the audit's soft heap limit (see limitMemory).
const memoryLimit = 48 << 20

// limitTuner runs after every collection (a finalizer that sets itself
// again): it raises the memory limit to the live heap plus half of it
// plus what the runtime keeps outside the heap, never below memoryLimit.
type limitTuner struct{ _ [16]byte } // not zero-sized: those share an address and never finalize

func raiseLimit(t *limitTuner) {
	runtime.SetFinalizer(t, func(t *limitTuner) {
		s := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
		metrics.Read(s)
		if s[0].Value.Kind() == metrics.KindUint64 {
			live := int64(s[0].Value.Uint64())
			debug.SetMemoryLimit(max(memoryLimit, live+live/2+runtimeOverhead))
		}
		raiseLimit(t)
	})
}

// runtimeOverhead is what the Go runtime holds besides the heap during an
// audit (stacks, span metadata, free pages not yet returned): measured at
// 13 MB on a 50,000 package audit.
const runtimeOverhead = 16 << 20

// run is main without the exit, for tests.
func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && filepath.Base(args[0]) == "dpkg" {
		// Invoked as dpkg (apt's Dir::Bin::dpkg, or the divert mode):
		// be the wrapper, with dpkg's own command line.
		return runDpkgName(args, stderr)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	done := make(chan int, 1)
	go func() {
		out := &checkedWriter{w: stdout}
		app := newApp(out, stderr)
		err := app.RunContext(ctx, args)
		code, msgs := exitResult(err, out.Err())
		if ctx.Err() == nil {
			for _, m := range msgs {
				fmt.Fprintf(stderr, "debseal: %v\n", m)
			}
		}
		done <- code
	}()
	select {
	case code := <-done:
		return code
	case sig := <-sigs:
		return stopOnSignal(sig.(syscall.Signal), cancel, done, sigs, waitsForChild(args), stderr)
	}
}

// signalGrace is how long a command has to stop by itself once a signal
// cancelled its context (a plan, an apply, an audit stop between files)
// before debseal exits anyway: a system call that does not return (a
// lock, a FIFO, a hung filesystem) must not keep a hook, and so dpkg,
// hanging. What an exit half-way leaves is what a crash leaves: the
// journal, which the next debseal run or debseal recover ends.
const signalGrace = 300 * time.Millisecond

// stopOnSignal cancels the command's context, waits up to signalGrace (a
// second signal: not at all) for it to return, and exits 128+signal with
// a message. A command running dpkg as its child (debseal dpkg) is not
// cut short: dpkg got the signal too, and the command must relock after
// it, whatever dpkg does; it is waited for.
func stopOnSignal(sig syscall.Signal, cancel context.CancelFunc, done <-chan int, sigs <-chan os.Signal, child bool, stderr io.Writer) int {
	cancel()
	if child {
		return <-done
	}
	code := 128 + int(sig)
	select {
	case <-done:
		fmt.Fprintf(stderr, "debseal: stopped by %s\n", signalName(sig))
	case s := <-sigs:
		fmt.Fprintf(stderr, "debseal: stopped by %s (a second signal: %s)\n", signalName(sig), signalName(s.(syscall.Signal)))
	case <-time.After(signalGrace):
		fmt.Fprintf(stderr, "debseal: stopped by %s (an operation did not return within %v; files it had unlocked, if any, are relocked by the next debseal run or debseal recover)\n", signalName(sig), signalGrace)
	}
	return code
}

func signalName(sig syscall.Signal) string {
	switch sig {
	case syscall.SIGINT:
		return "SIGINT"
	case syscall.SIGTERM:
		return "SIGTERM"
	}
	return sig.String()
}

// waitsForChild reports a command that runs dpkg as its child ("debseal
// dpkg ..."), from the command line: the first word that is not a global
// option or its value.
func waitsForChild(args []string) bool {
	for i := 1; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--root" || a == "--admindir" || a == "--config":
			i++
		case strings.HasPrefix(a, "-"):
		default:
			return a == "dpkg"
		}
	}
	return false
}
