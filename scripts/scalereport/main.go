// Command scalereport prints scripts/bench/scale.sh's measurements as a
// scaling table and checks issue 12's goals against them.
//
//	scalereport MEASUREMENTS.tsv
//
// Each line of the input is "command TAB packages TAB wall-seconds TAB
// cpu-seconds TAB peak-RSS-KB". The table has one row per command and one
// column per size (wall time, CPU time, peak RSS), with the ratio of each
// size's wall and CPU time to the previous size's. The goals:
//   - linear: at each size, within 1.2x of (size / previous size) times
//     the previous size's cost (CPU time; wall is shown);
//   - status: wall no more than dpkg -l's on the same system;
//   - audit: peak RSS at most 100 MB at 50,000 packages;
//   - hook run: on the biggest system at most 2x the 100-package one.
package main

import (
	"bufio"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
)

type point struct{ wall, cpu, rssKB float64 }

const (
	linearSlack = 1.2
	statusMax   = 1.0
	auditRSSMB  = 100
	hookMax     = 2.0
	hookSmall   = 100 // the small system of the hook run
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: scalereport MEASUREMENTS.tsv")
		os.Exit(64)
	}
	if err := report(os.Args[1]); err != nil {
		fmt.Fprintln(os.Stderr, "scalereport:", err)
		os.Exit(1)
	}
}

func report(file string) error {
	f, err := os.Open(file)
	if err != nil {
		return err
	}
	defer f.Close()
	data := map[string]map[int]point{}
	var order []string
	sizeSet := map[int]bool{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fl := strings.Split(sc.Text(), "\t")
		if len(fl) != 5 {
			return fmt.Errorf("%s:%d: want 5 tab-separated fields", file, n)
		}
		size, err := strconv.Atoi(fl[1])
		if err != nil {
			return fmt.Errorf("%s:%d: %v", file, n, err)
		}
		var v [3]float64
		for i := range v {
			if v[i], err = strconv.ParseFloat(fl[2+i], 64); err != nil {
				return fmt.Errorf("%s:%d: %v", file, n, err)
			}
		}
		if data[fl[0]] == nil {
			data[fl[0]] = map[int]point{}
			order = append(order, fl[0])
		}
		data[fl[0]][size] = point{v[0], v[1], v[2]}
		sizeSet[size] = true
	}
	if err := sc.Err(); err != nil {
		return err
	}
	// The hook run is also measured on a 100-package system: it has its
	// own lines below the table.
	var sizes []int
	for s := range sizeSet {
		if s != hookSmall {
			sizes = append(sizes, s)
		}
	}
	sort.Ints(sizes)
	if len(sizes) == 0 {
		return fmt.Errorf("%s: no measurements", file)
	}

	var head []string
	for _, s := range sizes {
		head = append(head, thousands(s)+" packages")
	}
	fmt.Printf("| command | %s |\n", strings.Join(head, " | "))
	fmt.Printf("|---|%s\n", strings.Repeat("---|", len(sizes)))
	for _, c := range order {
		if strings.HasPrefix(c, "hook") {
			continue
		}
		var cells []string
		prev := 0
		for _, s := range sizes {
			p, ok := data[c][s]
			if !ok {
				cells = append(cells, "")
				continue
			}
			cell := fmt.Sprintf("%s (cpu %s)", dur(p.wall), dur(p.cpu))
			if q, ok := data[c][prev]; ok && q.wall > 0 && q.cpu > 0 {
				cell += fmt.Sprintf(" ×%.1f/×%.1f", p.wall/q.wall, p.cpu/q.cpu)
			}
			if p.rssKB > 0 {
				cell += fmt.Sprintf(", %.0f MB", p.rssKB/1024)
			}
			cells = append(cells, cell)
			prev = s
		}
		fmt.Printf("| %s | %s |\n", c, strings.Join(cells, " | "))
	}
	fmt.Println()
	fmt.Println("(wall (cpu user+sys), ×wall/×cpu ratio to the previous size, peak RSS)")
	for _, c := range order {
		if !strings.HasPrefix(c, "hook") {
			continue
		}
		var parts []string
		for _, s := range append([]int{hookSmall}, sizes...) {
			if p, ok := data[c][s]; ok {
				parts = append(parts, fmt.Sprintf("%s packages %s (cpu %s)", thousands(s), dur(p.wall), dur(p.cpu)))
			}
		}
		fmt.Printf("%s, debseal's own time in its six hook runs: %s\n", c, strings.Join(parts, "; "))
	}
	fmt.Println()

	missed := 0
	check := func(ok bool, format string, args ...any) {
		mark := "met   "
		if !ok {
			mark = "MISSED"
			missed++
		}
		fmt.Printf("goal %s %s\n", mark, fmt.Sprintf(format, args...))
	}
	for _, c := range order {
		if strings.HasPrefix(c, "hook") || strings.HasPrefix(c, "dpkg") {
			continue
		}
		for i := 1; i < len(sizes); i++ {
			s, prev := sizes[i], sizes[i-1]
			p, ok := data[c][s]
			q, okq := data[c][prev]
			if !ok || !okq || q.cpu <= 0 {
				continue
			}
			limit := linearSlack * float64(s) / float64(prev)
			r := p.cpu / q.cpu
			check(r <= limit, "linear: %s at %s packages: cpu ×%.1f that at %s (at most ×%.1f)", c, thousands(s), r, thousands(prev), limit)
		}
	}
	for _, c := range []string{"status", "status (sealed)"} {
		for _, s := range sizes {
			p, ok := data[c][s]
			d, okd := data["dpkg -l"][s]
			if !ok || !okd || d.wall <= 0 {
				continue
			}
			r := p.wall / d.wall
			check(r <= statusMax, "%s at %s packages: %.2fx dpkg -l's wall (%s against %s; at most %.1fx)", c, thousands(s), r, dur(p.wall), dur(d.wall), statusMax)
		}
	}
	for _, c := range order {
		if !strings.HasPrefix(c, "audit") {
			continue
		}
		if p, ok := data[c][50000]; ok {
			check(p.rssKB/1024 <= auditRSSMB, "%s at 50,000 packages: peak RSS %.0f MB (at most %d MB)", c, p.rssKB/1024, auditRSSMB)
		}
	}
	for _, c := range order {
		if !strings.HasPrefix(c, "hook") {
			continue
		}
		small, ok := data[c][hookSmall]
		big := sizes[len(sizes)-1]
		large, okl := data[c][big]
		if ok && okl && small.wall > 0 && small.cpu > 0 {
			check(large.wall/small.wall <= hookMax, "%s: wall at %s packages %.1fx that at 100 (%s against %s; cpu %.1fx; at most %.0fx)",
				c, thousands(big), large.wall/small.wall, dur(large.wall), dur(small.wall), large.cpu/small.cpu, hookMax)
		}
	}
	if missed > 0 {
		fmt.Printf("%d goals missed\n", missed)
	}
	return nil
}

func thousands(n int) string {
	s := strconv.Itoa(n)
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	return s
}

func dur(sec float64) string {
	switch {
	case sec >= 10:
		return fmt.Sprintf("%.0f s", sec)
	case sec >= 1:
		return fmt.Sprintf("%.1f s", sec)
	}
	return fmt.Sprintf("%.0f ms", sec*1000)
}
