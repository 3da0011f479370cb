package mscript

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// hostScripts are this machine's maintainer scripts (read-only).
func hostScripts(t testing.TB) []string {
	var files []string
	for _, kind := range []string{"preinst", "postinst", "prerm", "postrm"} {
		m, _ := filepath.Glob("/var/lib/dpkg/info/*." + kind)
		files = append(files, m...)
	}
	sort.Strings(files)
	return files
}

// TestScanHostScripts runs Scan over every maintainer script on this
// machine: none panics, every path is clean and absolute, and
// escalation stays the exception; the reasons are logged.
func TestScanHostScripts(t *testing.T) {
	files := hostScripts(t)
	if len(files) == 0 {
		testutil.Skip(t, "no maintainer scripts in /var/lib/dpkg/info")
	}
	var escalating []string
	var total time.Duration
	maxWorkSeen, maxWorkName := 0, ""
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		r := Scan(filepath.Base(f), b)
		total += time.Since(start)
		if sc := scanWork(filepath.Base(f), b); sc > maxWorkSeen {
			maxWorkSeen, maxWorkName = sc, filepath.Base(f)
		}
		checkResult(t, filepath.Base(f), r)
		if r.Escalate != "" {
			escalating = append(escalating, r.Escalate)
		}
		if testing.Verbose() && len(r.Prefixes) > 0 {
			t.Logf("%s: prefixes %q", filepath.Base(f), r.Prefixes)
		}
	}
	t.Logf("%d scripts scanned in %v (most work: %d bytes, %s), %d escalate:\n%s", len(files), total, maxWorkSeen, maxWorkName, len(escalating), strings.Join(escalating, "\n"))
	if len(escalating)*20 > len(files) {
		t.Errorf("%d of %d scripts escalate, want fewer than 5%%", len(escalating), len(files))
	}
}

// scanWork is the work budget a scan used.
func scanWork(name string, b []byte) int {
	s := newScanner(name)
	if k := interpreter(b); k == "sh" || k == "bash" {
		if f, err := parse(b, k == "bash"); err == nil {
			s.walkStmts(f.Stmts, &ctx{src: b})
			s.solve()
			s.analyse()
		}
	}
	return s.work
}
