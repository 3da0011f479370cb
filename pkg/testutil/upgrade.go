package testutil

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The Debian 12 -> 13 upgrade: a cached bookworm chroot with a realistic
// package set and the trixie .debs and lists its upgrade needs, both built
// once per machine by scripts/upgrade-chroot.sh (see there).

// Upgrade is the cached trixie side of the upgrade.
type Upgrade struct {
	Dir     string   // the cache directory
	Debs    string   // every .deb the upgrade installs
	Lists   string   // the trixie apt lists the upgrade ran with
	Sources string   // the sources.list those lists belong to
	Flags   []string // the apt-get flags the upgrade is made with
}

func upgradeScript(t testing.TB, args ...string) string {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "debootstrap", "chroot", "mount", "umount", "tar")
	cmd := exec.Command(filepath.Join(RepoRoot(t), "scripts", "upgrade-chroot.sh"), args...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("scripts/upgrade-chroot.sh %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
	}
	if s := strings.TrimSpace(stderr.String()); s != "" {
		t.Logf("scripts/upgrade-chroot.sh %s:\n%s", strings.Join(args, " "), s)
	}
	return strings.TrimSpace(string(out))
}

// TrixieUpgrade returns the cached trixie upgrade set, building it (and
// the bookworm tarball) on first use: that takes several minutes and the
// Debian mirror; afterwards nothing is downloaded.
func TrixieUpgrade(t testing.TB) *Upgrade {
	t.Helper()
	dir := upgradeScript(t, "debs")
	u := &Upgrade{Dir: dir, Debs: filepath.Join(dir, "archives"), Lists: filepath.Join(dir, "lists"),
		Sources: filepath.Join(dir, "sources.list"), Flags: strings.Fields(upgradeScript(t, "flags"))}
	debs, _ := filepath.Glob(filepath.Join(u.Debs, "*.deb"))
	if len(debs) == 0 {
		t.Fatalf("%s holds no .deb: remove %s and run scripts/upgrade-chroot.sh debs", u.Debs, dir)
	}
	return u
}

// NewBookwormChroot is NewChroot with the upgrade's bookworm tree: about
// 300 packages (systemd, openssh-server, sudo, python3, perl, man-db,
// locales, procps, dbus, zlib1g:i386 …) and no apt lists.
func NewBookwormChroot(t testing.TB) *Chroot {
	t.Helper()
	tarball := upgradeScript(t, "tarball")
	dir := filepath.Join(TempRoot(t), "chroot")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-C", dir, "-xf", tarball).CombinedOutput(); err != nil {
		t.Fatalf("extract %s: %v\n%s", tarball, err, out)
	}
	return prepareChroot(t, dir)
}

// UseTrixie points the chroot's apt at trixie: the cached sources.list,
// lists and .debs (hard links, so the timed runs read the same page cache).
// Nothing then needs the network when apt runs with --no-download.
func (c *Chroot) UseTrixie(t testing.TB, u *Upgrade) {
	t.Helper()
	b, err := os.ReadFile(u.Sources)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("/etc/apt/sources.list"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := linkAll(u.Lists, c.Path("/var/lib/apt/lists")); err != nil {
		t.Fatal(err)
	}
	if err := linkAll(u.Debs, c.Path("/var/cache/apt/archives")); err != nil {
		t.Fatal(err)
	}
}

// linkAll hard-links (or, across filesystems, copies) every regular file
// of src into dst.
func linkAll(src, dst string) error {
	ents, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		if !e.Type().IsRegular() {
			continue
		}
		from, to := filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())
		os.Remove(to)
		if os.Link(from, to) == nil {
			continue
		}
		b, err := os.ReadFile(from)
		if err != nil {
			return err
		}
		if err := os.WriteFile(to, b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// Measured is one timed command: its output, exit code, wall time, and
// the CPU time of its whole process tree (the wait4 rusage of the
// chroot'd command, which includes every descendant it reaped: apt, dpkg,
// the maintainer scripts, debseal's hooks).
type Measured struct {
	Out       string
	Code      int
	Wall      time.Duration
	User, Sys time.Duration
}

// CPU is user plus system time.
func (m Measured) CPU() time.Duration { return m.User + m.Sys }

// Measure runs a command in the chroot like Run, timing it.
func (c *Chroot) Measure(t testing.TB, env []string, args ...string) Measured {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{c.Dir}, args...)...)
	cmd.Env = c.Env(env...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	err := cmd.Run()
	m := Measured{Wall: time.Since(start), Out: out.String()}
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		m.Code = ee.ExitCode()
	default:
		t.Fatalf("chroot %s: %v", strings.Join(args, " "), err)
	}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.User = time.Duration(ru.Utime.Nano())
		m.Sys = time.Duration(ru.Stime.Nano())
	}
	return m
}

// Unowned returns the files (anything but directories) under the given
// top directories of the chroot that no installed package lists, at their
// own path, their merged-/usr path or a diversion's target. A top
// directory that is a symlink (merged /usr: /bin) is skipped.
func (c *Chroot) Unowned(t testing.TB, tops ...string) []string {
	t.Helper()
	tool := ChrootTool(c.Dir)
	var pkgs []string
	for _, l := range strings.Split(tool(t, "dpkg-query", "-W", "-f=${binary:Package} ${db:Status-Status}\n"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] != "not-installed" && f[1] != "config-files" {
			pkgs = append(pkgs, f[0])
		}
	}
	owned := map[string]bool{}
	add := func(p string) {
		owned[p] = true
		owned[canonicalDir(c.Dir, p)] = true
	}
	if len(pkgs) > 0 {
		for _, l := range strings.Split(tool(t, "dpkg-query", append([]string{"-L"}, pkgs...)...), "\n") {
			if strings.HasPrefix(l, "/") {
				add(l)
			}
		}
	}
	for _, l := range strings.Split(tool(t, "dpkg-divert", "--list"), "\n") {
		if i := strings.Index(l, " to "); i > 0 {
			to := l[i+4:]
			if j := strings.Index(to, " by "); j > 0 {
				to = to[:j]
			}
			add(to)
		}
	}
	var out []string
	for _, top := range tops {
		fi, err := os.Lstat(c.Path(top))
		if err != nil || !fi.IsDir() {
			continue
		}
		err = filepath.WalkDir(c.Path(top), func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, c.Dir), "/")
			if !owned[rel] {
				out = append(out, rel)
			}
			return nil
		})
		if err != nil {
			t.Fatalf("walking %s: %v", c.Path(top), err)
		}
	}
	sort.Strings(out)
	return out
}

// Canonical is p with the symlinks among its parent directories resolved
// inside the chroot (merged /usr: /bin/rm is /usr/bin/rm).
func (c *Chroot) Canonical(p string) string { return canonicalDir(c.Dir, p) }

// Diff returns what is only in a and what is only in b (both sorted).
func Diff(a, b []string) (onlyA, onlyB []string) {
	inA, inB := map[string]bool{}, map[string]bool{}
	for _, s := range a {
		inA[s] = true
	}
	for _, s := range b {
		inB[s] = true
	}
	for _, s := range a {
		if !inB[s] {
			onlyA = append(onlyA, s)
		}
	}
	for _, s := range b {
		if !inA[s] {
			onlyB = append(onlyB, s)
		}
	}
	return onlyA, onlyB
}

// Head is the first n items of list, with a count of the rest, for
// readable failure messages.
func Head(list []string, n int) string {
	if len(list) <= n {
		return strings.Join(list, "\n  ")
	}
	return fmt.Sprintf("%s\n  … and %d more", strings.Join(list[:n], "\n  "), len(list)-n)
}
