//go:build vmtest

package vmtest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cutPoint is where in an apt run the power goes: when the dpkg log lines
// the run appended match pattern count times (or, with pattern "", when
// apt has exited).
type cutPoint struct {
	name    string
	pattern string // extended regexp on /var/log/dpkg.log lines
	count   int
}

var cutPoints = []cutPoint{
	{"before unpack: dpkg started, hooks ran", ` startup archives unpack$`, 1},
	{"inside the first unpack", ` status half-installed `, 1},
	{"mid-unpack", ` status unpacked `, 3},
	{"between unpack and configure", ` startup packages configure$`, 1},
	{"inside configure", ` status half-configured `, 1},
	{"after apt exited, nothing synced", ``, 0},
}

// downgradeSpecs returns pkg=version for the image's own versions of the
// upgrade set.
func (e *env) downgradeSpecs(t *testing.T) string {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(e.img, "downgrade", "*.deb"))
	var specs []string
	for _, d := range debs {
		out, err := exec.Command("dpkg-deb", "-f", d, "Package", "Version").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", d, err)
		}
		f := strings.Fields(string(out))
		specs = append(specs, f[1]+"="+f[3])
	}
	return strings.Join(specs, " ")
}

// powerCut is scenario 2: the upgrade to the security updates on the
// sealed guest, then the same package set downgraded and upgraded again
// with the power cut at each cutPoint, each followed by a boot and the
// checks.
func (e *env) powerCut(t *testing.T, sealed string, points []cutPoint) {
	disk := e.overlay(t, "powercut", sealed)
	g := e.boot(t, disk)
	g.run("apt-get -q update")
	up := aptGet + "upgrade"
	down := aptGet + "--allow-downgrades install " + e.downgradeSpecs(t)
	// The uninterrupted upgrade first: debseal relocks everything.
	g.run(up)
	g.seal().allLocked(t, "after the upgrade")
	for i, p := range points {
		tx, dir := up, "upgrade"
		if i%2 == 0 {
			tx, dir = down, "downgrade"
		}
		t.Logf("cut %d (%s) during the %s", i+1, p.name, dir)
		g.cutDuring(tx, p)
		g.boot()
		for _, problem := range g.checkAfterCut(fmt.Sprintf("cut %d (%s)", i+1, p.name)) {
			t.Error(problem)
		}
		g.repair(fmt.Sprintf("cut %d (%s)", i+1, p.name))
	}
	g.shutdown()
}

// cutDuring starts tx and kills the guest at p.
func (g *guest) cutDuring(tx string, p cutPoint) {
	g.t.Helper()
	n0 := strings.TrimSpace(g.run("wc -l </var/log/dpkg.log"))
	pend, err := g.m.Start(tx)
	if err != nil {
		g.t.Fatal(err)
	}
	deadline := time.Now().Add(stepTimeout)
	probe := "tail -n +" + strconv.Itoa(mustAtoi(g.t, n0)+1) + " /var/log/dpkg.log | grep -Ec " + shq(p.pattern) + " || true"
	for time.Now().Before(deadline) {
		if p.pattern == "" {
			r, err := pend.Wait(stepTimeout)
			if err != nil {
				g.t.Fatalf("%s: %v\nconsole:\n%s", tx, err, tail(g.m.Console()))
			}
			if r.Status != 0 {
				g.t.Fatalf("%s: exit status %d:\n%s", tx, r.Status, r.Out)
			}
			g.cut()
			return
		}
		n := mustAtoi(g.t, strings.TrimSpace(g.try(time.Minute, probe).Out))
		if n >= p.count {
			g.cut()
			return
		}
		if r, err := pend.Wait(100 * time.Millisecond); err == nil {
			g.t.Fatalf("%s ended (status %d) before the cut point %q:\n%s", tx, r.Status, p.pattern, r.Out)
		}
	}
	g.t.Fatalf("cut point %q not reached in %v", p.pattern, stepTimeout)
}

