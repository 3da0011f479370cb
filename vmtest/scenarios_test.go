package vmtest

import (
	"os"
	"strings"
	"testing"
	"time"
)

// TestVM runs the scenarios in order: the first seals a guest, the others
// start from copies of its disk. One guest at a time: two guests under
// emulation on this 2-core machine took longer together than one after
// the other (every boot and apt run twice as slow, some three times).
func TestVM(t *testing.T) {
	e := newEnv(t)
	// DEBSEAL_VM_BENCH: make bench's fs-verity measurements
	// (scripts/bench/verity.sh), on a guest of their own.
	if os.Getenv("DEBSEAL_VM_BENCH") != "" {
		timed(t, "verity-bench", e.verityBench)
		return
	}
	// DEBSEAL_VM_SEALED: a sealed disk a run of scenario 1 left (its
	// overlay, kept), to work on the later scenarios alone.
	sealed := os.Getenv("DEBSEAL_VM_SEALED")
	if sealed == "" && !timed(t, "install", func(t *testing.T) { sealed = e.install(t) }) {
		return
	}
	timed(t, "modes", func(t *testing.T) { e.modes(t, sealed) })
	timed(t, "powercut", func(t *testing.T) { e.powerCut(t, sealed, cutPoints) })
	timed(t, "powercut-control", func(t *testing.T) { e.powerCutControl(t, sealed) })
	timed(t, "audit-timer", func(t *testing.T) { e.auditTimer(t, sealed) })
	timed(t, "guard", func(t *testing.T) { e.guard(t, sealed) })
	timed(t, "verity", func(t *testing.T) { e.verity(t, sealed) })
	timed(t, "purge", func(t *testing.T) { e.purge(t, sealed) })
}

// aptGet is how the scenarios run apt: no prompts, keep conffiles.
const aptGet = "DEBIAN_FRONTEND=noninteractive apt-get -q -y -o Dpkg::Options::=--force-confold "

// install is scenario 1: an admin installs debseal with apt, with
// SEAL_ON_INSTALL=yes, and reboots. It returns the sealed disk, powered
// off cleanly, for the other scenarios to start from.
func (e *env) install(t *testing.T) string {
	disk := e.overlay(t, "sealed", e.img+"/root.img")
	g := e.boot(t, disk)
	// The admin's setting, in place before the package comes: dpkg keeps
	// it (--force-confold) as it keeps any conffile an admin wrote.
	g.run(`set -e
mountpoint -q /srv/repo
mkdir -p /etc/default
printf 'SEAL_ON_INSTALL=yes\nMODE=dpkg-hooks\nTEXTFILE_DIR=\n' >/etc/default/debseal
apt-get -q update
cp /srv/repo/debseal_*.deb /root/
cd /root
` + aptGet + `install ./debseal_*.deb`)
	g.reboot()

	// systemd is done booting, the recover unit ran and succeeded,
	// nothing failed.
	state := strings.TrimSpace(g.try(stepTimeout, "systemctl is-system-running --wait").Out)
	if state != "running" {
		t.Errorf("systemctl is-system-running = %q, want running; failed units:\n%s", state, g.run("systemctl --failed --no-legend"))
	}
	if failed := strings.TrimSpace(g.run("systemctl --failed --no-legend")); failed != "" {
		t.Errorf("systemctl --failed:\n%s", failed)
	}
	if ran, res, st := g.unitRan("debseal-recover.service"); !ran || res != "success" || st != "0" {
		t.Errorf("debseal-recover.service: ran %v, result %q, status %q, want ran, success, 0", ran, res, st)
	}
	if j := g.run("journalctl -b -o cat -u debseal-recover.service"); !strings.Contains(j, "Finished") && !strings.Contains(j, "Deactivated successfully") {
		t.Errorf("journal of debseal-recover.service this boot:\n%s", j)
	}
	if en := strings.TrimSpace(g.run("systemctl is-enabled debseal-audit.timer debseal-recover.service")); en != "enabled\nenabled" {
		t.Errorf("systemctl is-enabled = %q", en)
	}
	s := g.seal()
	s.allLocked(t, "after install and reboot")
	t.Logf("%d package files, %d locked", s.files, s.locked)
	// dpkg --verify: every file as its package has it; the only line is
	// the admin's /etc/default/debseal.
	start := time.Now()
	v := g.try(stepTimeout, "dpkg --verify")
	var bad []string
	for _, l := range strings.Split(strings.TrimSpace(v.Out), "\n") {
		if l != "" && !strings.HasSuffix(l, " c /etc/default/debseal") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("dpkg --verify (status %d):\n%s", v.Status, strings.Join(bad, "\n"))
	}
	t.Logf("dpkg --verify took %v", time.Since(start).Round(time.Second))
	g.shutdown()
	return disk
}
