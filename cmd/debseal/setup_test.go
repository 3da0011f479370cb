package main

import (
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/aptconf"
	"github.com/debseal/debseal/pkg/testutil"
)

// treeState is every file under root (but debseal's own state and the
// logs) with its type, mode and content hash, to compare trees exactly.
func treeState(t *testing.T, root string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if rel == "/var/lib/debseal" || rel == "/var/log" {
			return fs.SkipDir
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		v := fi.Mode().String()
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			v += " -> " + l
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			v += fmt.Sprintf(" %x", sha256.Sum256(b))
		}
		out[rel] = v
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// treeDiff lists the paths whose state differs between a and b.
func treeDiff(a, b map[string]string) []string {
	var out []string
	for p, v := range a {
		if b[p] != v {
			out = append(out, p)
		}
	}
	for p := range b {
		if _, ok := a[p]; !ok {
			out = append(out, p)
		}
	}
	sort.Strings(out)
	return out
}

// TestSetupTeardownModes: setup writes exactly its mode's files, a second
// setup changes nothing, switching modes removes the previous mode's
// files, and teardown gives back the tree as it was (for divert: the real
// dpkg at /usr/bin/dpkg and no diversion).
func TestSetupTeardownModes(t *testing.T) {
	s := testutil.NewSandbox(t)
	testutil.RequireCommand(t, "dpkg-divert")
	// What setup needs in the root: debseal itself, and a dpkg to divert.
	for dst, src := range map[string]string{"/usr/sbin/debseal": testutil.Binary(t), "/usr/bin/dpkg": "/usr/bin/dpkg"} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(s.Path(dst)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(dst), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	dirs := []string{"/etc/dpkg/dpkg.cfg.d", "/etc/apt/apt.conf.d", "/usr/lib"} // as on any system
	for _, d := range dirs {
		if err := os.MkdirAll(s.Path(d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	orig := treeState(t, s.Root)
	want := map[string][]string{
		"dpkg-hooks": {"/etc/dpkg/dpkg.cfg.d/debseal"},
		"apt-hooks":  {"/etc/apt/apt.conf.d/99debseal-hooks"},
		"wrapper":    {"/etc/apt/apt.conf.d/99debseal-wrapper", "/usr/lib/debseal", aptconf.WrapperPath},
		"divert":     {"/usr/bin/dpkg", "/usr/bin/dpkg.distrib", "/var/lib/dpkg/diversions", "/var/lib/dpkg/diversions-old"},
	}
	for _, mode := range aptconf.Modes {
		out, errOut, code := debseal(t, "--root", s.Root, "setup", "--mode", mode)
		if code != 0 {
			t.Fatalf("setup --mode %s: exit %d\n%s%s", mode, code, out, errOut)
		}
		got := treeDiff(orig, treeState(t, s.Root))
		// dpkg-divert may or may not leave diversions-old behind.
		exp := map[string]bool{}
		for _, p := range want[mode] {
			exp[p] = true
		}
		var unexpected, missing []string
		for _, p := range got {
			if !exp[p] {
				unexpected = append(unexpected, p)
			}
			delete(exp, p)
		}
		for p := range exp {
			if p != "/var/lib/dpkg/diversions-old" {
				missing = append(missing, p)
			}
		}
		if len(unexpected)+len(missing) > 0 {
			t.Errorf("setup --mode %s changed %v; unexpected %v, missing %v", mode, got, unexpected, missing)
		}
		before := treeState(t, s.Root)
		if out, _, code := debseal(t, "--root", s.Root, "setup", "--mode", mode); code != 0 || !strings.Contains(out, "already installed") {
			t.Errorf("second setup --mode %s: exit %d: %s", mode, code, out)
		}
		if d := treeDiff(before, treeState(t, s.Root)); len(d) > 0 {
			t.Errorf("second setup --mode %s changed %v", mode, d)
		}
		if mode == "divert" {
			if b, _ := os.ReadFile(s.Path("/usr/bin/dpkg.distrib")); orig["/usr/bin/dpkg"] != treeState(t, s.Root)["/usr/bin/dpkg.distrib"] {
				t.Errorf("divert: /usr/bin/dpkg.distrib (%d bytes) is not the real dpkg", len(b))
			}
		}
	}
	// The last mode was divert; teardown puts everything back.
	if out, errOut, code := debseal(t, "--root", s.Root, "teardown"); code != 0 {
		t.Fatalf("teardown: exit %d\n%s%s", code, out, errOut)
	}
	after := treeState(t, s.Root)
	for _, p := range treeDiff(orig, after) {
		if !strings.HasPrefix(p, "/var/lib/dpkg/diversions") {
			t.Errorf("after teardown %s differs: was %q, is %q", p, orig[p], after[p])
		}
	}
	if b, _ := os.ReadFile(s.Path("/var/lib/dpkg/diversions")); len(strings.TrimSpace(string(b))) > 0 {
		t.Errorf("a diversion is left after teardown:\n%s", b)
	}
	// Switching from divert to another mode also puts dpkg back.
	debseal(t, "--root", s.Root, "setup", "--mode", "divert")
	debseal(t, "--root", s.Root, "setup", "--mode", "apt-hooks")
	if st := treeState(t, s.Root); st["/usr/bin/dpkg"] != orig["/usr/bin/dpkg"] || st["/usr/bin/dpkg.distrib"] != "" {
		t.Error("switching from divert to apt-hooks did not put the real dpkg back")
	}
	debseal(t, "--root", s.Root, "teardown")
}