// powerCutControl is the negative control of the power-cut checks: with
// debseal-recover.service disabled, the same cut must fail them.
func (e *env) powerCutControl(t *testing.T, sealed string) {
	disk := e.overlay(t, "control", sealed)
	g := e.boot(t, disk)
	g.run("apt-get -q update && systemctl disable debseal-recover.service")
	g.cutDuring(aptGet+"--allow-downgrades install "+e.downgradeSpecs(t), cutPoints[1])
	g.boot()
	problems := g.checkAfterCut("control: " + cutPoints[1].name + ", recover unit disabled")
	if len(problems) == 0 {
		t.Errorf("with debseal-recover.service disabled, the checks after a cut found nothing")
	}
	for _, p := range problems {
		t.Logf("control, as expected: %s", p)
	}
	g.cut()
}

// checkAfterCut returns what is wrong after the boot, before any admin
// action: the recover unit must have run, and every mutable package file
// must be one a debseal journal names, or belong to a package dpkg has
// not configured.
func (g *guest) checkAfterCut(when string) []string {
	g.t.Helper()
	var problems []string
	ran, res, st := g.unitRan("debseal-recover.service")
	s := g.seal()
	var unexplained []string
	unconfigured := 0
	for p, status := range s.mutable {
		switch {
		case ran && s.journal[p]:
			// Left by a recover that ran and could not relock it:
			// the journal says so. Without the recover run, a
			// journal excuses nothing: nothing looked at it.
		case status != "ii":
			unconfigured++
		default:
			unexplained = append(unexplained, p)
		}
	}
	g.t.Logf("%s, after boot: recover ran %v (%s, status %s); %d of %d locked; mutable: %d named by a journal or unconfigured (%d), %d unexplained",
		when, ran, res, st, s.locked, s.files, len(s.mutable)-len(unexplained), unconfigured, len(unexplained))
	if len(s.lockedConf) > 0 {
		problems = append(problems, fmt.Sprintf("%s: conffiles locked: %v", when, s.lockedConf))
	}
	if !ran {
		problems = append(problems, fmt.Sprintf("%s: debseal-recover.service did not run at boot", when))
	}
	if len(unexplained) > 0 {
		problems = append(problems, fmt.Sprintf("%s: %d mutable after boot, no journal names them: %v", when, len(unexplained), unexplained[:min(20, len(unexplained))]))
	}
	return problems
}

// repair is what apt tells the admin, then the full checks. dpkg
// --configure -a alone fails when the cut left a package half-installed
// (dpkg's reinst-required, not debseal's doing); apt-get -f install
// reinstalls it; then dpkg must have nothing left to do.
func (g *guest) repair(when string) {
	g.t.Helper()
	first := g.try(stepTimeout, "dpkg --configure -a")
	g.t.Logf("%s: dpkg --configure -a: exit status %d", when, first.Status)
	if r := g.try(stepTimeout, aptGet+"-f install && dpkg --configure -a"); r.Status != 0 {
		g.t.Errorf("%s: apt-get -f install; dpkg --configure -a: exit status %d:\n%s\n(first dpkg --configure -a:\n%s)", when, r.Status, r.Out, first.Out)
	}
	if r := g.try(stepTimeout, "dpkg --audit"); r.Status != 0 || strings.TrimSpace(r.Out) != "" {
		g.t.Errorf("%s: dpkg --audit (status %d):\n%s", when, r.Status, r.Out)
	}
	s := g.seal()
	s.allLocked(g.t, when+", repaired")
	if len(s.journal) > 0 {
		g.t.Errorf("%s, repaired: journals left naming %d paths", when, len(s.journal))
	}
	if r := g.try(stepTimeout, "debseal audit"); r.Status != 0 {
		g.t.Errorf("%s, repaired: debseal audit: exit status %d:\n%s", when, r.Status, r.Out)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func shq(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
