package vmtest

import (
	"strconv"
	"strings"
	"testing"
)

// The sealed file the attacks go for, and a root service that clears its
// flag: what a compromised daemon would do before writing.
const (
	target     = "/usr/bin/yes"
	attackUnit = "debseal-attack.service"
)

// guard is issue 10's capability guard on the booted guest: a root
// service can lift a sealed file's flag until `debseal setup --guard`
// (the negative control), cannot afterwards nor after a reboot, services
// started before the guard are reported by the audit until they restart,
// the console's getty and the allowed units keep the capability, an
// allowed unit's apt upgrade works, a guarded unit's apt run is stopped
// before dpkg changes anything, and --guard=false gives the capability
// back.
func (e *env) guard(t *testing.T, sealed string) {
	g := e.boot(t, e.overlay(t, "guard", sealed))
	g.run("apt-get -q update")
	if v := strings.TrimSpace(g.run(`systemctl --version | sed -n '1s/^systemd \([0-9]*\).*/\1/p'`)); mustAtoi(t, v) < 246 {
		t.Fatalf("systemd %s: top-level service.d drop-ins need 246", v)
	}
	g.writeUnit(attackUnit, "/usr/bin/chattr -i "+target)

	// The control: without the guard, the service lifts the flag.
	if r := g.try(stepTimeout, "systemctl start "+attackUnit); r.Status != 0 || g.immutable(target) {
		t.Fatalf("without the guard: %s exit %d, %s immutable %v: the control shows nothing\n%s", attackUnit, r.Status, target, g.immutable(target), r.Out)
	}
	g.run("chattr +i " + target)

	// The guard; the test's agent stands for the console root.
	out := g.run("echo 'guard-allow = debseal-vmagent.service' >>/etc/debseal/debseal.conf && debseal setup --guard")
	if !strings.Contains(out, "capability guard on") {
		t.Errorf("setup --guard said:\n%s", out)
	}
	// Services started before it still hold the capability: reported.
	if r := g.try(stepTimeout, "debseal audit --format json"); r.Status == 0 || !strings.Contains(r.Out, `"kind":"capable-service"`) {
		t.Errorf("audit right after setup --guard: exit %d, want capable-service findings for the services started before it:\n%s", r.Status, grepKind(r.Out, "capable-service"))
	} else {
		t.Logf("services started before the guard:\n%s", grepKind(r.Out, "capable-service"))
	}
	g.attackFails("after setup --guard")

	g.reboot()
	g.attackFails("after a reboot")
	// Every service started under the guard: none holds the capability
	// but the allowed ones.
	if r := g.try(stepTimeout, "debseal audit --format json"); r.Status != 0 || strings.Contains(r.Out, `"kind":"capable-service"`) {
		t.Errorf("audit after the reboot: exit %d; capable-service:\n%s", r.Status, grepKind(r.Out, "capable-service"))
	}
	// That audit also saw the booted system's own mounts (/proc, /sys,
	// /dev, /run, the repository disk) and reported none as shadowed. A
	// bind mount over a sealed binary is (issue 10, part 3).
	if r := g.try(stepTimeout, "cp /usr/bin/true /tmp/yes && mount --bind /tmp/yes "+target+" && debseal audit --format json coreutils; s=$?; umount "+target+"; exit $s"); r.Status != 1 ||
		!strings.Contains(grepKind(r.Out, "shadowed"), `"mount_point":"`+target+`"`) {
		t.Errorf("audit with a bind mount over %s: exit %d, shadowed:\n%s", target, r.Status, grepKind(r.Out, "shadowed"))
	}
	if s := g.run("debseal status | tail -5"); !strings.Contains(s, "capability guard: on;") || !strings.Contains(s, "debseal-vmagent.service") {
		t.Errorf("status does not report the guard:\n%s", s)
	}
	// The console: the serial getty (and so the root shell it logs in)
	// keeps the capability; the allowed agent can clear the flag.
	if bnd := g.run(`grep CapBnd /proc/$(systemctl show -P MainPID serial-getty@ttyS0.service)/status`); !capHolds(t, bnd) {
		t.Errorf("serial-getty@ttyS0 lost CAP_LINUX_IMMUTABLE: %s", bnd)
	}
	g.run("chattr -i " + target + " && chattr +i " + target)

	// An allowed unit runs package management: unattended-upgrades'
	// unit, its command replaced by the cut set's upgrade.
	up, down := e.cutTransactions(t)
	image := e.downgradeSpecs(t, e.cutSet()...)
	if !g.hasVersions(image) {
		t.Fatalf("the sealed guest does not have the image's versions of %v", e.cutSet())
	}
	g.run("mkdir -p /etc/systemd/system/apt-daily-upgrade.service.d && printf '[Service]\\nExecStart=\\nExecStart=/bin/sh -c %s\\n' " +
		shq(shq(up)) + " >/etc/systemd/system/apt-daily-upgrade.service.d/50-test.conf && systemctl daemon-reload")
	if r := g.try(stepTimeout, "systemctl start apt-daily-upgrade.service"); r.Status != 0 || g.hasVersions(image) {
		t.Errorf("upgrade from apt-daily-upgrade.service (allowed): exit %d, still the image's versions %v:\n%s\n%s", r.Status, g.hasVersions(image), r.Out,
			g.run("journalctl -b -o cat -u apt-daily-upgrade.service | tail -40"))
	}
	g.seal().allLocked(t, "after the allowed unit's upgrade")

	// A guarded unit runs apt: stopped before dpkg changes anything,
	// with the unit to allow named.
	g.writeUnit("debseal-apt.service", "/bin/sh -c "+shq(down))
	if r := g.try(stepTimeout, "systemctl start debseal-apt.service"); r.Status == 0 {
		t.Errorf("apt from a guarded unit succeeded")
	}
	j := g.run("journalctl -b -o cat -u debseal-apt.service")
	if !strings.Contains(j, "lacks CAP_LINUX_IMMUTABLE") || !strings.Contains(j, `guard-allow = debseal-apt.service`) {
		t.Errorf("the guarded unit's journal does not say why:\n%s", j)
	}
	if a := strings.TrimSpace(g.run("dpkg --audit")); a != "" || g.hasVersions(image) {
		t.Errorf("after the refused apt run: dpkg --audit %q, downgraded %v", a, g.hasVersions(image))
	}
	g.seal().allLocked(t, "after the refused apt run")

	// Off again: services started afterwards have the capability.
	g.run("debseal setup --guard=false")
	if left := strings.TrimSpace(g.run("ls /etc/systemd/system/*/90-debseal-guard.conf 2>/dev/null || true")); left != "" {
		t.Errorf("drop-ins left after --guard=false:\n%s", left)
	}
	if r := g.try(stepTimeout, "systemctl start "+attackUnit); r.Status != 0 || g.immutable(target) {
		t.Errorf("after --guard=false: %s exit %d, %s immutable %v:\n%s", attackUnit, r.Status, target, g.immutable(target), r.Out)
	}
	g.run("chattr +i " + target)
	g.cut()
}

