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
	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/urfave/cli/v2"
	"golang.org/x/sys/unix"
)

func init() {
	register(setupCommand)
	register(teardownCommand)
}

type setupOpts struct {
	Mode   string
	Binary string // where debseal is inside the root
	Guard  *bool  // install (true) or remove (false) the capability guard; nil: leave it as it is
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
			"--guard also takes CAP_LINUX_IMMUTABLE from every systemd service (a drop-in in\n" +
			"/etc/systemd/system/service.d/), so a compromised daemon running as root cannot clear\n" +
			"the flag; the units that run package management or root logins keep it (debseal.conf\n" +
			"guard-allow adds more). --guard=false removes it; without either, it stays as it is.\n\n" +
			"Running it again changes nothing. Remove with debseal teardown.\n\n" + exitHelp("setup"),
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "mode", Value: "dpkg-hooks", Usage: "`MODE`: dpkg-hooks, apt-hooks, wrapper or divert"},
			&cli.StringFlag{Name: "binary", Value: aptconf.DefaultBinary, Usage: "where debseal is installed inside the root (`PATH`)"},
			&cli.BoolFlag{Name: "guard", Usage: "take CAP_LINUX_IMMUTABLE from systemd services except the allowed ones (--guard=false: give it back)"},
		},
		Action: func(c *cli.Context) error {
			o := setupOpts{Mode: c.String("mode"), Binary: c.String("binary")}
			if c.IsSet("guard") {
				on := c.Bool("guard")
				o.Guard = &on
			}
			return runSetup(c.Context, globalsFrom(c), o, c.App.Writer)
		},
	}
}

func teardownCommand() *cli.Command {
	return &cli.Command{
		Name:  "teardown",
		Usage: "remove the dpkg/apt integration that debseal setup installed",
		Description: "Removes exactly the files of the installed mode (and, for divert, puts the real dpkg\n" +
			"back) and the capability guard's drop-ins. It does not unlock anything: debseal unlock\n" +
			"--all does that.\n\n" + exitHelp("teardown"),
		Action: func(c *cli.Context) error {
			return runTeardown(c.Context, globalsFrom(c), c.App.Writer)
		},
	}
}

// modeFile is the mode file's path inside the root.
const modeFile = "/var/lib/debseal/mode"

// installedMode reads which mode setup installed ("" for none).
func installedMode(root string) (string, error) {
	b, err := readRootFile(root, modeFile)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(b)), nil
}

// detectModes returns the modes whose pieces are actually installed under
// the root, in aptconf.Modes order, whatever the mode file says: a hook
// file, the wrapper script, or debseal's diversion of /usr/bin/dpkg (or
// a wrapper script where dpkg should be). A failed or interrupted setup
// can leave pieces of a mode the mode file does not name; status shows
// them and teardown removes them.
func detectModes(g globalOpts) ([]string, error) {
	var out []string
	for _, mode := range aptconf.Modes {
		var found bool
		if mode == "divert" {
			d, err := divertState(g)
			if err != nil {
				return nil, err
			}
			found = d.diverted || d.scriptInPlace
		} else {
			for _, p := range modePaths(mode) {
				if _, err := lstatRootFile(g.Root, p); err == nil {
					found = true
				} else if !errors.Is(err, fs.ErrNotExist) {
					return nil, fmt.Errorf("setup: %w", err)
				}
			}
		}
		if found {
			out = append(out, mode)
		}
	}
	return out, nil
}

// modePaths lists the files a mode writes (none for divert).
func modePaths(mode string) []string {
	files, _ := aptconf.Snippets(mode, "")
	var out []string
	for _, f := range files {
		out = append(out, f.Path)
	}
	return out
}

// setupFault, set by tests only, is called before each step setup and
// teardown take; an error makes that step fail as a real failure would.
var setupFault func(step string) error

func setupStep(name string) error {
	if setupFault != nil {
		if err := setupFault(name); err != nil {
			return fmt.Errorf("setup: %s: %w", name, err)
		}
	}
	return nil
}

