package mscript

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/deb"
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

// TestScanArchiveScripts scans the maintainer scripts of every .deb in
// the chroot cache (scripts/chroot.sh: the debootstrap set and the
// Debian 12 → 13 upgrade set), read with pkg/deb: none panics, every
// path is clean and absolute, and escalation stays the exception.
func TestScanArchiveScripts(t *testing.T) {
	debs, _ := filepath.Glob(filepath.Join(testutil.CacheDir(), "archives", "*.deb"))
	more, _ := filepath.Glob(filepath.Join(testutil.CacheDir(), "*", "archives", "*.deb"))
	debs = append(debs, more...)
	if len(debs) == 0 {
		testutil.Skip(t, "no .deb in %s (scripts/chroot.sh builds the cache)", testutil.CacheDir())
	}
	scripts := 0
	var escalating []string
	for _, p := range debs {
		info, err := deb.ReadInfoFile(p)
		if err != nil {
			t.Errorf("%s: %v", p, err)
			continue
		}
		for name, body := range info.Scripts {
			// config too: the postinst runs it through debconf's
			// confmodule, inside dpkg's run.
			scripts++
			id := filepath.Base(p) + "." + name
			r := Scan(id, body)
			checkResult(t, id, r)
			if r.Escalate != "" {
				escalating = append(escalating, r.Escalate)
			}
			if testing.Verbose() && len(r.Prefixes)+len(r.Globs)+len(r.Packages) > 0 {
				t.Logf("%s: prefixes %q globs %q packages %q", id, r.Prefixes, r.Globs, r.Packages)
			}
		}
	}
	sort.Strings(escalating)
	t.Logf("%d archives, %d scripts, %d escalate:\n%s", len(debs), scripts, len(escalating), strings.Join(escalating, "\n"))
	if len(escalating)*20 > scripts {
		t.Errorf("%d of %d scripts escalate, want fewer than 5%%", len(escalating), scripts)
	}
}
