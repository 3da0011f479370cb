package seal

import (
	"context"
	"crypto/md5"
	"fmt"
	"sync"
	"testing"

	"github.com/debseal/debseal/pkg/progress"
)

// meter records the totals an operation stated and the units it added.
type meter struct {
	mu          sync.Mutex
	unit        progress.Unit
	total, done int
}

func (m *meter) Start(_ string, unit progress.Unit, total int) {
	m.mu.Lock()
	m.unit, m.total, m.done = unit, total, 0
	m.mu.Unlock()
}

func (m *meter) Add(n int) {
	m.mu.Lock()
	m.done += n
	m.mu.Unlock()
}

func (m *meter) Done() {}

// Verify and Apply state as their total the files they then report done:
// Verify counts only the files it reads (not those without an md5sums
// entry), Apply counts those already as wanted too.
func TestProgressTotals(t *testing.T) {
	sum := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/usr/bin/good", "/usr/bin/nosum", "/usr/lib/a/x"},
			md5sums: sum("good") + "  usr/bin/good\n" + sum("x") + "  usr/lib/a/x\n"},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/good", "good")
		f.file("/usr/bin/nosum", "n")
		f.file("/usr/lib/a/x", "x")
	}, nil)
	p := w.plan(t)
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		run   func(progress.Meter)
		total int
	}{
		{"verify", func(m progress.Meter) { w.pl.Verify(ctx, p.Targets, m) }, 2},
		{"lock", func(m progress.Meter) { Apply(ctx, w.fs, p.Targets, true, 1, m) }, 3},
		{"lock again", func(m progress.Meter) { Apply(ctx, w.fs, p.Targets, true, 1, m) }, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &meter{}
			c.run(m)
			if m.unit != progress.Files || m.total != c.total || m.done != c.total {
				t.Errorf("unit %q, total %d, done %d; want %q, %d, %d", m.unit, m.total, m.done, progress.Files, c.total, c.total)
			}
		})
	}
}