// undoStack holds what undoes each step taken so far, so that a failure
// anywhere leaves the system as it was.
type undoStack []undoStep

type undoStep struct {
	name string
	fn   func() error
}

func (u *undoStack) push(name string, fn func() error) { *u = append(*u, undoStep{name, fn}) }

// rollback undoes every step, last first, and returns what could not be
// undone.
func (u *undoStack) rollback() error {
	var errs []error
	for i := len(*u) - 1; i >= 0; i-- {
		if err := (*u)[i].fn(); err != nil {
			errs = append(errs, fmt.Errorf("undoing %s: %w", (*u)[i].name, err))
		}
	}
	*u = nil
	return errors.Join(errs...)
}

// failed rolls back after err and says both what failed and whether the
// system is back as it was.
func (u *undoStack) failed(err error) error {
	if rerr := u.rollback(); rerr != nil {
		return fmt.Errorf("%w; rolling back also failed, the integration may be incomplete (debseal status shows what is installed): %w", err, rerr)
	}
	return fmt.Errorf("%w (nothing changed: the previous integration is still in place)", err)
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
	present, err := detectModes(g)
	if err != nil {
		return err
	}
	if _, err := lstatRootFile(g.Root, o.Binary); err != nil {
		fmt.Fprintf(out, "warning: %s is missing: the %s integration does nothing until debseal is there\n", o.Binary, o.Mode)
	}
	// The new mode first, completely; then the others go (the previous
	// mode, and pieces a failed setup left); the mode file last. Every
	// step can be undone: a failure at any point puts back what was
	// there, so dpkg is never left without the integration that was
	// working, nor with a mode file that names what is not installed.
	var undo undoStack
	changed, err := installMode(ctx, g, o.Mode, o.Binary, &undo)
	if err != nil {
		err = undo.failed(fmt.Errorf("setup: installing mode %s: %w", o.Mode, err))
	}
	for _, m := range present {
		if m == o.Mode || err != nil {
			continue
		}
		if rerr := removeMode(ctx, g, m, &undo); rerr != nil {
			err = undo.failed(fmt.Errorf("setup: removing mode %s: %w", m, rerr))
		}
		changed = true
	}
	if cur != o.Mode {
		changed = true
	}
	guardChanged := false
	var guardAllow []string
	if err == nil && o.Guard != nil {
		var gerr error
		if guardChanged, guardAllow, gerr = setupGuard(g, *o.Guard, &undo); gerr != nil {
			err = undo.failed(fmt.Errorf("setup: capability guard: %w", gerr))
		}
	}
	if err == nil {
		if _, werr := writeRootFile(g.Root, modeFile, []byte(o.Mode+"\n"), 0o644); werr != nil {
			err = undo.failed(werr)
		}
	}
	if slices.Contains(present, "divert") || o.Mode == "divert" {
		// dpkg's own file was unlocked to divert it or to put it back
		// (or to undo either).
		if rerr := relockPackage(ctx, g, "dpkg"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("setup: relocking dpkg's files: %w", rerr))
		}
	}
	if err != nil {
		return err
	}
	if changed {
		fmt.Fprintf(out, "debseal: %s mode installed\n", o.Mode)
	} else {
		fmt.Fprintf(out, "debseal: %s mode already installed\n", o.Mode)
	}
	if guardChanged {
		fmt.Fprintln(out, guardMessage(*o.Guard, guardAllow))
		return reloadSystemd(ctx, g, out)
	}
	return nil
}

// setupGuard installs or removes the capability guard with the allow
// list of debseal.conf, which it returns for setup's message.
func setupGuard(g globalOpts, on bool, undo *undoStack) (bool, []string, error) {
	if !on {
		changed, err := applyGuard(g, false, nil, undo)
		return changed, nil, err
	}
	pol, err := policy.Load(g.Config)
	if err != nil {
		return false, nil, err
	}
	changed, err := applyGuard(g, true, pol.GuardAllow, undo)
	return changed, pol.GuardAllow, err
}

