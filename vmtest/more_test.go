package vmtest

import (
	"strings"
	"testing"
	"time"
)

// auditTimer is scenario 3: debseal-audit.timer fires by itself (made
// due: its persistent stamp two days old, no random delay), writes
// debseal.prom and its findings to the journal; a file tampered with by
// hand (its flag lifted, a changed copy renamed over it) shows up in both.
func (e *env) auditTimer(t *testing.T, sealed string) {
	g := e.boot(t, e.overlay(t, "audit", sealed))
	g.run(`set -e
sed -i 's|^TEXTFILE_DIR=.*|TEXTFILE_DIR=/var/lib/prometheus/node-exporter|' /etc/default/debseal
mkdir -p /var/lib/prometheus/node-exporter /etc/systemd/system/debseal-audit.timer.d
printf '[Timer]\nRandomizedDelaySec=0\n' >/etc/systemd/system/debseal-audit.timer.d/due.conf
systemctl daemon-reload`)
	prom := "/var/lib/prometheus/node-exporter/debseal.prom"

	res, journal := g.fireAudit()
	if res != "success" {
		t.Errorf("clean audit: result %q, want success:\n%s", res, journal)
	}
	if m := g.run("cat " + prom); !strings.Contains(m, "\ndebseal_audit_findings_total 0\n") {
		t.Errorf("clean audit: %s:\n%s", prom, m)
	}

	// The tamper: by hand, around the lock. The guest's files are
	// fs-verity files (the image has the ext4 feature), whose contents the
	// kernel refuses to write in place even after chattr -i (the verity
	// scenario shows that), so the tamper is what still works: a changed
	// copy renamed over the package file.
	g.run(`set -e
chattr -i /usr/bin/yes
cp -p /usr/bin/yes /usr/bin/.yes.tamper
printf tampered >>/usr/bin/.yes.tamper
mv /usr/bin/.yes.tamper /usr/bin/yes`)
	res, journal = g.fireAudit()
	if res == "success" {
		t.Errorf("audit after the tamper: result success, want a failed run")
	}
	if !strings.Contains(journal, "/usr/bin/yes") {
		t.Errorf("audit after the tamper: journal does not name /usr/bin/yes:\n%s", journal)
	}
	m := g.run("cat " + prom)
	if strings.Contains(m, "\ndebseal_audit_findings_total 0\n") || !strings.Contains(m, "\ndebseal_audit_findings_total ") {
		t.Errorf("audit after the tamper: %s:\n%s", prom, m)
	}
	if f := g.run("systemctl --failed --no-legend"); !strings.Contains(f, "debseal-audit.service") {
		t.Errorf("systemctl --failed does not show the audit's findings:\n%s", f)
	}
	g.cut()
}

// fireAudit makes the timer due and waits for the service run it starts;
// it returns the run's Result and its journal.
func (g *guest) fireAudit() (string, string) {
	g.t.Helper()
	before := strings.TrimSpace(g.run("systemctl show -P InvocationID debseal-audit.service"))
	g.run(`set -e
mkdir -p /var/lib/systemd/timers
touch -d '2 days ago' /var/lib/systemd/timers/stamp-debseal-audit.timer
systemctl restart debseal-audit.timer`)
	deadline := time.Now().Add(stepTimeout)
	for time.Now().Before(deadline) {
		out := g.run("systemctl show -P InvocationID debseal-audit.service; systemctl show -P ActiveState debseal-audit.service; systemctl show -P Result debseal-audit.service")
		f := strings.Split(strings.TrimSpace(out), "\n")
		if len(f) == 3 && f[0] != before && f[0] != "" && (f[1] == "inactive" || f[1] == "failed") {
			return f[2], g.run("journalctl -o cat _SYSTEMD_INVOCATION_ID=" + f[0])
		}
		time.Sleep(time.Second)
	}
	g.t.Fatalf("debseal-audit.timer did not start the audit in %v:\n%s", stepTimeout, g.run("systemctl list-timers --all debseal-audit.timer; systemctl status debseal-audit.service"))
	return "", ""
}

