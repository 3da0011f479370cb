package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// foreignRoot makes a sandbox root at PARENT/root and a decoy file at
// PARENT/decoy: outside the root, on the same filesystem, so a package
// path inside can be a hard link to it.
func foreignRoot(t *testing.T) (*testutil.Sandbox, string) {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "dpkg", "dpkg-deb")
	parent := testutil.TempRoot(t) // clears flags under it, decoy included
	decoy := filepath.Join(parent, "decoy")
	if err := os.WriteFile(decoy, []byte("a host file outside the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return testutil.InitSandbox(t, filepath.Join(parent, "root")), decoy
}

// checkForeignReported checks that lock left the decoy alone and that
// status and audit (every format) report the package path as foreign-link.
func checkForeignReported(t *testing.T, s *testutil.Sandbox, decoy, rel string) {
	t.Helper()
	if testutil.IsImmutable(t, decoy) {
		t.Fatalf("the decoy outside the root was made immutable through %s", rel)
	}
	out, errs, code := debseal(t, "--root", s.Root, "status", "--json")
	if code != 0 {
		t.Fatalf("status: exit %d\n%s%s", code, out, errs)
	}
	var rep statusReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("status --json: %v\n%s", err, out)
	}
	if len(rep.ForeignLinks) != 1 || rep.ForeignLinks[0].Path != rel {
		t.Errorf("status foreign_links = %+v, want %s", rep.ForeignLinks, rel)
	}
	if rep.Total.Skipped["foreign-link"] != 1 {
		t.Errorf("status skipped = %v, want foreign-link 1", rep.Total.Skipped)
	}
	out, _, _ = debseal(t, "--root", s.Root, "status")
	if !strings.Contains(out, "foreign-link "+rel) {
		t.Errorf("status text lacks the foreign link:\n%s", out)
	}
	for _, tc := range []struct{ format, want string }{
		{"text", "foreign-link " + rel},
		{"json", `"kind":"foreign-link"`},
		{"prometheus", `debseal_audit_findings{kind="foreign-link"} 1`},
	} {
		out, errs, code := debseal(t, "--root", s.Root, "audit", "--no-cache", "--format", tc.format)
		if code != exitFindings || !strings.Contains(out, tc.want) {
			t.Errorf("audit --format %s: exit %d, want %d and %q in:\n%s%s", tc.format, code, exitFindings, tc.want, out, errs)
		}
		if strings.Contains(out, "not-locked "+rel) {
			t.Errorf("audit --format %s reports the foreign-linked file as not-locked too", tc.format)
		}
	}
	if testutil.IsImmutable(t, decoy) {
		t.Fatal("the decoy was made immutable")
	}
}

// A package file someone hard-linked (ln) to a file outside the root is
// never locked, by lock --all or lock PKG; the package's own hard links
// (dstest-tool and its -hardlink, both listed) still are.
func TestForeignHardLinkIsNeverLocked(t *testing.T) {
	for _, args := range [][]string{{"--all"}, {"dstest-base"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			s, decoy := foreignRoot(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			const rel = "/usr/share/doc/dstest-base/copyright"
			if err := os.Remove(s.Path(rel)); err != nil {
				t.Fatal(err)
			}
			if err := os.Link(decoy, s.Path(rel)); err != nil {
				t.Fatal(err)
			}
			out, errs, code := debseal(t, append([]string{"--root", s.Root, "lock"}, args...)...)
			if code != 0 && code != exitFindings { // the md5sums differ: the file is the decoy now
				t.Fatalf("lock: exit %d\n%s%s", code, out, errs)
			}
			if !strings.Contains(out, "1 foreign-link") {
				t.Errorf("lock output lacks the foreign-link skip:\n%s", out)
			}
			for _, p := range []string{"/usr/bin/dstest-tool", "/usr/bin/dstest-tool-hardlink"} {
				if !testutil.IsImmutable(t, s.Path(p)) {
					t.Errorf("%s (a package's own hard link) was not locked", p)
				}
			}
			checkForeignReported(t, s, decoy, rel)
		})
	}
}

