package testutil

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// DpkgTool runs one of dpkg's programs (dpkg-query, dpkg-divert) against
// the system under test and returns its standard output: with
// --admindir for a sandbox, or inside a chroot.
type DpkgTool func(t testing.TB, name string, args ...string) string

// SandboxTool runs dpkg's programs on the host against a sandbox admindir.
func SandboxTool(admindir string) DpkgTool {
	return func(t testing.TB, name string, args ...string) string {
		t.Helper()
		out, err := exec.Command(name, append([]string{"--admindir=" + admindir}, args...)...).Output()
		if err != nil {
			t.Fatalf("%s %v: %v", name, args, err)
		}
		return string(out)
	}
}

// ChrootTool runs dpkg's programs inside a chroot.
func ChrootTool(dir string) DpkgTool {
	return func(t testing.TB, name string, args ...string) string {
		t.Helper()
		cmd := exec.Command("chroot", append([]string{dir, name}, args...)...)
		cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("chroot %s %v: %v", name, args, err)
		}
		return string(out)
	}
}

// defaultExcluded mirrors debseal's default policy, written out here so the
// expectation does not come from the code under test.
var defaultExcluded = []string{"/var", "/run", "/tmp", "/home", "/srv", "/dev", "/proc", "/sys"}

// ExpectedLocked says, using only dpkg's own tools and lstat, which files
// under root debseal must have locked: every regular file of every
// configured package, at its diverted location, except conffiles and the
// default exclusions. It also returns the conffiles (which must not be).
func ExpectedLocked(t testing.TB, root string, tool DpkgTool) (locked, conffiles []string) {
	t.Helper()
	var configured []string
	for _, line := range strings.Split(tool(t, "dpkg-query", "-W", "-f=${binary:Package} ${db:Status-Status}\n"), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && (f[1] == "installed" || f[1] == "triggers-pending" || f[1] == "triggers-awaited") {
			configured = append(configured, f[0])
		}
	}
	confSet := map[string]bool{}
	for _, line := range strings.Split(tool(t, "dpkg-query", "-W", "-f=${Conffiles}\n"), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && strings.HasPrefix(f[0], "/") {
			// "path hash [obsolete]"; paths with spaces are not used in the tests' conffiles
			confSet[f[0]] = true
		}
	}
	// "diversion of X to Y by P" / "local diversion of X to Y"
	type div struct{ to, by string }
	divs := map[string]div{}
	sc := bufio.NewScanner(strings.NewReader(tool(t, "dpkg-divert", "--list")))
	for sc.Scan() {
		l := sc.Text()
		by := ""
		if i := strings.LastIndex(l, " by "); i > 0 {
			by, l = l[i+4:], l[:i]
		}
		l = strings.TrimPrefix(strings.TrimPrefix(l, "local "), "diversion of ")
		if from, to, ok := strings.Cut(l, " to "); ok {
			divs[from] = div{to: to, by: by}
		}
	}
	set := map[string]bool{}
	for _, pkg := range configured {
		name := strings.SplitN(pkg, ":", 2)[0]
		for _, p := range strings.Split(tool(t, "dpkg-query", "-L", pkg), "\n") {
			if !strings.HasPrefix(p, "/") || p == "/." {
				continue
			}
			real := p
			if d, ok := divs[p]; ok && d.by != name {
				real = d.to
			}
			if confSet[p] || confSet[real] {
				continue
			}
			excluded := false
			for _, e := range defaultExcluded {
				excluded = excluded || real == e || strings.HasPrefix(real, e+"/")
			}
			if excluded {
				continue
			}
			canon := canonicalDir(root, real)
			fi, err := os.Lstat(filepath.Join(root, canon))
			if err != nil || !fi.Mode().IsRegular() {
				continue
			}
			set[canon] = true
		}
	}
	for p := range set {
		locked = append(locked, p)
	}
	for p := range confSet {
		conffiles = append(conffiles, p)
	}
	sort.Strings(locked)
	sort.Strings(conffiles)
	return locked, conffiles
}

// canonicalDir resolves the symlinks among p's parent directories inside
// root (merged /usr: /bin/bash is /usr/bin/bash), keeping the last
// component. Absolute link targets are taken relative to root.
func canonicalDir(root, p string) string {
	dir, base := filepath.Dir(p), filepath.Base(p)
	parts := strings.Split(strings.Trim(dir, "/"), "/")
	cur := "/"
	for i := 0; i < len(parts); i++ {
		if parts[i] == "" {
			continue
		}
		next := filepath.Join(cur, parts[i])
		target, err := os.Readlink(filepath.Join(root, next))
		if err != nil {
			cur = next
			continue
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(cur, target)
		}
		// Resolve the rest of the path from the link target.
		rest := append(strings.Split(strings.Trim(target, "/"), "/"), parts[i+1:]...)
		parts, i, cur = rest, -1, "/"
		if len(parts) > 64 {
			break // a loop
		}
	}
	return filepath.Join(cur, base)
}