// writeUnit writes a oneshot service running cmd and reloads systemd.
func (g *guest) writeUnit(name, cmd string) {
	g.t.Helper()
	g.run("printf '[Service]\\nType=oneshot\\nExecStart=%s\\n' " + shq(cmd) + " >/etc/systemd/system/" + name + " && systemctl daemon-reload")
}

// attackFails checks that the attack unit cannot lift the flag.
func (g *guest) attackFails(when string) {
	g.t.Helper()
	r := g.try(stepTimeout, "systemctl start "+attackUnit)
	j := g.run("journalctl -b -o cat -u " + attackUnit + " | tail -5")
	if r.Status == 0 || !g.immutable(target) || !strings.Contains(j, "Operation not permitted") {
		g.t.Errorf("%s: %s exit %d, %s immutable %v, journal:\n%s", when, attackUnit, r.Status, target, g.immutable(target), j)
	}
}

// capHolds reports whether a "CapBnd:\tHEX" line has CAP_LINUX_IMMUTABLE (9).
func capHolds(t *testing.T, line string) bool {
	t.Helper()
	_, hex, _ := strings.Cut(strings.TrimSpace(line), ":")
	v, err := strconv.ParseUint(strings.TrimSpace(hex), 16, 64)
	if err != nil {
		t.Fatalf("not a CapBnd line: %q", line)
	}
	return v&(1<<9) != 0
}

// grepKind returns the JSON lines of one finding kind.
func grepKind(out, kind string) string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, `"kind":"`+kind+`"`) {
			lines = append(lines, l)
		}
	}
	return strings.Join(lines, "\n")
}
