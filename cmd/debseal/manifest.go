package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/urfave/cli/v2"
)

func init() { register(manifestCommand) }

type manifestOpts struct {
	All       bool
	Installed bool // never read a .deb's data member
	Verbose   bool
	Pkgs      []string
	Stderr    io.Writer
}

func manifestCommand() *cli.Command {
	return &cli.Command{
		Name:      "manifest",
		Usage:     "record SHA-256 manifests of installed packages, for debseal audit",
		ArgsUsage: "[--all | PKG[:ARCH]...]",
		Description: "Writes ROOT/var/lib/debseal/manifests/NAME_ARCH.manifest (0600, immutable) for each package:\n" +
			"from the .deb in apt's cache (ROOT/var/cache/apt/archives) when it is the installed version,\n" +
			"\"apt-verified\" when its hash matches apt's package indices; otherwise from the installed\n" +
			"files, each checked against the package's md5sums (a file that differs is left out and\n" +
			"reported). The hooks record manifests by themselves after every dpkg run. See docs/audit.md.\n\n" + exitHelp("manifest"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "all", Aliases: []string{"a"}, Usage: "every installed package"},
			&cli.BoolFlag{Name: "from-installed", Usage: "take modes, owners and symlink targets from the installed files even when a .deb is at hand (faster; content is still checked against the .deb's md5sums)"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "one line per package"},
		},
		Action: func(c *cli.Context) error {
			o := manifestOpts{All: c.Bool("all"), Installed: c.Bool("from-installed"), Verbose: c.Bool("verbose"),
				Pkgs: c.Args().Slice(), Stderr: c.App.ErrWriter}
			return runManifest(c.Context, globalsFrom(c), o, c.App.Writer)
		},
	}
}

func runManifest(ctx context.Context, g globalOpts, o manifestOpts, out io.Writer) error {
	sys, err := openSystem(g, true)
	if err != nil {
		return err
	}
	defer sys.Close()
	sel, _, err := sys.selectPackages(o.Pkgs, o.All, false)
	if err != nil {
		return err
	}
	var pkgs []*dpkgdb.Package
	for _, p := range sel {
		if p.HasFiles() && p.State >= dpkgdb.StateUnpacked {
			pkgs = append(pkgs, p)
		} else if !o.All {
			return fmt.Errorf("%s is not installed (%s)", p.ID(), p.State)
		}
	}
	b := manifest.NewBuilder(g.Root, sys.db, sys.fs.Root)
	defer b.Close()
	prog := newProgress(o.Stderr, o.All)
	results, err := buildManifests(ctx, b, pkgs, !o.Installed, prog)
	if err != nil {
		return err
	}
	counts := map[string]int{}
	var mismatches, problems int
	var badSums []string
	for i, r := range results {
		p := pkgs[i]
		var rest []error
		rest, badSums = splitBadMD5Sums(r.problems, badSums)
		for _, pr := range rest {
			var mm *manifest.Mismatch
			if errors.As(pr, &mm) {
				mismatches++
				fmt.Fprintf(out, "MISMATCH %v\n", pr)
				continue
			}
			problems++
			fmt.Fprintf(o.Stderr, "debseal: warning: %s: %v\n", p.ID(), pr)
		}
		if r.err != nil {
			problems++
			fmt.Fprintf(o.Stderr, "debseal: error: %s: %v\n", p.ID(), r.err)
			continue
		}
		key := string(r.m.Provenance) + " from " + string(r.m.Content)
		counts[key]++
		if o.Verbose {
			fmt.Fprintf(out, "%s %s: %s, from the %s files (%d paths)\n", p.ID(), p.Version, r.m.Provenance, r.m.Content, len(r.m.Entries))
		}
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", n, k))
	}
	sort.Strings(parts)
	fmt.Fprintf(out, "recorded %d manifests in %s: %s\n", len(pkgs)-countErrs(results, func(r manifestResult) bool { return r.err != nil }), b.Store.Dir, strings.Join(parts, ", "))
	printBadMD5Sums(out, badSums)
	var found []string
	if mismatches > 0 {
		found = append(found, fmt.Sprintf("%d installed files differ from their packages and were left out of the manifests", mismatches))
	}
	if len(badSums) > 0 {
		found = append(found, fmt.Sprintf("%d md5sums lines are malformed", len(badSums)))
	}
	switch {
	case problems > 0:
		return partialf("manifest: %d problems, each listed above", problems)
	case len(found) > 0:
		return findingsf("manifest: %s", strings.Join(found, ", "))
	}
	return nil
}

// manifestResult is one package's manifest, or why there is none.
type manifestResult struct {
	m        *manifest.Manifest
	problems []error
	err      error
}

// buildManifests builds and stores a manifest for each package, in
// parallel (useData: from a cached .deb's data member when there is one).
// They are stored in batches, each durable with one flush
// (manifest.Store.SaveAll): a flush per manifest was most of lock --all's
// time on a big system.
func buildManifests(ctx context.Context, b *manifest.Builder, pkgs []*dpkgdb.Package, useData bool, prog progress.Meter) ([]manifestResult, error) {
	results := make([]manifestResult, len(pkgs))
	var next int
	var mu sync.Mutex
	var wg sync.WaitGroup
	built := make(chan int, 64)
	prog.Start("recording manifests", progress.Packages, len(pkgs))
	for w := 0; w < max(2, runtime.GOMAXPROCS(0)); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				mu.Lock()
				i := next
				next++
				mu.Unlock()
				if i >= len(pkgs) || ctx.Err() != nil {
					return
				}
				r := &results[i]
				r.m, r.problems, r.err = b.Build(ctx, pkgs[i], "", useData)
				if r.err != nil {
					prog.Add(1)
					continue
				}
				built <- i
			}
		}()
	}
	go func() {
		wg.Wait()
		close(built)
	}()
	var batch []int
	entries := 0
	save := func() {
		ms := make([]*manifest.Manifest, len(batch))
		for k, i := range batch {
			ms[k] = results[i].m
		}
		for k, err := range b.Store.SaveAll(ms) {
			results[batch[k]].err = err
		}
		prog.Add(len(batch))
		batch, entries = batch[:0], 0
	}
	for i := range built {
		batch = append(batch, i)
		entries += len(results[i].m.Entries)
		if len(batch) >= saveBatch || entries >= saveBatchEntries {
			save()
		}
	}
	if len(batch) > 0 {
		save()
	}
	prog.Done()
	return results, ctx.Err()
}

// A batch of manifests is saved once it holds saveBatch manifests or
// saveBatchEntries paths (some 15 MB of manifest text held in memory).
const (
	saveBatch        = 1000
	saveBatchEntries = 100_000
)

func countErrs[T any](rs []T, bad func(T) bool) int {
	n := 0
	for _, r := range rs {
		if bad(r) {
			n++
		}
	}
	return n
}
