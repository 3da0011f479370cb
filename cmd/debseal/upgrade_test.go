package main

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// TestUpgradeBookwormToTrixie is issue 13's first proof: a Debian 12 -> 13
// full upgrade of a sealed chroot (about 300 packages, dpkg-hooks mode)
// ends exactly like the same upgrade without debseal.
//
// Two fresh copies of the cached bookworm chroot (scripts/upgrade-chroot.sh)
// get the same cached trixie lists and .debs; A has no debseal, B runs
// debseal setup and lock --all inside the chroot. Both then take the
// documented path, with the same flags and no network: apt-get upgrade
// --without-new-pkgs, then apt-get full-upgrade. The test compares exit
// codes, package sets and versions, dpkg --audit, unowned files, and in B
// the flags (read with testutil.Flags, not debseal), debseal audit, the
// journal and the log's orphan warnings. It prints wall and CPU times of
// each step in A and B and their ratios.
//
// DEBSEAL_UPGRADE_LOGS=DIR keeps apt's output and B's debseal.log there.
func TestUpgradeBookwormToTrixie(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "debootstrap", "chroot", "tar")
	start := time.Now()
	u := testutil.TrixieUpgrade(t)
	t.Logf("cached upgrade set: %s (ready after %s)", u.Dir, time.Since(start).Round(time.Second))

	// The chroot's environment is a clean one (testutil.Chroot.Env): inside
	// it, debseal's root is the chroot's, so DEBSEAL_REFUSE_HOST_ROOT is
	// not passed in (it would refuse the chroot's "/").
	env := []string{"DEBCONF_NONINTERACTIVE_SEEN=true"}
	apt := func(args ...string) []string {
		return append(append([]string{"apt-get", "--no-download"}, u.Flags...), args...)
	}
	steps := []struct {
		name string
		cmd  []string
	}{
		{"apt-get upgrade --without-new-pkgs", apt("upgrade", "--without-new-pkgs")},
		{"apt-get full-upgrade", apt("full-upgrade")},
	}

	type side struct {
		name     string
		c        *testutil.Chroot
		before   string // dpkg-query -W before the upgrade
		unowned0 []string
		runs     []testutil.Measured
	}
	// Unowned files are looked for where packages install.
	tops := []string{"/usr", "/etc", "/opt", "/boot", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}
	phase := time.Now()
	a := &side{name: "A (no debseal)", c: testutil.NewBookwormChroot(t)}
	b := &side{name: "B (debseal dpkg-hooks)", c: testutil.NewBookwormChroot(t)}
	t.Logf("two bookworm chroots extracted in %s", time.Since(phase).Round(time.Second))

	// B: debseal installed and run inside the chroot, as an admin would.
	bin, err := os.ReadFile(testutil.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(b.c.Path("/usr/sbin/debseal"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, s := range []*side{a, b} {
		s.before = versions(t, s.c)
		s.unowned0 = s.c.Unowned(t, tops...)
	}
	setup := b.c.Measure(t, env, "debseal", "setup")
	if setup.Code != 0 {
		t.Fatalf("B: debseal setup: exit %d\n%s", setup.Code, setup.Out)
	}
	lock := b.c.Measure(t, env, "debseal", "lock", "--all")
	if lock.Code != 0 {
		t.Fatalf("B: debseal lock --all: exit %d\n%s", lock.Code, lock.Out)
	}
	t.Logf("B: debseal setup %s, lock --all %s (wall): %s", setup.Wall.Round(time.Millisecond), lock.Wall.Round(time.Millisecond), firstLine(lock.Out))
	// What setup wrote (the binary, its hook and config) is debseal's own
	// unowned set; nothing else may differ from A's.
	_, debsealOwn := testutil.Diff(a.unowned0, b.c.Unowned(t, tops...))
	t.Logf("B: debseal's own files: %v", debsealOwn)
	if n := strings.Count(a.before, "\n"); n < 250 {
		t.Fatalf("the bookworm chroot has %d packages, want >= 250 (scripts/upgrade-chroot.sh)", n)
	}

	// The upgrade, A then B, each step timed.
	for _, s := range []*side{a, b} {
		s.c.UseTrixie(t, u)
		for _, st := range steps {
			m := s.c.Measure(t, env, st.cmd...)
			s.runs = append(s.runs, m)
			t.Logf("%s: %s: exit %d, wall %s, cpu %s", s.name, st.name, m.Code, m.Wall.Round(time.Millisecond), m.CPU().Round(time.Millisecond))
			keepLog(t, s.name, st.name, m.Out)
		}
	}
	blog, _ := os.ReadFile(b.c.Path("/var/log/debseal.log"))
	keepLog(t, "B", "debseal.log", string(blog))

	// Timing first: it is worth reading even when the rest fails.
	var tw, tc [2]time.Duration
	report := []string{fmt.Sprintf("%-36s %10s %10s %10s %10s %7s %7s", "step", "A wall", "A cpu", "B wall", "B cpu", "wall×", "cpu×")}
	for i, st := range steps {
		ra, rb := a.runs[i], b.runs[i]
		tw[0], tw[1], tc[0], tc[1] = tw[0]+ra.Wall, tw[1]+rb.Wall, tc[0]+ra.CPU(), tc[1]+rb.CPU()
		report = append(report, timingRow(st.name, ra.Wall, ra.CPU(), rb.Wall, rb.CPU()))
	}
	report = append(report, timingRow("total", tw[0], tc[0], tw[1], tc[1]))
	note := ""
	for i := range steps {
		if a.runs[i].Code != b.runs[i].Code {
			note = " — exit codes differ: B stopped early, its ratios are not comparable"
		}
	}
	t.Logf("upgrade times (cpu = user+sys of the apt process tree)%s:\n%s", note, strings.Join(report, "\n"))

	phase = time.Now()
	defer func() { t.Logf("checks took %s", time.Since(phase).Round(time.Second)) }()

	// Same exit codes, and the plain upgrade must work, or nothing is compared.
	for i, st := range steps {
		ra, rb := a.runs[i], b.runs[i]
		if ra.Code != 0 {
			t.Errorf("A: %s exited %d without debseal: the comparison proves nothing\n%s", st.name, ra.Code, tail(ra.Out, 40))
		}
		if ra.Code != rb.Code {
			t.Errorf("%s: exit %d with debseal, %d without\nB's apt output (end):\n%s", st.name, rb.Code, ra.Code, tail(rb.Out, 60))
		}
	}

	// The same final package set and versions.
	va, vb := versions(t, a.c), versions(t, b.c)
	if n := countChanged(a.before, va); n < 100 {
		t.Errorf("A: only %d packages changed version: the upgrade proves little", n)
	}
	if onlyA, onlyB := testutil.Diff(lines(va), lines(vb)); len(onlyA)+len(onlyB) > 0 {
		t.Errorf("package sets differ:\nonly without debseal (A):\n  %s\nonly with debseal (B):\n  %s", testutil.Head(onlyA, 40), testutil.Head(onlyB, 40))
	}

	// dpkg --audit is empty in both.
	for _, s := range []*side{a, b} {
		if out, _ := s.c.Run(t, nil, "dpkg", "--audit"); strings.TrimSpace(out) != "" {
			t.Errorf("%s: dpkg --audit:\n%s", s.name, out)
		}
	}

	// Unowned files: the same in A and B, apart from debseal's own.
	ua, ub := a.c.Unowned(t, tops...), b.c.Unowned(t, tops...)
	onlyA, onlyB := testutil.Diff(ua, ub)
	onlyB, _ = testutil.Diff(onlyB, debsealOwn)
	if len(onlyA)+len(onlyB) > 0 {
		t.Errorf("unowned files differ (%d in A, %d in B):\nonly without debseal (A):\n  %s\nonly with debseal (B):\n  %s",
			len(ua), len(ub), testutil.Head(onlyA, 30), testutil.Head(onlyB, 30))
	}

	// B's log: every orphan warning names a file that A also leaves
	// unowned; no error.
	unownedA := map[string]bool{}
	for _, p := range ua {
		unownedA[p] = true
	}
	var falseOrphans, errorLines []string
	orphanRe := regexp.MustCompile(`orphan: (\S+) was in (\S+)`)
	nOrphan := 0
	for _, l := range strings.Split(string(blog), "\n") {
		if m := orphanRe.FindStringSubmatch(l); m != nil {
			nOrphan++
			if !unownedA[a.c.Canonical(m[1])] {
				falseOrphans = append(falseOrphans, m[1]+" (was in "+m[2]+")")
			}
		}
		if strings.Contains(l, " error: ") {
			errorLines = append(errorLines, l)
		}
	}
	if len(falseOrphans) > 0 {
		t.Errorf("B: %d of %d orphan warnings in debseal.log name a file the upgrade without debseal leaves owned or absent:\n  %s",
			len(falseOrphans), nOrphan, testutil.Head(falseOrphans, 20))
	}
	if len(errorLines) > 0 {
		t.Errorf("B: %d errors in debseal.log:\n  %s", len(errorLines), testutil.Head(errorLines, 20))
	}

	// B: every regular non-conffile package file locked, no conffile,
	// nothing else.
	checkUpgradeLocks(t, b.c)

	// B: debseal audit is clean and no journal is left.
	if out, code := b.c.Run(t, env, "debseal", "audit"); code != 0 {
		t.Errorf("B: debseal audit: exit %d\n%s", code, tail(out, 40))
	}
	if ents, err := os.ReadDir(b.c.Path("/var/lib/debseal/journal")); err != nil && !os.IsNotExist(err) {
		t.Errorf("B: journal directory: %v", err)
	} else if len(ents) > 0 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("B: stale journal left in /var/lib/debseal/journal: %v", names)
	}
	t.Logf("test time: %s", time.Since(start).Round(time.Second))
}

// checkUpgradeLocks checks B's flags with testutil's independent reader:
// every expected package file immutable, no conffile, nothing else.
func checkUpgradeLocks(t *testing.T, c *testutil.Chroot) {
	t.Helper()
	want, conffiles := testutil.ExpectedLocked(t, c.Dir, testutil.ChrootTool(c.Dir))
	var unlocked []string
	byPkg := map[string]int{}
	owner := ownersOf(t, c)
	for _, p := range want {
		v, err := testutil.Flags(c.Path(p))
		if err != nil {
			t.Errorf("B: %v", err)
			continue
		}
		if v&0x10 == 0 {
			unlocked = append(unlocked, p)
			byPkg[owner[p]]++
		}
	}
	if len(unlocked) > 0 {
		var pk []string
		for p, n := range byPkg {
			pk = append(pk, fmt.Sprintf("%s:%d", p, n))
		}
		sort.Strings(pk)
		t.Errorf("B: %d of %d package files not immutable, by package: %s\n  %s", len(unlocked), len(want), strings.Join(pk, " "), testutil.Head(unlocked, 20))
		var all []string
		for _, p := range unlocked {
			all = append(all, p+" "+owner[p])
		}
		keepLog(t, "B", "unlocked", strings.Join(all, "\n")+"\n")
	}
	var lockedConf []string
	for _, p := range conffiles {
		if v, err := testutil.Flags(c.Path(p)); err == nil && v&0x10 != 0 {
			lockedConf = append(lockedConf, p)
		}
	}
	if len(lockedConf) > 0 {
		t.Errorf("B: %d conffiles immutable:\n  %s", len(lockedConf), testutil.Head(lockedConf, 20))
	}
	wantSet := map[string]bool{}
	for _, p := range want {
		wantSet[p] = true
	}
	var extra []string
	for _, p := range immutableFiles(t, c.Dir) {
		if !wantSet[p] {
			extra = append(extra, p)
		}
	}
	if len(extra) > 0 {
		t.Errorf("B: %d files immutable that are not expected package files:\n  %s", len(extra), testutil.Head(extra, 20))
	}
	t.Logf("B: %d package files expected locked, %d unlocked, %d conffiles locked, %d unexpected locks", len(want), len(unlocked), len(lockedConf), len(extra))
}

// ownersOf maps every listed path (and its merged-/usr spelling under
// /usr) to a package, for readable reports.
func ownersOf(t *testing.T, c *testutil.Chroot) map[string]string {
	out, code := c.Run(t, nil, "dpkg-query", "-S", "*")
	m := map[string]string{}
	if code != 0 && out == "" {
		return m
	}
	for _, l := range strings.Split(out, "\n") {
		pk, paths, ok := strings.Cut(l, ": ")
		if !ok {
			continue
		}
		for _, p := range strings.Split(paths, ", ") {
			m[p] = pk
			for _, d := range []string{"/bin/", "/sbin/", "/lib/", "/lib64/", "/lib32/", "/libx32/"} {
				if strings.HasPrefix(p, d) {
					m["/usr"+p] = pk
				}
			}
		}
	}
	return m
}

func versions(t *testing.T, c *testutil.Chroot) string {
	return testutil.ChrootTool(c.Dir)(t, "dpkg-query", "-W", "-f=${binary:Package} ${Version} ${db:Status-Abbrev}\n")
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// tail is the last n lines of apt's output, without dpkg's "(Reading
// database ..." progress lines.
func tail(s string, n int) string {
	var l []string
	for _, line := range strings.Split(strings.TrimRight(s, "\n"), "\n") {
		if !strings.HasPrefix(line, "(Reading database") {
			l = append(l, line)
		}
	}
	if len(l) > n {
		l = append([]string{fmt.Sprintf("[… %d lines]", len(l)-n)}, l[len(l)-n:]...)
	}
	return strings.Join(l, "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	return l
}

func timingRow(name string, aw, ac, bw, bc time.Duration) string {
	ratio := func(b, a time.Duration) string {
		if a <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.2fx", float64(b)/float64(a))
	}
	r := func(d time.Duration) string { return d.Round(100 * time.Millisecond).String() }
	return fmt.Sprintf("%-36s %10s %10s %10s %10s %7s %7s", name, r(aw), r(ac), r(bw), r(bc), ratio(bw, aw), ratio(bc, ac))
}

// keepLog saves a log under $DEBSEAL_UPGRADE_LOGS, when set.
func keepLog(t *testing.T, side, name, text string) {
	dir := os.Getenv("DEBSEAL_UPGRADE_LOGS")
	if dir == "" {
		return
	}
	clean := strings.NewReplacer(" ", "_", "/", "_", "(", "", ")", "").Replace(side + "-" + name)
	if err := os.MkdirAll(dir, 0o755); err == nil {
		if err := os.WriteFile(filepath.Join(dir, clean+".log"), []byte(text), 0o644); err != nil {
			t.Logf("keeping %s: %v", clean, err)
		}
	}
}
