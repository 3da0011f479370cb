package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/progress"
)

// The progress line names the unit its caller counts.
func TestTTYProgressUnit(t *testing.T) {
	for _, c := range []struct {
		name  string
		phase string
		unit  progress.Unit
		total int
		add   int
		want  string
	}{
		{"files", "locking", progress.Files, 1200, 32, "locking: 32/1200 files"},
		{"packages", "recording manifests", progress.Packages, 700, 1, "recording manifests: 1/700 packages"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var b bytes.Buffer
			p := &ttyProgress{w: &b}
			p.Start(c.phase, c.unit, c.total)
			p.Add(c.add)
			if got, want := b.String(), "\r\033[K"+c.want; got != want {
				t.Errorf("after Add: %q, want %q", got, want)
			}
			b.Reset()
			p.Done()
			if got, want := b.String(), "\r\033[K"; got != want {
				t.Errorf("after Done: %q, want %q (the line erased)", got, want)
			}
		})
	}
}

// A phase that follows another at once shows at its first count, with
// its own unit, rather than waiting out the previous line's rate limit.
func TestTTYProgressNextPhase(t *testing.T) {
	var b bytes.Buffer
	p := &ttyProgress{w: &b}
	p.Start("verifying", progress.Files, 10)
	p.Add(10)
	p.Done()
	b.Reset()
	p.Start("recording manifests", progress.Packages, 3)
	p.Add(1)
	if got := b.String(); !strings.HasSuffix(got, "recording manifests: 1/3 packages") {
		t.Errorf("second phase drew %q, want it to end in %q", got, "recording manifests: 1/3 packages")
	}
}
