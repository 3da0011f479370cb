package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestReportRatios(t *testing.T) {
	b, err := os.ReadFile("testdata/audit.json")
	if err != nil {
		t.Fatal(err)
	}
	rs, err := parse(b)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	report(&out, "", [][]result{rs})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 4 {
		t.Fatalf("report printed %d lines, want 4 (header, rule, two rows):\n%s", len(lines), out.String())
	}
	tests := []struct {
		name string
		row  int
		want []string // cells, in order
	}{
		{name: "debseal row has no ratios", row: 2, want: []string{"debseal audit (host, warm)", "2800.0ms", "5000ms", "1500ms", "", "", ""}},
		// wall 2.8/7.0, CPU (3.5+1.5)/(8+2), sys 1.5/2
		{name: "peer row", row: 3, want: []string{"dpkg --verify (host, warm)", "7000.0ms", "10000ms", "2000ms", "0.40x (dpkg --verify (host, warm))", "0.50x", "0.75x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cells []string
			for _, c := range strings.Split(strings.Trim(lines[tt.row], "|"), "|") {
				cells = append(cells, strings.TrimSpace(c))
			}
			// command, median, stddev, CPU, sys, wall ratio, CPU ratio, sys ratio
			got := []string{cells[0], cells[1], cells[3], cells[4], cells[5], cells[6], cells[7]}
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("row %d = %q, want %q", tt.row, got, tt.want)
			}
		})
	}
}

func TestRatioWithoutPeerTime(t *testing.T) {
	if got := ratio(1, 0); got != "" {
		t.Errorf("ratio(1, 0) = %q, want empty", got)
	}
}
