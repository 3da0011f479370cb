package vmtest

import (
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
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

// preferredCuts is the part of the upgrade set the power cuts go through
// when the set has them: small libraries (zlib1g, which everything links,
// among them) and libpam-runtime, whose postinst (pam-auth-update,
// debconf) gives the configure phase some length. The full set goes
// through the modes scenario.
var preferredCuts = []string{"zlib1g", "liblzma5", "libzstd1", "libpcre2-8-0", "libpam-runtime"}

// cutSet returns the packages the cuts upgrade and downgrade: the
// preferred ones the image's upgrade set has, or, when it has fewer than
// three of them (a later Debian point release took them into the main
// archive), the whole set, which is slower but cuts the same points.
func (e *env) cutSet() []string {
	var set []string
	for _, p := range preferredCuts {
		if slices.Contains(e.upgrade, p) {
			set = append(set, p)
		}
	}
	if len(set) < 3 {
		return e.upgrade
	}
	return set
}

// cutTransactions returns the apt commands that upgrade the cut set and
// downgrade it back to the image's versions.
func (e *env) cutTransactions(t *testing.T) (up, down string) {
	t.Helper()
	cuts := e.cutSet()
	return aptGet + "install " + strings.Join(cuts, " "),
		aptGet + "--allow-downgrades install " + e.downgradeSpecs(t, cuts...)
}

// downgradeSpecs returns pkg=version for the image's own versions of the
// upgrade set, or of only the named packages.
func (e *env) downgradeSpecs(t *testing.T, only ...string) string {
	t.Helper()
	debs, _ := filepath.Glob(filepath.Join(e.img, "downgrade", "*.deb"))
	var specs []string
	for _, d := range debs {
		out, err := exec.Command("dpkg-deb", "-f", d, "Package", "Version").Output()
		if err != nil {
			t.Fatalf("dpkg-deb -f %s: %v", d, err)
		}
		f := strings.Fields(string(out))
		if len(only) == 0 || slices.Contains(only, f[1]) {
			specs = append(specs, f[1]+"="+f[3])
		}
	}
	if len(only) > 0 && len(specs) != len(only) {
		t.Fatalf("downgrade set has %v of %v", specs, only)
	}
	return strings.Join(specs, " ")
}

// powerCut is scenario 2: part of the upgrade set upgraded and downgraded
// in turn on the sealed guest, with the power cut at each cutPoint, each
// followed by a boot, the checks, and the repair apt and dpkg tell the
// admin to do. (The whole set's uninterrupted upgrade on the sealed guest
// is the modes scenario's first transaction.)
func (e *env) powerCut(t *testing.T, sealed string, points []cutPoint) {
	disk := e.overlay(t, "powercut", sealed)
	g := e.boot(t, disk)
	g.run("apt-get -q update")
	t.Logf("the cuts go through %v", e.cutSet())
	up, down := e.cutTransactions(t)
	image := e.downgradeSpecs(t, e.cutSet()...)
	for i, p := range points {
		start := time.Now()
		// A cut may land before dpkg changed anything, and the repair
		// then leaves the image's versions: the direction comes from
		// what the guest has, not from the cut's number.
		tx, dir := up, "upgrade"
		if !g.hasVersions(image) {
			tx, dir = down, "downgrade"
		}
		when := fmt.Sprintf("cut %d (%s, %s)", i+1, p.name, dir)
		g.cutDuring(tx, p)
		g.boot()
		problems, _ := g.checkAfterCut(when)
		for _, problem := range problems {
			t.Error(problem)
		}
		g.repair(when)
		t.Logf("%s: %v", when, time.Since(start).Round(time.Second))
	}
	g.shutdown()
}

// hasVersions reports whether every pkg=version of specs is installed.
func (g *guest) hasVersions(specs string) bool {
	g.t.Helper()
	var pkgs []string
	for _, s := range strings.Fields(specs) {
		pkgs = append(pkgs, strings.SplitN(s, "=", 2)[0])
	}
	out := g.run("dpkg-query -W -f='${Package}=${Version}\\n' " + strings.Join(pkgs, " "))
	have := strings.Fields(out)
	for _, s := range strings.Fields(specs) {
		if !slices.Contains(have, s) {
			return false
		}
	}
	return true
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
	// The sealed guest has the image's versions: the upgrade changes it.
	up, _ := e.cutTransactions(t)
	g.cutDuring(up, cutPoints[1])
	g.boot()
	problems, unexplained := g.checkAfterCut("control: " + cutPoints[1].name + ", recover unit disabled")
	// Not only "the unit did not run", which disabling it says by itself:
	// the check of the files must find what the missing recovery left.
	if unexplained == 0 {
		t.Errorf("with debseal-recover.service disabled, the check of the files after a cut found nothing; problems: %v", problems)
	}
	for _, p := range problems {
		t.Logf("control, as expected: %s", p)
	}
	g.cut()
}

// checkAfterCut returns what is wrong after the boot, before any admin
// action: the recover unit must have run, and every mutable package file
// must be explained by what the recovery wrote: a debseal journal that
// still names it (a file it could not relock), or its output in this
// boot's system journal naming the file's package as pending ("pending:
// PKG is not configured; it is locked once dpkg configures it") while dpkg
// indeed has not configured it. It also returns how many mutable files
// nothing explains.
func (g *guest) checkAfterCut(when string) ([]string, int) {
	g.t.Helper()
	var problems []string
	ran, res, st := g.unitRan("debseal-recover.service")
	pending := map[string]bool{}
	for _, l := range grepLines(g.run("journalctl -b -o cat -u debseal-recover.service"), "pending: ") {
		if f := strings.Fields(l); len(f) > 1 {
			pending[strings.SplitN(f[1], ":", 2)[0]] = true
		}
	}
	s := g.seal()
	var unexplained []string
	byJournal, byPending := 0, 0
	for p, m := range s.mutable {
		switch {
		case !ran:
			// Without the recover run nothing explains a mutable
			// file: a journal it left is one nothing looked at.
			unexplained = append(unexplained, p)
		case s.journal[p]:
			byJournal++
		case pending[m.pkg] && m.status != "ii":
			byPending++
		default:
			unexplained = append(unexplained, p+" ("+m.pkg+" "+m.status+")")
		}
	}
	g.t.Logf("%s, after boot: recover ran %v (%s, status %s); %d of %d locked; mutable: %d named by a debseal journal, %d of packages the recovery left pending, %d unexplained",
		when, ran, res, st, s.locked, s.files, byJournal, byPending, len(unexplained))
	if len(s.lockedConf) > 0 {
		problems = append(problems, fmt.Sprintf("%s: conffiles locked: %v", when, s.lockedConf))
	}
	if !ran {
		problems = append(problems, fmt.Sprintf("%s: debseal-recover.service did not run at boot", when))
	}
	if len(unexplained) > 0 {
		slices.Sort(unexplained)
		problems = append(problems, fmt.Sprintf("%s: %d mutable after boot, nothing the recovery wrote explains them: %v", when, len(unexplained), unexplained[:min(20, len(unexplained))]))
	}
	return problems, len(unexplained)
}

// repairScript is what apt and dpkg tell the admin after a cut, in their
// order: apt says to run dpkg --configure -a; a package the cut caught in
// its prerm or unpack is left reinst-required, which dpkg --configure -a
// and apt-get -f install both refuse ("you should reinstall it", and
// dpkg --audit lists it as to be reinstalled) — checked on an unsealed
// bookworm chroot, so this is dpkg's doing, not debseal's — so it is
// reinstalled; then apt-get -f install and dpkg --configure -a finish.
const repairScript = `dpkg --configure -a
echo "dpkg --configure -a: $?"
reinst=$(dpkg-query -W -f='${db:Status-Abbrev} ${binary:Package}\n' | awk 'substr($1, 3, 1) == "R" {print $2}')
if [ -n "$reinst" ]; then
	echo "reinst-required: $reinst"
	` + aptGet + `install --reinstall $reinst || exit
fi
` + aptGet + `-f install && dpkg --configure -a
`

// repair runs repairScript, then the full checks: dpkg has nothing left to
// do, everything is locked, no journal is left, debseal's own audit is
// clean.
func (g *guest) repair(when string) {
	g.t.Helper()
	if r := g.try(stepTimeout, repairScript); r.Status != 0 {
		g.t.Errorf("%s: repair: exit status %d:\n%s", when, r.Status, r.Out)
	} else {
		g.t.Logf("%s: repair: %s", when, strings.Join(grepLines(r.Out, "dpkg --configure -a: ", "reinst-required: "), "; "))
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

// grepLines returns the lines of out that start with one of prefixes.
func grepLines(out string, prefixes ...string) []string {
	var lines []string
	for _, l := range strings.Split(out, "\n") {
		for _, p := range prefixes {
			if strings.HasPrefix(l, p) {
				lines = append(lines, l)
			}
		}
	}
	return lines
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