// dpkg 1.21 extracts a hard link entry "../decoy" under --root as a link
// to ROOT/../decoy: a real .deb can plant the link, and lock must still
// leave the outside inode alone.
func TestForeignHardLinkFromDeb(t *testing.T) {
	s, decoy := foreignRoot(t)
	deb := filepath.Join(t.TempDir(), "fltest_1.0_all.deb")
	writeHardLinkDeb(t, deb, "./usr/share/fltest/escape", "../decoy")
	s.MustDpkg(t, "-i", deb)
	var before, after os.FileInfo
	var err error
	if before, err = os.Stat(decoy); err != nil {
		t.Fatal(err)
	}
	if after, err = os.Stat(s.Path("/usr/share/fltest/escape")); err != nil || !os.SameFile(before, after) {
		testutil.Skip(t, "this dpkg did not extract the hard link to the outside file (%v): nothing to guard against here", err)
	}
	out, errs, code := debseal(t, "--root", s.Root, "lock", "--all")
	if code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
	checkForeignReported(t, s, decoy, "/usr/share/fltest/escape")
}

// writeHardLinkDeb writes a minimal .deb whose data.tar holds one hard
// link entry name → linkname, the way a hostile archive would.
func writeHardLinkDeb(t *testing.T, path, name, linkname string) {
	t.Helper()
	tgz := func(entries []*tar.Header, data map[string]string) []byte {
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		tw := tar.NewWriter(zw)
		for _, h := range entries {
			h.ModTime = time.Unix(0, 0)
			h.Size = int64(len(data[h.Name]))
			if err := tw.WriteHeader(h); err != nil {
				t.Fatal(err)
			}
			if _, err := tw.Write([]byte(data[h.Name])); err != nil {
				t.Fatal(err)
			}
		}
		if err := tw.Close(); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatal(err)
		}
		return buf.Bytes()
	}
	dir := func(n string) *tar.Header { return &tar.Header{Name: n, Typeflag: tar.TypeDir, Mode: 0o755} }
	control := tgz([]*tar.Header{dir("./"), {Name: "./control", Typeflag: tar.TypeReg, Mode: 0o644}}, map[string]string{
		"./control": "Package: fltest\nVersion: 1.0\nArchitecture: all\nMaintainer: debseal tests <tests@example.org>\nDescription: a hard link entry out of the root\n"})
	var hdrs []*tar.Header
	hdrs = append(hdrs, dir("./"))
	parts := strings.Split(strings.TrimPrefix(filepath.Dir(name), "./"), "/")
	for i := range parts {
		hdrs = append(hdrs, dir("./"+strings.Join(parts[:i+1], "/")+"/"))
	}
	hdrs = append(hdrs, &tar.Header{Name: name, Typeflag: tar.TypeLink, Linkname: linkname, Mode: 0o644})
	data := tgz(hdrs, nil)
	var ar bytes.Buffer
	ar.WriteString("!<arch>\n")
	for _, m := range []struct {
		name string
		body []byte
	}{{"debian-binary", []byte("2.0\n")}, {"control.tar.gz", control}, {"data.tar.gz", data}} {
		fmt.Fprintf(&ar, "%-16s%-12d%-6d%-6d%-8o%-10d`\n", m.name, 0, 0, 0, 0o100644, len(m.body))
		ar.Write(m.body)
		if len(m.body)%2 == 1 {
			ar.WriteByte('\n')
		}
	}
	if err := os.WriteFile(path, ar.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// A hard link between two packages' paths is not foreign, even when only
// one of the packages is locked, listed or audited: the other package's
// path is counted too.
func TestCrossPackageHardLinkIsNotForeign(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-override_1.0_all"))
	const a, b = "/usr/share/doc/dstest-base/copyright", "/usr/share/doc/dstest-override/copyright"
	if err := os.Remove(s.Path(b)); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(s.Path(a), s.Path(b)); err != nil {
		t.Fatal(err)
	}
	out, errs, code := debseal(t, "--root", s.Root, "lock", "dstest-base")
	if code != 0 || strings.Contains(out, "foreign-link") {
		t.Fatalf("lock dstest-base: exit %d\n%s%s", code, out, errs)
	}
	if !testutil.IsImmutable(t, s.Path(a)) {
		t.Errorf("%s (also %s) was not locked", a, b)
	}
	out, _, _ = debseal(t, "--root", s.Root, "status", "dstest-base")
	if strings.Contains(out, "foreign-link") {
		t.Errorf("status dstest-base reports a foreign link:\n%s", out)
	}
	out, _, _ = debseal(t, "--root", s.Root, "audit", "--no-cache", "dstest-base")
	if strings.Contains(out, "foreign-link") {
		t.Errorf("audit dstest-base reports a foreign link:\n%s", out)
	}
}