// installMode installs one mode's pieces, pushing the undo of each step.
func installMode(ctx context.Context, g globalOpts, mode, binary string, undo *undoStack) (bool, error) {
	files, err := aptconf.Snippets(mode, binary)
	if err != nil {
		return false, err
	}
	changed := false
	for _, f := range files {
		restore, err := saveRootFile(g.Root, f.Path)
		if err != nil {
			return changed, err
		}
		ch, err := writeRootFile(g.Root, f.Path, f.Content, f.Mode)
		if err != nil {
			return changed, err
		}
		if ch {
			undo.push("write "+f.Path, restore)
		}
		changed = changed || ch
	}
	if mode == "divert" {
		ch, err := setupDivert(ctx, g, binary, undo)
		if err != nil {
			return changed, err
		}
		changed = changed || ch
	}
	return changed, nil
}

// removeMode removes one mode's pieces, pushing the undo of each step.
func removeMode(ctx context.Context, g globalOpts, mode string, undo *undoStack) error {
	if mode == "divert" {
		return teardownDivert(ctx, g, undo)
	}
	for _, p := range modePaths(mode) {
		restore, err := saveRootFile(g.Root, p)
		if err != nil {
			return err
		}
		removed, err := removeRootFile(g.Root, p)
		if err != nil {
			return err
		}
		if removed {
			undo.push("remove "+p, restore)
		}
	}
	removeRootDir(g.Root, "/usr/lib/debseal") // only if empty
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
	present, err := detectModes(g)
	if err != nil {
		return err
	}
	// What is installed, whatever the mode file says (a failed setup may
	// have left a diversion it does not name), and what it names.
	if cur != "" && slices.Contains(aptconf.Modes, cur) && !slices.Contains(present, cur) {
		present = append(present, cur)
	}
	var undo undoStack
	for _, m := range present {
		if err = removeMode(ctx, g, m, &undo); err != nil {
			err = undo.failed(fmt.Errorf("teardown: removing mode %s: %w", m, err))
			break
		}
	}
	guardChanged := false
	if err == nil {
		var gerr error
		if guardChanged, gerr = applyGuard(g, false, nil, &undo); gerr != nil {
			err = undo.failed(fmt.Errorf("teardown: capability guard: %w", gerr))
		}
	}
	if err == nil {
		if _, rerr := removeRootFile(g.Root, modeFile); rerr != nil {
			err = undo.failed(rerr)
		}
	}
	if slices.Contains(present, "divert") {
		if rerr := relockPackage(ctx, g, "dpkg"); rerr != nil {
			err = errors.Join(err, fmt.Errorf("teardown: relocking dpkg's files: %w", rerr))
		}
	}
	if err != nil {
		return err
	}
	fmt.Fprintln(out, "debseal: integration removed")
	if guardChanged {
		fmt.Fprintln(out, guardMessage(false, nil))
		return reloadSystemd(ctx, g, out)
	}
	return nil
}

// Every file setup and teardown touch is inside the root, whose contents
// are not trusted: each is reached through the root's descriptor
// (pkg/confined), so a symlink planted at ROOT/etc/dpkg or ROOT/usr/bin
// never leads a write, a link or a rename out of the root.

// readRootFile reads a regular file inside the root.
func readRootFile(root, path string) ([]byte, error) {
	r, err := confined.Open(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	return r.ReadFile(path)
}

// lstatRootFile stats a path inside the root without following it.
func lstatRootFile(root, path string) (fsattr.Info, error) {
	r, err := confined.Open(root)
	if err != nil {
		return fsattr.Info{}, err
	}
	defer r.Close()
	return r.Lstat(path)
}

// writeRootFile is the one way setup and teardown write a file: path is
// inside the root. It writes atomically, and not at all when the file
// already holds data (it reports whether it wrote).
func writeRootFile(root, path string, data []byte, perm os.FileMode) (bool, error) {
	if err := setupStep("write " + path); err != nil {
		return false, err
	}
	r, err := confined.Open(root)
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	defer r.Close()
	if old, err := r.ReadFile(path); err == nil && bytes.Equal(old, data) {
		if fi, err := r.Lstat(path); err == nil && os.FileMode(fi.Mode).Perm() == perm {
			return false, nil
		}
	}
	if err := r.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	if err := r.WriteFileAtomic(path, data, perm); err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	return true, nil
}

// removeRootFile removes a file inside the root (absent is fine) and
// reports whether it was there.
func removeRootFile(root, path string) (bool, error) {
	if err := setupStep("remove " + path); err != nil {
		return false, err
	}
	r, err := confined.Open(root)
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	defer r.Close()
	err = r.Remove(path)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("setup: %w", err)
	}
	return true, nil
}

