package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/debseal/debseal/aptconf"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/urfave/cli/v2"
)

func init() {
	register(setupCommand)
	register(teardownCommand)
}

type setupOpts struct {
	Mode   string
	Binary string // where debseal is inside the root
}

func setupCommand() *cli.Command {
	return &cli.Command{
		Name:  "setup",
		Usage: "make dpkg and apt unlock and relock package files around their runs",
		Description: "Installs the integration of one mode, replacing any other mode's:\n\n" +
			"  dpkg-hooks  (default) pre-/post-invoke hooks in /etc/dpkg/dpkg.cfg.d/debseal: every\n" +
			"              dpkg run, from apt, dpkg -i, dpkg --configure -a or any front-end\n" +
			"  apt-hooks   DPkg::Pre-Install-Pkgs/Pre-Invoke/Post-Invoke in /etc/apt/apt.conf.d:\n" +
			"              apt and libapt front-ends only\n" +
			"  wrapper     apt runs dpkg through debseal (Dir::Bin::dpkg); by hand, use debseal dpkg\n" +
			"  divert      /usr/bin/dpkg itself becomes debseal's wrapper (dpkg-divert --local --no-rename;\n" +
			"              the real dpkg moves to /usr/bin/dpkg.distrib): every caller\n\n" +
			"Running it again changes nothing. Remove with debseal teardown.\n\n" + exitCodesHelp,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: "dpkg-hooks", Usage: "`MODE`: dpkg-hooks, apt-hooks, wrapper or divert"},
			&cli.StringFlag{Name: "binary", Value: aptconf.DefaultBinary, Usage: "where debseal is installed inside the root (`PATH`)"},
		},
		Action: func(c *cli.Context) error {
			return runSetup(c.Context, globalsFrom(c), setupOpts{Mode: c.String("mode"), Binary: c.String("binary")}, c.App.Writer)
		},
	}
}

func teardownCommand() *cli.Command {
	return &cli.Command{
		Name:  "teardown",
		Usage: "remove the dpkg/apt integration that debseal setup installed",
		Description: "Removes exactly the files of the installed mode (and, for divert, puts the real dpkg\n" +
			"back). It does not unlock anything: debseal unlock --all does that.\n\n" + exitCodesHelp,
		Action: func(c *cli.Context) error {
			return runTeardown(c.Context, globalsFrom(c), c.App.Writer)
		},
	}
}

func modePath(root string) string { return filepath.Join(seal.StateDir(root), "mode") }

