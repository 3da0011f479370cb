// Package vmtest proves debseal on a booted Debian guest (issue 9): the
// package installed with apt on the real root, debseal-recover.service at
// boot after power cuts, the audit timer, every integration mode, removal.
// Each scenario checks the guest with tools that are not debseal (lsattr,
// dpkg-query, dpkg --audit, systemctl, journalctl). The guest is
// scripts/vm-image.sh's cached image; pkg/vm boots it and drives it.
//
// make test runs it with everything else (as root; under CI=true its skip
// is a failure); make vmtest runs it alone.
package vmtest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
	"github.com/debseal/debseal/pkg/vm"
)

const (
	bootTimeout = 6 * time.Minute
	stepTimeout = 5 * time.Minute
	debVersion  = "0.0~vmtest1"
)

// env is what every scenario shares: the cached image and the repository
// disk the guest installs from.
type env struct {
	img     string // scripts/vm-image.sh's directory
	repo    string // raw ext4 image: the local apt repository
	work    string
	accel   string
	upgrade []string // package names of the upgrade set
}

func newEnv(t *testing.T) *env {
	t.Helper()
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4", "dpkg-scanpackages")
	e := &env{work: t.TempDir(), accel: os.Getenv("DEBSEAL_VM_ACCEL")}
	start := time.Now()
	// DEBSEAL_VM_IMAGE: an image directory to use as it is (debugging
	// an older build); otherwise scripts/vm-image.sh's, built if absent.
	e.img = os.Getenv("DEBSEAL_VM_IMAGE")
	if e.img == "" {
		cmd := exec.Command(filepath.Join(testutil.RepoRoot(t), "scripts", "vm-image.sh"), "dir")
		var stderr strings.Builder
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("vm-image.sh dir: %v\n%s", err, stderr.String())
		}
		e.img = strings.TrimSpace(string(out))
	}
	t.Logf("image %s ready in %v", e.img, time.Since(start).Round(time.Second))

	// The repository: debseal's .deb, the upgrade set and its old
	// versions, one flat directory with a Packages index.
	repo := filepath.Join(e.work, "repo")
	if err := os.MkdirAll(repo, 0o755); err != nil {
		t.Fatal(err)
	}
	mkdeb := exec.Command(filepath.Join(testutil.RepoRoot(t), "scripts", "mkdeb.sh"), testutil.Binary(t), debVersion, repo)
	if out, err := mkdeb.CombinedOutput(); err != nil {
		t.Fatalf("mkdeb.sh: %v\n%s", err, out)
	}
	for _, sub := range []string{"upgrade", "downgrade"} {
		debs, _ := filepath.Glob(filepath.Join(e.img, sub, "*.deb"))
		if len(debs) == 0 {
			t.Fatalf("no .debs in %s/%s", e.img, sub)
		}
		if err := os.MkdirAll(filepath.Join(repo, sub), 0o755); err != nil {
			t.Fatal(err)
		}
		for _, d := range debs {
			if err := os.Link(d, filepath.Join(repo, sub, filepath.Base(d))); err != nil {
				copyFile(t, d, filepath.Join(repo, sub, filepath.Base(d)))
			}
			if sub == "upgrade" {
				e.upgrade = append(e.upgrade, strings.SplitN(filepath.Base(d), "_", 2)[0])
			}
		}
	}
	scan := exec.Command("dpkg-scanpackages", "--multiversion", ".")
	scan.Dir = repo
	pk, err := scan.Output()
	if err != nil {
		t.Fatalf("dpkg-scanpackages: %v", err)
	}
	if err := os.WriteFile(filepath.Join(repo, "Packages"), pk, 0o644); err != nil {
		t.Fatal(err)
	}
	e.repo = filepath.Join(e.work, "repo.img")
	if err := os.WriteFile(e.repo, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(e.repo, 256<<20); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mkfs.ext4", "-q", "-d", repo, e.repo).CombinedOutput(); err != nil {
		t.Fatalf("mkfs.ext4 repo: %v\n%s", err, out)
	}
	return e
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// overlay makes a copy-on-write disk over base (the raw image or another
// overlay), so scenarios never change what they start from.
func (e *env) overlay(t *testing.T, name, base string) string {
	t.Helper()
	format := "qcow2"
	if strings.HasSuffix(base, ".img") {
		format = "raw"
	}
	disk := filepath.Join(e.work, name+".qcow2")
	if out, err := exec.Command("qemu-img", "create", "-q", "-f", "qcow2", "-b", base, "-F", format, disk).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create %s: %v\n%s", name, err, out)
	}
	return disk
}

