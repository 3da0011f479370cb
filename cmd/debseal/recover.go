package main

import (
	"context"
	"fmt"
	"io"

	"github.com/debseal/debseal/pkg/seal"
	"github.com/urfave/cli/v2"
)

func init() { register(recoverCommand) }

func recoverCommand() *cli.Command {
	return &cli.Command{
		Name:  "recover",
		Usage: "relock what an interrupted dpkg/apt run left unlocked",
		Description: "Ends every transaction whose process died (a crash, a kill, a power loss: its\n" +
			"journal is in ROOT/var/lib/debseal/journal), relocking every sealed package it\n" +
			"touched. Packages dpkg left half-installed or unconfigured stay unlocked until dpkg\n" +
			"repairs them; any later debseal run then locks them. It also locks sealed packages\n" +
			"that dpkg changed without debseal seeing it. Every debseal hook and the wrapper do\n" +
			"this first on their own; run it by hand, or from debseal-recover.service at boot.\n" +
			"Nothing is relocked while a dpkg runs.\n\n" + exitHelp("recover"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "also end transactions whose process still runs (a wedged process)"},
		},
		Action: func(c *cli.Context) error {
			return runRecover(c.Context, globalsFrom(c), c.Bool("force"), c.App.Writer, c.App.ErrWriter)
		},
	}
}

func runRecover(ctx context.Context, g globalOpts, force bool, out, stderr io.Writer) error {
	if err := checkHostRoot(g.Root); err != nil {
		return err
	}
	owner, err := self("recover")
	if err != nil {
		return err
	}
	log := newEventLog(g.Root, "recover", nil)
	se, closeFS, err := openSession(g, owner, false, log, "")
	if err != nil {
		return err
	}
	defer closeFS()
	rep, err := se.Recover(ctx, force)
	if rep == nil {
		return err
	}
	errs := rep.RecoverErrs
	if err != nil {
		errs = append(errs, err)
	}
	findings := 0
	for _, r := range rep.Recovered {
		j := r.Journal
		if r.Skipped != "" {
			fmt.Fprintf(out, "%s (%s, process %d): not recovered: %s\n", j.Path(), j.Owner.Via, j.Owner.Pid, r.Skipped)
			continue
		}
		what := fmt.Sprintf("recovery of %s (process %d)", j.Owner.Via, j.Owner.Pid)
		log.end(r.End, what)
		fmt.Fprintf(out, "%s: relocked %d files in %d packages\n", what, r.End.Locked, len(r.End.Packages))
		findings += printEndFindings(out, r.End)
		errs = append(errs, r.End.Errors...)
	}
	// Then what changed without debseal seeing it, and packages dpkg has
	// configured since: not while dpkg runs, nor between the dpkg runs of
	// an apt transaction (apt holds the frontend lock throughout; in the
	// apt-hooks mode its later dpkg runs need what its Pre-Install-Pkgs
	// hook unlocked).
	if end := rep.End; end != nil {
		log.end(end, "reconcile")
		switch {
		case end.Deferred != "":
			fmt.Fprintf(out, "%s: nothing relocked now\n", end.Deferred)
		case end.Locked > 0:
			fmt.Fprintf(out, "locked %d files of packages changed outside debseal\n", end.Locked)
		}
		findings += printEndFindings(out, end)
		errs = append(errs, end.Errors...)
	}
	for _, e := range rep.RecoverErrs {
		log.Errorf("recovery: %v", e)
	}
	if len(rep.Recovered) == 0 {
		fmt.Fprintln(out, "no interrupted transaction")
	}
	printProblems(stderr, errs)
	switch {
	case len(errs) > 0:
		return partialf("recover: %d errors, each listed above", len(errs))
	case findings > 0:
		return findingsf("%d findings (mismatches and orphans, listed above)", findings)
	}
	return nil
}

func printEndFindings(out io.Writer, e *seal.EndReport) int {
	for _, p := range e.Pending {
		fmt.Fprintf(out, "pending: %s is not configured; it is locked once dpkg configures it\n", p)
	}
	for _, m := range e.Mismatches {
		fmt.Fprintf(out, "MISMATCH %s: left unlocked\n", m)
	}
	for _, o := range e.Orphans {
		real := o.Path
		if o.Real != "" {
			real = o.Real
		}
		fmt.Fprintf(out, "ORPHAN %s (was in %s; no package owns it now)\n", real, o.Pkg)
	}
	return len(e.Mismatches) + len(e.Orphans)
}