// installedMode reads which mode setup installed ("" for none).
func installedMode(root string) (string, error) {
	b, err := os.ReadFile(modePath(root))
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

func runSetup(ctx context.Context, g globalOpts, o setupOpts, out io.Writer) error {
	if !slices.Contains(aptconf.Modes, o.Mode) {
		return usagef("unknown mode %q (want one of %s)", o.Mode, strings.Join(aptconf.Modes, ", "))
	}
	if !filepath.IsAbs(o.Binary) {
		return usagef("--binary %q must be an absolute path inside the root", o.Binary)
	}
	if err := checkHostRoot(g.Root); err != nil {
		return err
	}
	cur, err := installedMode(g.Root)
	if err != nil {
		return err
	}
	if cur != "" && cur != o.Mode {
		if err := teardownMode(ctx, g, cur, out); err != nil {
			return fmt.Errorf("removing mode %s first: %w", cur, err)
		}
	}
	bin := filepath.Join(g.Root, o.Binary)
	if _, err := os.Stat(bin); err != nil {
		fmt.Fprintf(out, "warning: %s is missing: the %s integration does nothing until debseal is there\n", o.Binary, o.Mode)
	}
	files, err := aptconf.Snippets(o.Mode, o.Binary)
	if err != nil {
		return err
	}
	changed := false
	for _, f := range files {
		ch, err := writeIfDifferent(filepath.Join(g.Root, f.Path), f.Content, f.Mode)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	switch o.Mode {
	case "divert":
		ch, err := setupDivert(ctx, g, o.Binary)
		if err != nil {
			return err
		}
		changed = changed || ch
	}
	if _, err := writeIfDifferent(modePath(g.Root), []byte(o.Mode+"\n"), 0o644); err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(out, "debseal: %s mode installed\n", o.Mode)
	} else {
		fmt.Fprintf(out, "debseal: %s mode already installed\n", o.Mode)
	}
	return nil
}

func runTeardown(ctx context.Context, g globalOpts, out io.Writer) error {
	if err := checkHostRoot(g.Root); err != nil {
		return err
	}
	cur, err := installedMode(g.Root)
	if err != nil {
		return err
	}
	if err := teardownMode(ctx, g, cur, out); err != nil {
		return err
	}
	if err := os.Remove(modePath(g.Root)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	fmt.Fprintln(out, "debseal: integration removed")
	return nil
}

// teardownMode removes a mode's files; with mode "" (unknown), every file
// any mode writes.
func teardownMode(ctx context.Context, g globalOpts, mode string, out io.Writer) error {
	if mode == "divert" || mode == "" {
		if err := teardownDivert(ctx, g); err != nil {
			return err
		}
	}
	for _, p := range aptconf.AllPaths {
		if err := os.Remove(filepath.Join(g.Root, p)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	os.Remove(filepath.Join(g.Root, "/usr/lib/debseal")) // only if empty
	return nil
}

// writeIfDifferent writes a file atomically unless it already holds data.
func writeIfDifferent(path string, data []byte, perm os.FileMode) (bool, error) {
	if old, err := os.ReadFile(path); err == nil && bytes.Equal(old, data) {
		return false, nil
	}
	return true, seal.WriteFileAtomic(path, data, perm)
}

const (
	dpkgPath     = "/usr/bin/dpkg"
	distribPath  = "/usr/bin/dpkg.distrib"
	divertNotice = "dpkg-divert --local --no-rename"
)

// dpkgDivert runs dpkg-divert on the root.
func dpkgDivert(g globalOpts, args ...string) error {
	full := []string{"--admindir", g.Admindir}
	if g.Root != "/" {
		full = append(full, "--instdir", g.Root)
	}
	cmd := exec.Command("dpkg-divert", append(full, args...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dpkg-divert %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return nil
}

func diverted(g globalOpts) (bool, error) {
	cmd := exec.Command("dpkg-divert", "--admindir", g.Admindir, "--listpackage", dpkgPath)
	out, err := cmd.Output()
	if err != nil {
		return false, fmt.Errorf("dpkg-divert --listpackage: %w", err)
	}
	return strings.TrimSpace(string(out)) == "LOCAL", nil
}

// setupDivert makes /usr/bin/dpkg debseal's wrapper script: a local
// diversion without rename (dpkg is Essential: it must never be missing,
// even for an instant), the real binary hard-linked to
// /usr/bin/dpkg.distrib, then the script renamed over /usr/bin/dpkg. The
// script runs the real dpkg by itself for queries and maintainer scripts'
// calls, and when debseal is gone (aptconf/lib/dpkg), so dpkg keeps
// working even if debseal's own package is removed, and the many dpkg
// calls of a transaction do not each start debseal.
func setupDivert(ctx context.Context, g globalOpts, binary string) (bool, error) {
	dpkgFile := filepath.Join(g.Root, dpkgPath)
	distrib := filepath.Join(g.Root, distribPath)
	script := aptconf.DivertScript(distribPath, binary)
	isDiverted, err := diverted(g)
	if err != nil {
		return false, err
	}
	cur, curErr := os.ReadFile(dpkgFile)
	_, distribErr := os.Stat(distrib)
	if curErr == nil && isDiverted && bytes.Equal(cur, script) && distribErr == nil {
		return false, nil // already set up, with this script
	}
	if errors.Is(distribErr, fs.ErrNotExist) && curErr == nil && !isRealDpkg(cur) {
		return false, fmt.Errorf("divert: %s is missing and %s is not dpkg (a debseal wrapper from an earlier setup?): reinstall the dpkg package first", distribPath, dpkgPath)
	}
	// The real dpkg's file is locked when sealed: free it for the link,
	// the rename over it, and relock its package at the end.
	if err := setFlag(g.Root, dpkgPath, false); err != nil {
		return false, err
	}
	if !isDiverted {
		if err := dpkgDivert(g, "--local", "--no-rename", "--divert", distribPath, "--add", dpkgPath); err != nil {
			return false, err
		}
	}
	if errors.Is(distribErr, fs.ErrNotExist) {
		if err := os.Link(dpkgFile, distrib); err != nil {
			return false, fmt.Errorf("keeping the real dpkg as %s: %w", distribPath, err)
		}
	}
	if err := seal.WriteFileAtomic(dpkgFile, script, 0o755); err != nil {
		return false, err
	}
	return true, relockPackage(ctx, g, "dpkg")
}

// isRealDpkg tells dpkg's binary from what the divert mode puts in its
// place (this wrapper script, or, from older debseal versions, a copy of
// debseal itself).
func isRealDpkg(b []byte) bool {
	return !bytes.HasPrefix(b, []byte("#!")) && !bytes.Contains(b, []byte("github.com/debseal/debseal"))
}

// teardownDivert puts the real dpkg back in one rename and removes the
// diversion.
func teardownDivert(ctx context.Context, g globalOpts) error {
	distrib := filepath.Join(g.Root, distribPath)
	if _, err := os.Stat(distrib); err == nil {
		if err := setFlag(g.Root, distribPath, false); err != nil {
			return err
		}
		if err := setFlag(g.Root, dpkgPath, false); err != nil {
			return err
		}
		if err := os.Rename(distrib, filepath.Join(g.Root, dpkgPath)); err != nil {
			return fmt.Errorf("putting the real dpkg back: %w", err)
		}
	}
	isDiverted, err := diverted(g)
	if err != nil {
		return err
	}
	if isDiverted {
		if err := dpkgDivert(g, "--local", "--no-rename", "--remove", dpkgPath); err != nil {
			return err
		}
	}
	return relockPackage(ctx, g, "dpkg")
}

// setFlag turns the immutable flag of one path on or off (absent is fine).
func setFlag(root, path string, on bool) error {
	r, err := fsattr.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	d, err := r.OpenDir(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	_, err = d.Set(filepath.Base(path), fsattr.Ident{}, fsattr.Immutable, on)
	if errors.Is(err, fs.ErrNotExist) || errors.Is(err, fsattr.ErrNotSupported) {
		return nil
	}
	return err
}

// relockPackage locks a package's files again if it is sealed.
func relockPackage(ctx context.Context, g globalOpts, name string) error {
	sys, err := openSystem(g, false)
	if err != nil {
		return err
	}
	defer sys.Close()
	if !sys.state.Sealed(name) {
		return nil
	}
	plan, err := sys.planner.Plan(ctx, sys.db.Lookup(name))
	if err != nil {
		return err
	}
	sum := seal.Apply(ctx, sys.fs, plan.Targets, true, 0, nil)
	if len(sum.Errors) > 0 {
		return sum.Errors[0]
	}
	return nil
}