// removeRootDir removes an empty directory inside the root; a directory
// that is missing or not empty stays as it is.
func removeRootDir(root, dir string) {
	r, err := confined.Open(root)
	if err != nil {
		return
	}
	defer r.Close()
	parent, err := r.OpenDir(filepath.Dir(dir))
	if err != nil {
		return
	}
	defer parent.Close()
	unix.Unlinkat(parent.Fd(), filepath.Base(dir), unix.AT_REMOVEDIR)
}

// linkRootFile hard-links from to to, both inside the root (the same
// directory or not), never following a symlink.
func linkRootFile(root, from, to string) error {
	return atRoot(root, from, to, func(fd1 int, n1 string, fd2 int, n2 string) error {
		return unix.Linkat(fd1, n1, fd2, n2, 0)
	})
}

// renameRootFile renames from over to, both inside the root.
func renameRootFile(root, from, to string) error {
	return atRoot(root, from, to, func(fd1 int, n1 string, fd2 int, n2 string) error {
		return unix.Renameat(fd1, n1, fd2, n2)
	})
}

func atRoot(root, from, to string, op func(int, string, int, string) error) error {
	r, err := confined.Open(root)
	if err != nil {
		return err
	}
	defer r.Close()
	d1, err := r.OpenDir(filepath.Dir(from))
	if err != nil {
		return err
	}
	defer d1.Close()
	d2, err := r.OpenDir(filepath.Dir(to))
	if err != nil {
		return err
	}
	defer d2.Close()
	if err := op(d1.Fd(), filepath.Base(from), d2.Fd(), filepath.Base(to)); err != nil {
		return &os.LinkError{Op: "link", Old: r.Join(from), New: r.Join(to), Err: err}
	}
	return nil
}

// saveRootFile returns what puts a file inside the root back as it is
// now: its content and mode, or its absence (and then its directory's, if
// writing it creates that).
func saveRootFile(root, path string) (func() error, error) {
	fi, err := lstatRootFile(root, path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		_, dirErr := lstatRootFile(root, filepath.Dir(path))
		return func() error {
			if _, err := removeRootFile(root, path); err != nil {
				return err
			}
			if errors.Is(dirErr, fs.ErrNotExist) {
				removeRootDir(root, filepath.Dir(path)) // created by the write; only if empty
			}
			return nil
		}, nil
	case err != nil:
		return nil, fmt.Errorf("setup: %w", err)
	case !fi.IsRegular():
		return nil, fmt.Errorf("setup: %s is not a regular file", filepath.Join(root, path))
	}
	b, err := readRootFile(root, path)
	if err != nil {
		return nil, fmt.Errorf("setup: %w", err)
	}
	return func() error {
		_, err := writeRootFile(root, path, b, os.FileMode(fi.Mode).Perm())
		return err
	}, nil
}

const (
	dpkgPath     = "/usr/bin/dpkg"
	distribPath  = "/usr/bin/dpkg.distrib"
	divertNotice = "dpkg-divert --local --no-rename"
)

