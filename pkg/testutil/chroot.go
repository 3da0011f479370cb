package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Chroot is a fresh copy of the cached debootstrap tree (scripts/chroot.sh)
// in which real apt and dpkg run.
type Chroot struct {
	Dir string
}

// CacheDir is where downloads survive between runs ($DEBSEAL_CACHE).
func CacheDir() string {
	if d := os.Getenv("DEBSEAL_CACHE"); d != "" {
		return d
	}
	return "/var/tmp/debseal-cache"
}

// NewChroot extracts a fresh chroot, mounts /proc and a private devpts in
// it (apt runs dpkg on a pty), and copies the host's resolv.conf. When the
// test ends, flags are cleared and mounts removed before the tree is
// deleted.
func NewChroot(t testing.TB) *Chroot {
	t.Helper()
	RequireRoot(t)
	RequireCommand(t, "debootstrap", "chroot", "mount", "umount")
	dir := filepath.Join(TempRoot(t), "chroot")
	script := filepath.Join(RepoRoot(t), "scripts", "chroot.sh")
	if out, err := exec.Command(script, "extract", dir).CombinedOutput(); err != nil {
		t.Fatalf("chroot.sh extract: %v\n%s", err, out)
	}
	return prepareChroot(t, dir)
}

// prepareChroot mounts /proc and a private devpts in an extracted tree,
// copies resolv.conf and installs a policy-rc.d that starts no service.
func prepareChroot(t testing.TB, dir string) *Chroot {
	t.Helper()
	c := &Chroot{Dir: dir}
	if b, err := os.ReadFile("/etc/resolv.conf"); err == nil {
		os.Remove(c.Path("/etc/resolv.conf"))
		if err := os.WriteFile(c.Path("/etc/resolv.conf"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c.mount(t, "proc", "/proc", "-t", "proc", "proc")
	c.mount(t, "devpts", "/dev/pts", "-t", "devpts", "-o", "newinstance,ptmxmode=0666", "devpts")
	os.Remove(c.Path("/dev/ptmx"))
	if err := os.Symlink("pts/ptmx", c.Path("/dev/ptmx")); err != nil {
		t.Fatal(err)
	}
	// Never start services in the chroot.
	if err := os.WriteFile(c.Path("/usr/sbin/policy-rc.d"), []byte("#!/bin/sh\nexit 101\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *Chroot) mount(t testing.TB, name, at string, args ...string) {
	t.Helper()
	target := c.Path(at)
	if err := os.MkdirAll(target, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", append(args, target)...).CombinedOutput(); err != nil {
		t.Fatalf("mount %s: %v\n%s", name, err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", target).CombinedOutput(); err != nil {
			// Lazily, so the tree can still be removed, and say so.
			exec.Command("umount", "-l", target).Run()
			t.Errorf("umount %s: %v\n%s", target, err, out)
		}
	})
}

// Path is the host path of a path in the chroot.
func (c *Chroot) Path(p string) string { return filepath.Join(c.Dir, p) }

// Env is the environment commands get in the chroot: a clean one, as a
// login would have, plus extra.
func (c *Chroot) Env(extra ...string) []string {
	return append([]string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8", "DEBIAN_FRONTEND=noninteractive",
		"HOME=/root", "TERM=dumb"}, extra...)
}

// Run runs a command in the chroot and returns its combined output and
// exit code.
func (c *Chroot) Run(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command("chroot", append([]string{c.Dir}, args...)...)
	cmd.Env = c.Env(env...)
	return Output(t, cmd)
}

// MustRun runs a command and fails the test unless it exits 0.
func (c *Chroot) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	out, code := c.Run(t, nil, args...)
	if code != 0 {
		t.Fatalf("chroot %s: exit %d\n%s", strings.Join(args, " "), code, out)
	}
	return out
}

// Apt runs apt-get in the chroot with the shared archive cache: cached
// .debs are linked in before and new ones saved after, so each package is
// downloaded once per machine.
func (c *Chroot) Apt(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	return c.WithCache(t, env, append([]string{"apt-get", "-q", "-y", "-o", "APT::Keep-Downloaded-Packages=true"}, args...)...)
}

// WithCache runs a command that uses apt with the shared archive cache.
func (c *Chroot) WithCache(t testing.TB, env []string, args ...string) (string, int) {
	t.Helper()
	cache := filepath.Join(CacheDir(), "archives")
	archives := c.Path("/var/cache/apt/archives")
	os.MkdirAll(cache, 0o755)
	linkDebs(cache, archives)
	out, code := c.Run(t, env, args...)
	linkDebs(archives, cache)
	return out, code
}

// linkDebs hard-links (or copies) the .deb files of src into dst.
func linkDebs(src, dst string) {
	ents, err := os.ReadDir(src)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasSuffix(e.Name(), ".deb") {
			continue
		}
		to := filepath.Join(dst, e.Name())
		if _, err := os.Stat(to); err == nil {
			continue
		}
		from := filepath.Join(src, e.Name())
		if os.Link(from, to) != nil {
			if b, err := os.ReadFile(from); err == nil {
				os.WriteFile(to+".tmp", b, 0o644)
				os.Rename(to+".tmp", to)
			}
		}
	}
}

// DebianMirrors returns the Debian archive and security mirrors named in
// this machine's apt sources (one-line .list or deb822 .sources files),
// like scripts/chroot.sh does for debootstrap; deb.debian.org when none.
func DebianMirrors() (main, security string) {
	main, security = "http://deb.debian.org/debian", "http://deb.debian.org/debian-security"
	files, _ := filepath.Glob("/etc/apt/sources.list.d/*")
	files = append([]string{"/etc/apt/sources.list"}, files...)
	foundMain, foundSec := false, false
	for _, f := range files {
		if !strings.HasSuffix(f, ".list") && !strings.HasSuffix(f, ".sources") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, field := range strings.Fields(string(b)) {
			if !strings.HasPrefix(field, "http://") && !strings.HasPrefix(field, "https://") {
				continue
			}
			u := strings.TrimSuffix(field, "/")
			switch {
			case strings.HasSuffix(u, "/debian-security") && !foundSec:
				security, foundSec = u, true
			case strings.HasSuffix(u, "/debian") && !foundMain:
				main, foundMain = u, true
			}
		}
	}
	return main, security
}
