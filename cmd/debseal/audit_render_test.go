package main

import (
	"bufio"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/audit"
	"github.com/debseal/debseal/pkg/testutil"
)

func render(t *testing.T, format string, fs []audit.Finding, sum *audit.Summary) string {
	t.Helper()
	var b bytes.Buffer
	w := bufio.NewWriter(&b)
	r, err := newRenderer(format, w, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fs {
		r.finding(f)
	}
	r.done(sum)
	w.Flush()
	return b.String()
}

func TestRenderers(t *testing.T) {
	enotdir := &os.PathError{Op: "statx", Path: "/r/x/y", Err: syscall.ENOTDIR}
	fs := []audit.Finding{
		{Kind: audit.Missing, Package: "p", Path: "/x/y", Real: "/x/y", Err: enotdir, Dpkg: "missing  "},
		{Kind: audit.Mode, Package: "p", Path: "/etc/c", Real: "/etc/c", Conffile: true, Expected: "0644", Actual: "0666", Source: "manifest", Dpkg: "??5??????"},
		{Kind: audit.Conffile, Package: "p", Path: "/etc/c", Real: "/etc/c", Conffile: true, Dpkg: "??5??????"},
		{Kind: audit.SHA256, Package: "p", Path: "/usr/bin/a", Real: "/usr/bin/a.distrib", Expected: "aa", Actual: "bb", Source: "manifest"},
		{Kind: audit.Excluded, Package: "p", Path: "/usr/share/doc/p/x", Real: "/usr/share/doc/p/x", Dpkg: "missing  "},
		{Kind: audit.Lifted, Package: "p", Path: "/usr/bin/t", Real: "/usr/bin/t", Source: "policy",
			Expected: "immutable (seen locked by relock at 2026-03-01T10:00:00Z)", Actual: "mutable at 2026-03-02T09:30:01Z",
			SeenLocked: time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC), SeenBy: "relock", FoundUnlocked: time.Date(2026, 3, 2, 9, 30, 1, 0, time.UTC)},
	}
	sum := &audit.Summary{Packages: 1, Files: 9}
	for _, f := range fs {
		sum.ByKind[f.Kind]++
	}
	tests := []struct {
		format   string
		want     []string
		wantNone []string
	}{
		{"dpkg", []string{
			"missing     /x/y (Not a directory)\n",
			"??5?????? c /etc/c\n",
			"missing     /usr/share/doc/p/x\n",
		}, []string{"a.distrib", "/usr/bin/t"}},
		{"text", []string{
			"sha256 /usr/bin/a.distrib [p] (listed as /usr/bin/a): expected aa, found bb (manifest)",
			"lifted /usr/bin/t [p]: expected immutable (seen locked by relock at 2026-03-01T10:00:00Z), found mutable at 2026-03-02T09:30:01Z (policy)\n",
			"5 findings (1 missing, 1 excluded, 1 sha256, 1 conffile, 1 mode, 1 lifted)",
		}, []string{"/usr/share/doc/p/x ["}},
		{"json", []string{
			`{"type":"finding","kind":"sha256","package":"p","path":"/usr/bin/a","real":"/usr/bin/a.distrib","expected":"aa","actual":"bb","source":"manifest"}`,
			`"kind":"excluded","info":true`,
			`{"type":"summary","packages":1,"files":9,`,
			`"findings":5,`,
			`{"type":"finding","kind":"lifted","package":"p","path":"/usr/bin/t","expected":"immutable (seen locked by relock at 2026-03-01T10:00:00Z)","actual":"mutable at 2026-03-02T09:30:01Z","source":"policy","seen_locked":"2026-03-01T10:00:00Z","seen_by":"relock","found_unlocked":"2026-03-02T09:30:01Z"}`,
			`"lifted":1`,
		}, nil},
		{"prometheus", []string{
			"# TYPE debseal_audit_findings gauge\n",
			`debseal_audit_findings{kind="not-locked"} 0` + "\n",
			`debseal_audit_findings{kind="sha256"} 1` + "\n",
			`debseal_audit_findings{kind="lifted"} 1` + "\n",
			"debseal_audit_findings_total 5\n",
			"debseal_audit_files_checked 9\n",
		}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.format, func(t *testing.T) {
			got := render(t, tt.format, fs, sum)
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("%s output lacks %q:\n%s", tt.format, w, got)
				}
			}
			for _, w := range tt.wantNone {
				if strings.Contains(got, w) {
					t.Errorf("%s output has %q:\n%s", tt.format, w, got)
				}
			}
		})
	}
	if _, err := newRenderer("xml", nil, false); exitCode(err) != exitUsage {
		t.Errorf("--format xml: %v, want a usage error", err)
	}
	if got := render(t, "dpkg", fs[1:3], sum); strings.Count(got, "\n") != 1 {
		t.Errorf("two findings on one path gave %q, want one dpkg line", got)
	}
}

// TestKindsDocumented: every finding kind is in docs/audit.md's table and
// in the man page, so a new kind cannot ship undocumented.
func TestKindsDocumented(t *testing.T) {
	root := testutil.RepoRoot(t)
	for _, doc := range []string{"docs/audit.md", "docs/debseal.8.md"} {
		b, err := os.ReadFile(filepath.Join(root, doc))
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range audit.Kinds() {
			want := "`" + k.String() + "`"
			if doc == "docs/debseal.8.md" {
				want = "**" + k.String() + "**"
			}
			if !strings.Contains(string(b), want) {
				t.Errorf("%s does not document the kind %s", doc, want)
			}
		}
	}
}