// dpkgDivert runs dpkg-divert on the root.
func dpkgDivert(g globalOpts, args ...string) error {
	if err := setupStep("dpkg-divert " + strings.Join(args, " ")); err != nil {
		return err
	}
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

// divertInfo is what the divert mode's pieces look like now.
type divertInfo struct {
	diverted      bool   // the diversions database diverts /usr/bin/dpkg to dpkg.distrib, locally
	other         string // a diversion of /usr/bin/dpkg that is not debseal's (package and target)
	script        []byte // /usr/bin/dpkg's content (nil: unreadable or absent)
	scriptInPlace bool   // /usr/bin/dpkg is not the real dpkg (a debseal wrapper)
	distrib       bool   // /usr/bin/dpkg.distrib exists
}

// divertState reads the diversions database (not dpkg-divert: this works
// without it) and the two files.
func divertState(g globalOpts) (divertInfo, error) {
	var d divertInfo
	f, err := os.Open(filepath.Join(g.Admindir, "diversions"))
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return d, fmt.Errorf("setup: %w", err)
	default:
		defer f.Close()
		divs, err := dpkgdb.ParseDiversions(f, f.Name())
		if err != nil {
			return d, fmt.Errorf("setup: %w", err)
		}
		if dv, ok := divs.ByFrom(dpkgPath); ok {
			if dv.Package == "" && dv.To == distribPath {
				d.diverted = true
			} else {
				d.other = fmt.Sprintf("to %s by %q", dv.To, dv.Package)
			}
		}
	}
	if b, err := readRootFile(g.Root, dpkgPath); err == nil {
		d.script = b
		d.scriptInPlace = !isRealDpkg(b)
	}
	if _, err := lstatRootFile(g.Root, distribPath); err == nil {
		d.distrib = true
	}
	return d, nil
}

// setupDivert makes /usr/bin/dpkg debseal's wrapper script: a local
// diversion without rename (dpkg is Essential: it must never be missing,
// even for an instant), the real binary hard-linked to
// /usr/bin/dpkg.distrib, then the script renamed over /usr/bin/dpkg. The
// script runs the real dpkg by itself for queries and maintainer scripts'
// calls, and when debseal is gone (aptconf/lib/dpkg), so dpkg keeps
// working even if debseal's own package is removed, and the many dpkg
// calls of a transaction do not each start debseal. Each step pushes its
// undo; the caller relocks dpkg's package.
func setupDivert(ctx context.Context, g globalOpts, binary string, undo *undoStack) (bool, error) {
	script := aptconf.DivertScript(distribPath, binary)
	d, err := divertState(g)
	if err != nil {
		return false, err
	}
	if d.other != "" {
		return false, fmt.Errorf("divert: %s is already diverted %s: not touching it", dpkgPath, d.other)
	}
	if d.diverted && d.distrib && bytes.Equal(d.script, script) {
		return false, nil // already set up, with this script
	}
	if !d.distrib && d.script != nil && d.scriptInPlace {
		return false, fmt.Errorf("divert: %s is missing and %s is not dpkg (a debseal wrapper from an earlier setup?): reinstall the dpkg package first", distribPath, dpkgPath)
	}
	// The real dpkg's file is locked when sealed: free it for the link,
	// the rename over it (and their undoing); the caller relocks it.
	if err := setupStep("unlock " + dpkgPath); err != nil {
		return false, err
	}
	if err := setFlag(g.Root, dpkgPath, false); err != nil {
		return false, err
	}
	if !d.diverted {
		if err := dpkgDivert(g, "--local", "--no-rename", "--divert", distribPath, "--add", dpkgPath); err != nil {
			return false, err
		}
		undo.push("the diversion of "+dpkgPath, func() error {
			return dpkgDivert(g, "--local", "--no-rename", "--remove", dpkgPath)
		})
	}
	if !d.distrib {
		if err := setupStep("link " + distribPath); err != nil {
			return false, err
		}
		if err := linkRootFile(g.Root, dpkgPath, distribPath); err != nil {
			return false, fmt.Errorf("divert: keeping the real dpkg as %s: %w", distribPath, err)
		}
		undo.push("the link "+distribPath, func() error {
			_, err := removeRootFile(g.Root, distribPath)
			return err
		})
	}
	if _, err := writeRootFile(g.Root, dpkgPath, script, 0o755); err != nil {
		return false, err
	}
	old := d.script
	undo.push("the script at "+dpkgPath, func() error {
		if old != nil && d.scriptInPlace {
			_, err := writeRootFile(g.Root, dpkgPath, old, 0o755) // an older debseal's script
			return err
		}
		return restoreRealDpkg(g.Root)
	})
	return true, nil
}

