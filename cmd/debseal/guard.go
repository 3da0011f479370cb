package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/debseal/debseal/pkg/audit"
	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/guard"
)

// guardState is what of the capability guard is installed under a root.
type guardState struct {
	On      bool     // the service.d drop-in is there
	Allowed []string // units with the guard's allow drop-in, sorted
}

// readGuard finds the guard's files under the root: only files that carry
// its marker count, so an admin's file of the same name is neither
// reported nor removed.
func readGuard(root string) (guardState, error) {
	var st guardState
	r, err := confined.Open(root)
	if err != nil {
		return st, fmt.Errorf("guard: %w", err)
	}
	defer r.Close()
	b, err := r.ReadFile(guard.GuardPath)
	switch {
	case err == nil:
		st.On = guard.Ours(b)
	case !errors.Is(err, fs.ErrNotExist):
		return st, fmt.Errorf("guard: %w", err)
	}
	dir := path.Dir(path.Dir(guard.GuardPath))
	ents, err := r.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return st, fmt.Errorf("guard: %w", err)
	}
	for _, e := range ents {
		p := path.Join(dir, e.Name, guard.DropInName)
		u := guard.AllowedUnit(p)
		if u == "" || !e.Info.IsDir() {
			continue
		}
		b, err := r.ReadFile(p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return st, fmt.Errorf("guard: %w", err)
		}
		if guard.Ours(b) {
			st.Allowed = append(st.Allowed, u)
		}
	}
	return st, nil
}

// applyGuard installs the guard (on) or removes it (off), pushing the undo
// of each step, and reports whether anything changed. Installing writes
// the service.d drop-in and one allow drop-in per unit of guard.Units,
// and removes the allow drop-ins of units no longer allowed.
func applyGuard(g globalOpts, on bool, allow []string, undo *undoStack) (bool, error) {
	cur, err := readGuard(g.Root)
	if err != nil {
		return false, err
	}
	var want []guard.File
	if on {
		if want, err = guard.Files(allow); err != nil {
			return false, usagef("%v (guard-allow in %s)", err, g.Config)
		}
	}
	changed := false
	keep := map[string]bool{}
	// Allow drop-ins before the guard: a failure in between never leaves
	// an allowed unit guarded.
	slices.Reverse(want)
	for _, f := range want {
		keep[f.Path] = true
		if theirs, err := foreignFile(g.Root, f.Path); err != nil {
			return changed, err
		} else if theirs {
			if f.Path == guard.GuardPath {
				return changed, fmt.Errorf("guard: %s exists and was not written by debseal: move it away first", f.Path)
			}
			// Same name, the admin's: it already hides the guard's
			// drop-in from that unit.
			continue
		}
		restore, err := saveRootFile(g.Root, f.Path)
		if err != nil {
			return changed, err
		}
		ch, err := writeRootFile(g.Root, f.Path, f.Content, 0o644)
		if err != nil {
			return changed, err
		}
		if ch {
			undo.push("write "+f.Path, restore)
		}
		changed = changed || ch
	}
	var stale []string
	if cur.On && !on {
		stale = append(stale, guard.GuardPath)
	}
	for _, u := range cur.Allowed {
		if !keep[guard.AllowPath(u)] {
			stale = append(stale, guard.AllowPath(u))
		}
	}
	for _, p := range stale {
		restore, err := saveRootFile(g.Root, p)
		if err != nil {
			return changed, err
		}
		removed, err := removeRootFile(g.Root, p)
		if err != nil {
			return changed, err
		}
		if removed {
			undo.push("remove "+p, restore)
			changed = true
		}
		removeRootDir(g.Root, path.Dir(p)) // only if empty
	}
	return changed, nil
}

// reloadSystemd makes the running systemd read the drop-ins again when
// the root is this machine's booted one; for another root, that systemd
// reads them when it next starts.
func reloadSystemd(ctx context.Context, g globalOpts, out io.Writer) error {
	if path.Clean(g.Root) != "/" {
		fmt.Fprintf(out, "debseal: the systemd of %s reads the guard when it next starts\n", g.Root)
		return nil
	}
	if _, err := os.Stat("/run/systemd/system"); err != nil {
		fmt.Fprintln(out, "debseal: systemd is not running: it reads the guard when it starts")
		return nil
	}
	if b, err := exec.CommandContext(ctx, "systemctl", "daemon-reload").CombinedOutput(); err != nil {
		return fmt.Errorf("guard: systemctl daemon-reload: %w: %s", err, strings.TrimSpace(string(b)))
	}
	return nil
}

// guardMessage says what the guard now does, for setup's output.
func guardMessage(on bool, allow []string) string {
	if !on {
		return "debseal: capability guard off: services started from now on may clear the immutable flag again (running ones keep what they started with)"
	}
	units, _ := guard.Units(allow)
	return fmt.Sprintf("debseal: capability guard on: services started from now on cannot clear the immutable flag, except %s;\n"+
		"         services already running keep it until restarted (debseal audit lists them)", strings.Join(units, " "))
}

// auditGuard adds a capable-service finding for each running service
// that still holds CAP_LINUX_IMMUTABLE while the guard is on: started
// before the guard, or its unit or a drop-in of its own overrides it.
// Only for this machine's booted root: another root's services are not
// the processes running here.
func auditGuard(g globalOpts, sum *audit.Summary, emit func(audit.Finding)) error {
	if path.Clean(g.Root) != "/" {
		return nil
	}
	st, err := readGuard(g.Root)
	if err != nil || !st.On {
		return err
	}
	holders, err := guard.Scan("/proc", st.Allowed)
	if err != nil {
		return err
	}
	for _, h := range holders {
		pids := make([]string, len(h.PIDs))
		for i, p := range h.PIDs {
			pids[i] = strconv.Itoa(p)
		}
		f := audit.Finding{Kind: audit.CapableService, Path: h.Unit, Real: h.Unit, Source: "/proc/PID/status CapBnd",
			Expected: "CAP_LINUX_IMMUTABLE out of the bounding set (capability guard on; restart the unit, or add guard-allow for it)",
			Actual:   fmt.Sprintf("held by pid %s (%s)", strings.Join(pids, " "), h.Comm)}
		sum.ByKind[f.Kind]++
		emit(f)
	}
	return nil
}

// missingCapability explains unlock failures when this process cannot
// clear the flag at all: "" when it can. Under the capability guard, the
// usual cause is package management run from a service that is not
// allowed.
func missingCapability() string {
	st, err := guard.Self()
	if err != nil || st.Effective() {
		return ""
	}
	unit := ""
	if f, err := os.Open("/proc/self/cgroup"); err == nil {
		unit, _ = guard.ParseCgroup(f)
		f.Close()
	}
	if unit == "" || st.Holds() {
		return "this process lacks CAP_LINUX_IMMUTABLE (not root, or its capabilities were dropped): dpkg fails on every locked file it must change"
	}
	return fmt.Sprintf("this process lacks CAP_LINUX_IMMUTABLE: it runs in %s, which the capability guard does not allow; "+
		"add \"guard-allow = %s\" to debseal.conf, run debseal setup --guard, and restart the unit", unit, unit)
}

// foreignFile reports whether p exists under the root and was not written
// by the guard.
func foreignFile(root, p string) (bool, error) {
	b, err := readRootFile(root, p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return false, nil
	case err != nil:
		return false, fmt.Errorf("guard: %w", err)
	}
	return !guard.Ours(b), nil
}
