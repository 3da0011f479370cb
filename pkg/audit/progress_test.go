package audit

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/debseal/debseal/pkg/testutil"
)

// meter records what an operation reported.
type meter struct {
	mu         sync.Mutex
	starts     int
	unit       progress.Unit
	total      int
	done       int
	addsBefore int // Adds before the first Start
	ended      int
}

func (m *meter) Start(_ string, unit progress.Unit, total int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.starts++
	m.unit, m.total = unit, total
}

func (m *meter) Add(n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.starts == 0 {
		m.addsBefore += n
	}
	m.done += n
}

func (m *meter) Done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.ended++
}

// The audit states its total before it starts, and then reports exactly
// that many units done: for every package, and for a subset.
func TestRunProgressTotal(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
	db, err := dpkgdb.Open(s.Admindir)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fsattr.OpenRoot(s.Root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	var withFiles []*dpkgdb.Package
	for _, p := range db.Packages {
		if p.HasFiles() {
			withFiles = append(withFiles, p)
		}
	}
	if len(withFiles) < 2 {
		t.Fatalf("sandbox has %d packages with files; want at least 2", len(withFiles))
	}
	for _, c := range []struct {
		name string
		pkgs []*dpkgdb.Package
	}{
		{"all", nil},
		{"subset", withFiles[:1]},
	} {
		t.Run(c.name, func(t *testing.T) {
			m := &meter{}
			a := &Auditor{DB: db, Policy: policy.Default(), FS: fsys, Opts: Options{Progress: m}}
			sum, err := a.Run(context.Background(), c.pkgs, func(Finding) {})
			if err != nil {
				t.Fatal(err)
			}
			if m.starts != 1 || m.ended != 1 || m.addsBefore != 0 {
				t.Errorf("Start called %d times, Done %d, %d added before Start; want 1, 1, 0", m.starts, m.ended, m.addsBefore)
			}
			if m.unit != progress.Packages {
				t.Errorf("unit = %q, want %q", m.unit, progress.Packages)
			}
			if m.total != m.done || m.total != sum.Packages || m.total == 0 {
				t.Errorf("total %d, done %d, packages audited %d; want equal and above 0", m.total, m.done, sum.Packages)
			}
		})
	}
}

// pkg/audit reports findings and must not depend on the engine that
// changes flags (pkg/seal), nor on anything that pulls it in.
func TestNoEngineDependency(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "github.com/debseal/debseal/pkg/seal" {
			t.Errorf("pkg/audit depends on %s", dep)
		}
	}
}