// restoreRealDpkg puts the real dpkg (dpkg.distrib) back at /usr/bin/dpkg
// in one rename, keeping dpkg.distrib: a second hard link renamed over
// /usr/bin/dpkg, so dpkg is never missing.
func restoreRealDpkg(root string) error {
	tmp := dpkgPath + ".debseal-tmp"
	removeRootFile(root, tmp)
	if err := setFlag(root, distribPath, false); err != nil {
		return err
	}
	if err := linkRootFile(root, distribPath, tmp); err != nil {
		return fmt.Errorf("divert: %w", err)
	}
	if err := renameRootFile(root, tmp, dpkgPath); err != nil {
		removeRootFile(root, tmp)
		return fmt.Errorf("divert: putting the real dpkg back: %w", err)
	}
	return nil
}

// isRealDpkg tells dpkg's binary from what the divert mode puts in its
// place (this wrapper script, or, from older debseal versions, a copy of
// debseal itself).
func isRealDpkg(b []byte) bool {
	return !bytes.HasPrefix(b, []byte("#!")) && !bytes.Contains(b, []byte("github.com/debseal/debseal"))
}

// teardownDivert puts the real dpkg back in one rename and removes the
// diversion, pushing the undo of each step; the caller relocks dpkg's
// package.
func teardownDivert(ctx context.Context, g globalOpts, undo *undoStack) error {
	d, err := divertState(g)
	if err != nil {
		return err
	}
	if d.scriptInPlace && !d.distrib {
		return fmt.Errorf("divert: %s is a debseal wrapper and %s is missing: reinstall the dpkg package first", dpkgPath, distribPath)
	}
	if d.distrib && d.scriptInPlace {
		if err := setupStep("put the real dpkg back"); err != nil {
			return err
		}
		if err := setFlag(g.Root, distribPath, false); err != nil {
			return err
		}
		if err := setFlag(g.Root, dpkgPath, false); err != nil {
			return err
		}
		if err := renameRootFile(g.Root, distribPath, dpkgPath); err != nil {
			return fmt.Errorf("divert: putting the real dpkg back: %w", err)
		}
		script := d.script
		undo.push("putting the real dpkg back", func() error {
			if err := linkRootFile(g.Root, dpkgPath, distribPath); err != nil {
				return fmt.Errorf("divert: %w", err)
			}
			_, err := writeRootFile(g.Root, dpkgPath, script, 0o755)
			return err
		})
	} else if d.distrib {
		// The real dpkg is at both names (a setup that stopped before
		// writing the script): the extra link goes.
		a, errA := lstatRootFile(g.Root, distribPath)
		b, errB := lstatRootFile(g.Root, dpkgPath)
		if errA == nil && errB == nil && a.Ident == b.Ident {
			if err := setupStep("remove " + distribPath); err != nil {
				return err
			}
			if err := setFlag(g.Root, distribPath, false); err != nil {
				return err
			}
			if _, err := removeRootFile(g.Root, distribPath); err != nil {
				return fmt.Errorf("divert: %w", err)
			}
			undo.push("removing "+distribPath, func() error { return linkRootFile(g.Root, dpkgPath, distribPath) })
		}
	}
	if d.diverted {
		if err := dpkgDivert(g, "--local", "--no-rename", "--remove", dpkgPath); err != nil {
			return err
		}
		undo.push("removing the diversion of "+dpkgPath, func() error {
			return dpkgDivert(g, "--local", "--no-rename", "--divert", distribPath, "--add", dpkgPath)
		})
	}
	return nil
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
	sum := lockWith(ctx, sys, plan.Targets, true, nil)
	if len(sum.Errors) > 0 {
		return sum.Errors[0]
	}
	_, err = seal.RecordVerity(g.Root, &sum.Verity)
	return err
}
