// Command benchreport prints hyperfine JSON exports as a table with ratios.
//
//	benchreport [-title T] FILE.json...
//
// Each file holds one comparison (hyperfine runs of several commands). The
// first command in a file whose name starts with "debseal" is compared with
// every other command in that file: ratio = debseal mean / other mean, so
// below 1 means debseal is faster.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"strings"
)

type result struct {
	Command string    `json:"command"`
	Mean    float64   `json:"mean"`
	Stddev  float64   `json:"stddev"`
	Median  float64   `json:"median"`
	Min     float64   `json:"min"`
	Times   []float64 `json:"times"`
}

func main() {
	title := flag.String("title", "", "table title")
	flag.Parse()
	if *title != "" {
		fmt.Printf("%s\n", *title)
	}
	fmt.Printf("| %-52s | %10s | %9s | %-28s |\n", "command", "median", "± stddev", "debseal / peer")
	fmt.Printf("|%s|%s|%s|%s|\n", strings.Repeat("-", 54), strings.Repeat("-", 12), strings.Repeat("-", 11), strings.Repeat("-", 30))
	for _, f := range flag.Args() {
		b, err := os.ReadFile(f)
		if err != nil {
			fmt.Fprintln(os.Stderr, "benchreport:", err)
			os.Exit(1)
		}
		var doc struct{ Results []result }
		if err := json.Unmarshal(b, &doc); err != nil {
			fmt.Fprintf(os.Stderr, "benchreport: %s: %v\n", f, err)
			os.Exit(1)
		}
		var ours *result
		for i := range doc.Results {
			if strings.HasPrefix(doc.Results[i].Command, "debseal") {
				ours = &doc.Results[i]
				break
			}
		}
		for _, r := range doc.Results {
			ratio := ""
			if ours != nil && r.Command != ours.Command && r.Median > 0 {
				ratio = fmt.Sprintf("%.2fx (%s)", ours.Median/r.Median, short(r.Command))
			}
			fmt.Printf("| %-52s | %8.1fms | %7.1fms | %-28s |\n", short(r.Command), r.Median*1000, r.Stddev*1000, ratio)
		}
	}
}

func short(s string) string {
	if len(s) > 52 {
		return s[:49] + "..."
	}
	return s
}
