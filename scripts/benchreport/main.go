// Command benchreport prints hyperfine JSON exports as a table with ratios.
//
//	benchreport [-title T] FILE.json...
//
// Each file holds one comparison (hyperfine runs of several commands). The
// first command in a file whose name starts with "debseal" is compared with
// every other command in that file: ratio = debseal / other, so below 1
// means debseal is faster. Three ratios are printed: wall time (medians),
// CPU time (user+sys, means: hyperfine reports no per-run CPU) and sys
// time. On a machine other work shares, wall time is noisy while CPU time
// holds: it is the ratio to compare (issue 12).
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
)

type result struct {
	Command string    `json:"command"`
	Mean    float64   `json:"mean"`
	Stddev  float64   `json:"stddev"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	User    float64   `json:"user"`
	System  float64   `json:"system"`
	Times   []float64 `json:"times"`
}

// cpu is the mean CPU time of one run (user+sys).
func (r *result) cpu() float64 { return r.User + r.System }

func main() {
	title := flag.String("title", "", "table title")
	flag.Parse()
	var docs [][]result
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		rs, err := parse(b)
		if err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", f, err)
			os.Exit(1)
		}
		docs = append(docs, rs)
	}
	report(os.Stdout, *title, docs)
}

// parse reads one hyperfine JSON export.
func parse(b []byte) ([]result, error) {
	var doc struct{ Results []result }
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	return doc.Results, nil
}

// report prints one table row per command, with its ratios against the
// debseal command of its comparison.
func report(w io.Writer, title string, docs [][]result) {
	if title != "" {
		fmt.Fprintf(w, "%s\n", title)
	}
	fmt.Fprintf(w, "| %-52s | %10s | %9s | %9s | %8s | %-28s | %9s | %9s |\n",
		"command", "median", "± stddev", "CPU", "sys", "debseal / peer (wall)", "CPU ratio", "sys ratio")
	fmt.Fprintf(w, "|%s|%s|%s|%s|%s|%s|%s|%s|\n", strings.Repeat("-", 54), strings.Repeat("-", 12), strings.Repeat("-", 11),
		strings.Repeat("-", 11), strings.Repeat("-", 10), strings.Repeat("-", 30), strings.Repeat("-", 11), strings.Repeat("-", 11))
	for _, rs := range docs {
		var ours *result
		for i := range rs {
			if strings.HasPrefix(rs[i].Command, "debseal") {
				ours = &rs[i]
				break
			}
		}
		for _, r := range rs {
			wall, cpu, sys := "", "", ""
			if ours != nil && r.Command != ours.Command {
				wall = ratio(ours.Median, r.Median)
				if wall != "" {
					wall += " (" + short(r.Command) + ")"
				}
				cpu = ratio(ours.cpu(), r.cpu())
				sys = ratio(ours.System, r.System)
			}
			fmt.Fprintf(w, "| %-52s | %8.1fms | %7.1fms | %7.0fms | %6.0fms | %-28s | %9s | %9s |\n",
				short(r.Command), r.Median*1000, r.Stddev*1000, r.cpu()*1000, r.System*1000, wall, cpu, sys)
		}
	}
}

// ratio is ours/theirs as "0.42x", or empty when theirs is not positive.
func ratio(ours, theirs float64) string {
	if theirs <= 0 {
		return ""
	}
	return fmt.Sprintf("%.2fx", ours/theirs)
}

func short(s string) string {
	if len(s) > 52 {
		return s[:49] + "..."
	}
	return s
}
