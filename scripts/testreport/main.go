// Command testreport reads `go test -json` on stdin and prints a readable
// report: one line per package, the output of every failed test, and every
// skipped test with its reason. Under CI=true a skip is a failure, because
// the CI machine has everything the suite needs (root, dpkg, loop devices,
// the network) and a skipped proof is a missing proof.
//
// It exits 1 when a test failed, a package failed to build, or (under CI) a
// test was skipped.
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
	Elapsed float64
}

type key struct{ pkg, test string }

func main() {
	ci := os.Getenv("CI") == "true"
	output := map[key]*strings.Builder{}
	var failed, skipped []key
	pkgs := map[string]string{}
	pkgTime := map[string]float64{}
	var order []string

	sc := bufio.NewScanner(os.Stdin)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		var e event
		if err := json.Unmarshal(line, &e); err != nil {
			// Build errors arrive as plain text.
			fmt.Println(string(line))
			continue
		}
		k := key{e.Package, e.Test}
		switch e.Action {
		case "output":
			b := output[k]
			if b == nil {
				b = &strings.Builder{}
				output[k] = b
			}
			b.WriteString(e.Output)
		case "fail":
			if e.Test != "" {
				failed = append(failed, k)
			} else {
				if _, seen := pkgs[e.Package]; !seen {
					order = append(order, e.Package)
				}
				pkgs[e.Package] = "FAIL"
				pkgTime[e.Package] = e.Elapsed
			}
		case "skip":
			if e.Test != "" {
				skipped = append(skipped, k)
			} else if _, seen := pkgs[e.Package]; !seen {
				order = append(order, e.Package)
				pkgs[e.Package] = "no tests"
			}
		case "pass":
			if e.Test == "" {
				if _, seen := pkgs[e.Package]; !seen {
					order = append(order, e.Package)
				}
				pkgs[e.Package] = "ok"
				pkgTime[e.Package] = e.Elapsed
			}
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "testreport:", err)
		os.Exit(1)
	}

	bad := false
	for _, k := range failed {
		bad = true
		fmt.Printf("\n=== FAIL %s %s\n", k.pkg, k.test)
		if b := output[k]; b != nil {
			fmt.Print(b.String())
		}
	}
	// A package can fail without a failing test (build error, panic in
	// TestMain, timeout): show its own output.
	for _, p := range order {
		if pkgs[p] == "FAIL" {
			bad = true
			if b := output[key{p, ""}]; b != nil {
				fmt.Printf("\n=== FAIL %s (package output)\n%s", p, b.String())
			}
		}
	}
	if len(skipped) > 0 {
		sort.Slice(skipped, func(i, j int) bool {
			return skipped[i].pkg+skipped[i].test < skipped[j].pkg+skipped[j].test
		})
		fmt.Println()
		for _, k := range skipped {
			reason := ""
			if b := output[k]; b != nil {
				for _, l := range strings.Split(b.String(), "\n") {
					if i := strings.Index(l, ".go:"); i >= 0 && !strings.Contains(l, "--- SKIP") {
						reason = strings.TrimSpace(l)
					}
				}
			}
			fmt.Printf("SKIP %s %s: %s\n", k.pkg, k.test, reason)
		}
		if ci {
			bad = true
			fmt.Printf("testreport: %d skipped tests; skipping is a failure under CI=true\n", len(skipped))
		}
	}
	fmt.Println()
	for _, p := range order {
		fmt.Printf("%-8s %-60s %6.1fs\n", pkgs[p], p, pkgTime[p])
	}
	if bad {
		fmt.Println("\nFAIL")
		os.Exit(1)
	}
	fmt.Println("\nPASS")
}
