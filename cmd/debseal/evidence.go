package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/debseal/debseal/pkg/evidence"
	"github.com/urfave/cli/v2"
)

func init() { register(evidenceCommand) }

func evidenceCommand() *cli.Command {
	return &cli.Command{
		Name:  "evidence",
		Usage: "list or clear the tampered files dpkg runs found before replacing them",
		Description: "Before a dpkg run unlocks a sealed file, debseal checks it against the package's md5sums\n" +
			"and its own manifest; one that differs (or a symlink, FIFO or device where a regular\n" +
			"file belongs) is recorded in ROOT/var/lib/debseal/evidence with a copy of the file\n" +
			"(within evidence-max-file and evidence-max-total), and debseal audit reports it as\n" +
			"tampered-before-upgrade until it is cleared. 'list' shows the records; 'clear ID...' or\n" +
			"'clear --all' removes them and their copies (acknowledging them). See debseal(8).\n\n" + exitHelp("evidence"),
		Subcommands: []*cli.Command{
			{
				Name:  "list",
				Usage: "show every record: when, which package and file, expected and found, where the copy is",
				Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "one JSON object per record and line (docs/json.md)"}},
				Action: func(c *cli.Context) error {
					return runEvidenceList(globalsFrom(c), c.Bool("json"), c.App.Writer)
				},
			},
			{
				Name:      "clear",
				Usage:     "remove records and their copies, once you have looked at them",
				ArgsUsage: "[--all | ID...]",
				Flags:     []cli.Flag{&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every record and copy"}},
				Action: func(c *cli.Context) error {
					return runEvidenceClear(globalsFrom(c), c.Bool("all"), c.Args().Slice(), c.App.Writer)
				},
			},
		},
	}
}

// jsonEvent is an evidence record as evidence list --json prints it.
type jsonEvent struct {
	ID string `json:"id"`
	*evidence.Event
}

func runEvidenceList(g globalOpts, asJSON bool, out io.Writer) error {
	evs, errs := evidence.List(g.Root)
	enc := json.NewEncoder(out)
	for i := range evs {
		ev := &evs[i]
		if asJSON {
			if err := enc.Encode(jsonEvent{ID: ev.ID, Event: ev}); err != nil {
				return err
			}
			continue
		}
		printEvent(out, ev)
	}
	if !asJSON && len(evs) == 0 && len(errs) == 0 {
		fmt.Fprintln(out, "no evidence recorded")
	}
	if len(errs) > 0 {
		return fmt.Errorf("evidence: %w", errors.Join(errs...))
	}
	return nil
}

// printEvent writes one record as text.
func printEvent(out io.Writer, ev *evidence.Event) {
	real := ""
	if ev.Real != "" {
		real = " (at " + ev.Real + ")"
	}
	fmt.Fprintf(out, "%s %s [%s] %s%s\n", ev.ID, ev.Time.Format(time.RFC3339), ev.Package, ev.Path, real)
	fmt.Fprintf(out, "    expected %s (%s)\n    found    %s\n", ev.Expected(), ev.Source(), ev.Actual())
	if ev.Run != "" {
		fmt.Fprintf(out, "    before   %s\n", ev.Run)
	}
	if ev.Copy != "" {
		fmt.Fprintf(out, "    copy     /%s/%s (%d bytes, sha256 %s)\n", evidence.Dir, ev.Copy, ev.Size, ev.CopySHA256)
	} else {
		fmt.Fprintf(out, "    no copy  %s\n", ev.NoCopy)
	}
}

func runEvidenceClear(g globalOpts, all bool, ids []string, out io.Writer) error {
	switch {
	case all && len(ids) > 0:
		return usagef("evidence clear: --all or IDs, not both")
	case !all && len(ids) == 0:
		return usagef("evidence clear: no IDs given (debseal evidence list shows them), and no --all")
	}
	if err := checkHostRoot(g.Root); err != nil {
		return err
	}
	removed, err := evidence.Clear(g.Root, ids)
	fmt.Fprintf(out, "cleared %d records\n", len(removed))
	return err
}