// modes is scenario 4: each integration mode set up on the real root, one
// apt transaction through it, torn down. The first, in the mode the
// package installs, is the whole upgrade set, uninterrupted (scenario 2's
// upgrade; the power cuts then go through part of it); the others
// downgrade and upgrade the cut set in turn.
func (e *env) modes(t *testing.T, sealed string) {
	g := e.boot(t, e.overlay(t, "modes", sealed))
	g.run("apt-get -q update")
	up, down := e.cutTransactions(t)
	txs := []string{aptGet + "upgrade", down, up, down}
	files := map[string]string{
		"dpkg-hooks": "test -f /etc/dpkg/dpkg.cfg.d/debseal",
		"apt-hooks":  "test -f /etc/apt/apt.conf.d/99debseal-hooks",
		"wrapper":    "test -f /etc/apt/apt.conf.d/99debseal-wrapper",
		// A local diversion: dpkg-divert names no package.
		"divert": "dpkg-divert --list /usr/bin/dpkg | grep -qx 'local diversion of /usr/bin/dpkg to /usr/bin/dpkg.distrib'",
	}
	gone := "! test -e /etc/dpkg/dpkg.cfg.d/debseal && ! test -e /etc/apt/apt.conf.d/99debseal-hooks && ! test -e /etc/apt/apt.conf.d/99debseal-wrapper && test -z \"$(dpkg-divert --list /usr/bin/dpkg)\""
	for i, mode := range []string{"dpkg-hooks", "apt-hooks", "wrapper", "divert"} {
		start := time.Now()
		tx := txs[i]
		g.run("debseal teardown && " + gone)
		g.run("debseal setup --mode " + mode + " && " + files[mode])
		if r := g.try(stepTimeout, tx); r.Status != 0 {
			t.Errorf("%s: apt: exit status %d:\n%s", mode, r.Status, r.Out)
		}
		if r := g.try(stepTimeout, "dpkg --audit"); r.Status != 0 || strings.TrimSpace(r.Out) != "" {
			t.Errorf("%s: dpkg --audit (status %d):\n%s", mode, r.Status, r.Out)
		}
		g.seal().allLocked(t, mode)
		if r := g.try(stepTimeout, "debseal teardown && "+gone); r.Status != 0 {
			t.Errorf("%s: teardown left its integration: status %d:\n%s", mode, r.Status, r.Out)
		}
		t.Logf("mode %s: %v", mode, time.Since(start).Round(time.Second))
	}
	g.run("debseal setup --mode dpkg-hooks")
	g.cut()
}

// purge is scenario 5: removing and purging debseal on the sealed guest
// leaves a normal system, every file mutable, package management working.
func (e *env) purge(t *testing.T, sealed string) {
	g := e.boot(t, e.overlay(t, "purge", sealed))
	g.run("apt-get -q update")
	g.run(aptGet + "remove debseal")
	s := g.seal()
	if s.locked != 0 {
		t.Errorf("after apt-get remove: %d package files still locked", s.locked)
	}
	g.run(aptGet + "purge debseal")
	if left := g.try(stepTimeout, `lsattr -R -a /usr /etc /var /opt /boot /srv 2>/dev/null | awk '$1 ~ /^[-A-Za-z]+$/ && length($1) >= 16 && $1 ~ /i/'`).Out; strings.TrimSpace(left) != "" {
		t.Errorf("immutable files left after purge:\n%s", left)
	}
	up, down := e.cutTransactions(t)
	checks := map[string]string{
		"state gone":      "! test -e /var/lib/debseal",
		"hooks gone":      "! test -e /etc/dpkg/dpkg.cfg.d/debseal && ! test -e /etc/apt/apt.conf.d/99debseal-hooks && ! test -e /etc/apt/apt.conf.d/99debseal-wrapper",
		"no diversion":    "test -z \"$(dpkg-divert --list | grep debseal)\"",
		"units gone":      "test -z \"$(systemctl list-unit-files --no-legend debseal-recover.service 'debseal-audit.*')\"",
		"package gone":    "! dpkg-query -W -f='${db:Status-Abbrev}' debseal 2>/dev/null | grep -q .",
		"apt works":       up + " && " + down,
		"dpkg --audit ok": "test -z \"$(dpkg --audit)\"",
	}
	for _, name := range []string{"state gone", "hooks gone", "no diversion", "units gone", "package gone", "apt works", "dpkg --audit ok"} {
		if r := g.try(stepTimeout, checks[name]); r.Status != 0 {
			t.Errorf("after purge: %s: status %d:\n%s", name, r.Status, r.Out)
		}
	}
	if s := g.seal(); s.locked != 0 {
		t.Errorf("after purge and an upgrade: %d package files locked", s.locked)
	}
	g.cut()
}