// guest is one disk and the qemu currently running it.
type guest struct {
	t     *testing.T
	e     *env
	disk  string
	m     *vm.Machine
	boots int
}

func (e *env) boot(t *testing.T, disk string) *guest {
	g := &guest{t: t, e: e, disk: disk}
	g.boot()
	return g
}

// boot starts qemu on the disk and waits for the agent; a guest that does
// not come up fails the test with its console log.
func (g *guest) boot() {
	g.t.Helper()
	g.boots++
	dir := filepath.Join(g.e.work, fmt.Sprintf("%s-boot%d", filepath.Base(g.disk), g.boots))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		g.t.Fatal(err)
	}
	start := time.Now()
	m, err := vm.Boot(vm.Config{
		Kernel: filepath.Join(g.e.img, "vmlinuz"),
		Initrd: filepath.Join(g.e.img, "initrd.img"),
		Disks: []vm.Disk{
			{Path: g.disk, Format: "qcow2"},
			{Path: g.e.repo, Format: "raw", ReadOnly: true},
		},
		Dir:      dir,
		MemoryMB: 1024,
		Accel:    g.e.accel,
		Append:   "quiet systemd.show_status=error",
	})
	if err != nil {
		g.t.Fatalf("boot %d: %v", g.boots, err)
	}
	g.m = m
	g.t.Cleanup(func() { m.Kill() })
	if err := m.WaitReady(bootTimeout); err != nil {
		m.Kill()
		g.t.Fatalf("boot %d: %v\nconsole:\n%s", g.boots, err, tail(m.Console()))
	}
	// The repository disk: fstab mounts it with nofail, and a loaded
	// machine can take longer than the device timeout to show it.
	if r, err := m.Run(time.Minute, "mountpoint -q /srv/repo || mount /srv/repo"); err != nil || r.Status != 0 {
		m.Kill()
		g.t.Fatalf("boot %d: mount /srv/repo: %v %s\nconsole:\n%s", g.boots, err, r.Out, tail(m.Console()))
	}
	g.t.Logf("boot %d of %s: agent up in %v", g.boots, filepath.Base(g.disk), time.Since(start).Round(time.Second))
}

// try runs script in the guest and returns its result; only a hung guest
// fails the test.
func (g *guest) try(timeout time.Duration, script string) vm.Result {
	g.t.Helper()
	r, err := g.m.Run(timeout, script)
	if err != nil {
		g.t.Fatalf("guest: %v\nscript:\n%s\nconsole:\n%s", err, script, tail(g.m.Console()))
	}
	return r
}

// run runs script and fails the test unless it exits 0.
func (g *guest) run(script string) string {
	g.t.Helper()
	r := g.try(stepTimeout, script)
	if r.Status != 0 {
		g.t.Fatalf("guest: exit status %d:\n%s\nscript:\n%s", r.Status, r.Out, script)
	}
	return r.Out
}

// shutdown powers the guest off cleanly (or reboots it: qemu runs with
// -no-reboot, so both end qemu).
func (g *guest) shutdown() {
	g.t.Helper()
	if _, err := g.m.Start("systemctl poweroff"); err != nil {
		g.t.Fatal(err)
	}
	if err := g.m.WaitExit(2 * time.Minute); err != nil {
		g.m.Kill()
		g.t.Fatalf("poweroff: %v\nconsole:\n%s", err, tail(g.m.Console()))
	}
}

// reboot is an admin's reboot: a clean shutdown, then a boot.
func (g *guest) reboot() {
	g.t.Helper()
	if _, err := g.m.Start("systemctl reboot"); err != nil {
		g.t.Fatal(err)
	}
	if err := g.m.WaitExit(2 * time.Minute); err != nil {
		g.m.Kill()
		g.t.Fatalf("reboot: %v\nconsole:\n%s", err, tail(g.m.Console()))
	}
	g.boot()
}

// cut is a power cut: qemu killed, nothing synced.
func (g *guest) cut() {
	g.t.Helper()
	if err := g.m.Kill(); err != nil {
		g.t.Fatal(err)
	}
}

func tail(s string) string {
	lines := strings.Split(s, "\n")
	if len(lines) > 80 {
		lines = lines[len(lines)-80:]
	}
	return strings.Join(lines, "\n")
}

// timed runs a scenario and reports its wall time.
func timed(t *testing.T, name string, f func(t *testing.T)) bool {
	start := time.Now()
	ran := false
	ok := t.Run(name, func(t *testing.T) {
		ran = true
		f(t)
	})
	if ran {
		t.Logf("scenario %s: %v wall", name, time.Since(start).Round(time.Second))
	}
	return ok
}
