package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// The end-to-end suite: a debootstrap bookworm chroot per integration
// mode, real apt and dpkg, and after every step the invariants checked
// independently of debseal (dpkg-query, dpkg-divert, lsattr).

// e2eStep is one command run in the chroot.
type e2eStep struct {
	name string
	cmd  []string // run in the chroot; "apt-get" goes through the archive cache
	env  []string
	want int // expected exit code (what the same step gives on an unlocked system)
	// noCheck: the step is the first half of a scenario (dpkg killed
	// half-way): invariants are checked after the next step.
	noCheck bool
	// halfInstalled: a package the scenario leaves half-installed on
	// purpose; dpkg --audit may name it (and only it).
	halfInstalled string
}

const localDebs = "/root/debs"

// e2eSteps are the steps for a mode. dpkg is called directly except in
// the apt-hooks mode, which only sees apt (there, the same packages go
// through apt), and the wrapper mode, where the admin runs debseal dpkg.
func e2eSteps(mode string) []e2eStep {
	dpkg := []string{"dpkg"}
	if mode == "wrapper" {
		dpkg = []string{"debseal", "dpkg"}
	}
	local := func(n string) string { return localDebs + "/" + n + ".deb" }
	apt := func(args ...string) []string { return append([]string{"apt-get"}, args...) }
	viaDpkg := func(args ...string) []string { return append(append([]string{}, dpkg...), args...) }
	installLocal := func(names ...string) []string {
		if mode == "apt-hooks" {
			var files []string
			for _, n := range names {
				files = append(files, local(n))
			}
			return apt(append([]string{"install"}, files...)...)
		}
		var files []string
		for _, n := range names {
			files = append(files, local(n))
		}
		return viaDpkg(append([]string{"-i"}, files...)...)
	}
	steps := []e2eStep{
		{name: "apt install with a conffile and triggers", cmd: apt("install", "man-db", "nano", "hello")},
		{name: "apt reinstall of an Essential package", cmd: apt("install", "--reinstall", "coreutils")},
		{name: "real upgrade from bookworm-updates and -security", cmd: []string{"sh", "-c",
			"printf '" + upgradeSources() + "' >/etc/apt/sources.list && apt-get -q update && apt-get -q -y -o APT::Keep-Downloaded-Packages=true upgrade"}},
		{name: "apt remove", cmd: apt("remove", "hello")},
		{name: "apt purge of a package with a conffile", cmd: apt("purge", "nano")},
		{name: "local package", cmd: installLocal("dstest-base_1.0_all")},
		{name: "local upgrade that drops a file", cmd: installLocal("dstest-base_2.0_all")},
	}
	// An interrupted unpack: dstest-killer's preinst SIGKILLs dpkg while
	// it unpacks dstest-plugin (which activates dstest-base's trigger)
	// and dstest-killer. dstest-plugin is left unpacked, dstest-killer
	// half-installed, and in the dpkg-hooks mode no post-invoke runs.
	// On an unlocked system dpkg dies the same way: 137 from the shell
	// (128 + SIGKILL), 100 from apt.
	killed := func(cmd string) []string {
		return []string{"sh", "-c", "touch /dstest-kill-dpkg; " + cmd + "; rc=$?; rm -f /dstest-kill-dpkg; exit $rc"}
	}
	if mode == "apt-hooks" {
		// apt-hooks only sees apt: the admin finishes with apt too.
		steps = append(steps,
			e2eStep{name: "apt install interrupted by a killed dpkg", want: 100, noCheck: true,
				cmd: killed("apt-get -q -y install " + local("dstest-plugin_1.0_all") + " " + local("dstest-killer_1.0_all"))},
			// apt insists on dpkg --configure -a first; a plain dpkg is not
			// hooked in this mode, so the admin goes through the wrapper
			// (debseal's Post-Invoke says so).
			e2eStep{name: "debseal dpkg --configure -a after the interrupted apt run", cmd: []string{"debseal", "dpkg", "--configure", "-a"},
				halfInstalled: "dstest-killer"},
			// apt may have ordered dstest-killer first: dstest-plugin then
			// never got unpacked, and is installed here.
			e2eStep{name: "apt reinstall of the half-installed package", cmd: apt("install", "--reinstall", local("dstest-killer_1.0_all"), local("dstest-plugin_1.0_all"))},
		)
	} else {
		steps = append(steps,
			e2eStep{name: "unpack interrupted by a killed dpkg", want: 137, noCheck: true,
				cmd: killed(strings.Join(viaDpkg("--unpack", local("dstest-plugin_1.0_all"), local("dstest-killer_1.0_all")), " "))},
			e2eStep{name: "dpkg --configure -a after the interrupted unpack", cmd: viaDpkg("--configure", "-a"),
				halfInstalled: "dstest-killer"},
			e2eStep{name: "reinstall of the half-installed package", cmd: installLocal("dstest-killer_1.0_all")},
		)
	}
	steps = append(steps,
		e2eStep{name: "preinst diverts another package's locked file with --rename", cmd: installLocal("dstest-diverter_1.0_all")},
		e2eStep{name: "postinst runs dpkg-statoverride --update on a locked file", cmd: installLocal("dstest-override_1.0_all")},
		e2eStep{name: "apt purge of the local packages", cmd: apt("purge", "dstest-diverter", "dstest-override", "dstest-plugin", "dstest-killer", "dstest-base")},
	)
	return steps
}

// upgradeSources is a sources.list for bookworm with its updates and
// security suites, from the Debian mirrors the machine's own apt sources
// name (deb.debian.org when they name none), as printf input.
func upgradeSources() string {
	main, security := testutil.DebianMirrors()
	return "deb " + main + " bookworm main\\ndeb " + main + " bookworm-updates main\\ndeb " + security + " bookworm-security main\\n"
}

// e2eChroot prepares a chroot with debseal installed at /usr/sbin/debseal
// and the test packages under /root/debs.
func e2eChroot(t *testing.T) *testutil.Chroot {
	c := testutil.NewChroot(t)
	bin, err := os.ReadFile(testutil.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("/usr/sbin/debseal"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(c.Path(localDebs), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("sh", "-c", "cp "+testutil.TestDebs(t)+"/*.deb "+c.Path(localDebs)).CombinedOutput(); err != nil {
		t.Fatalf("copy debs: %v %s", err, out)
	}
	if out, code := c.Apt(t, nil, "update"); code != 0 {
		t.Fatalf("apt-get update: %d\n%s", code, out)
	}
	return c
}

func runStep(t *testing.T, c *testutil.Chroot, st e2eStep) (string, int) {
	if st.cmd[0] == "apt-get" {
		return c.Apt(t, st.env, st.cmd[1:]...)
	}
	return c.WithCache(t, st.env, st.cmd...)
}

// listedPaths is every path every package lists now (dpkg-query -L).
func listedPaths(t *testing.T, c *testutil.Chroot) map[string]bool {
	tool := testutil.ChrootTool(c.Dir)
	var pkgs []string
	for _, l := range strings.Split(tool(t, "dpkg-query", "-W", "-f=${binary:Package} ${db:Status-Status}\n"), "\n") {
		if f := strings.Fields(l); len(f) == 2 && f[1] != "not-installed" {
			pkgs = append(pkgs, f[0])
		}
	}
	set := map[string]bool{}
	if len(pkgs) == 0 {
		return set
	}
	for _, l := range strings.Split(tool(t, "dpkg-query", append([]string{"-L"}, pkgs...)...), "\n") {
		if strings.HasPrefix(l, "/") {
			set[l] = true
		}
	}
	// Diverted files live at the diversion target.
	for _, l := range strings.Split(tool(t, "dpkg-divert", "--list"), "\n") {
		if i := strings.Index(l, " to "); i > 0 {
			to := l[i+4:]
			if j := strings.Index(to, " by "); j > 0 {
				to = to[:j]
			}
			set[to] = true
		}
	}
	return set
}

// lsattrLocked returns which of paths lsattr shows with the i flag.
func lsattrLocked(t *testing.T, root string, paths []string) map[string]bool {
	out := map[string]bool{}
	for start := 0; start < len(paths); start += 500 {
		var args []string
		for _, p := range paths[start:min(start+500, len(paths))] {
			args = append(args, filepath.Join(root, p))
		}
		cmd := exec.Command("lsattr", append([]string{"-d"}, args...)...)
		var stdout bytes.Buffer
		cmd.Stdout = &stdout
		cmd.Run() // lsattr fails on files without flags support; its output is still complete
		for _, l := range strings.Split(stdout.String(), "\n") {
			flags, p, ok := strings.Cut(l, " ")
			if ok && strings.Contains(flags, "i") {
				out["/"+strings.TrimPrefix(strings.TrimPrefix(p, root), "/")] = true
			}
		}
	}
	return out
}

// checkChroot checks the invariants after a step: dpkg --audit is empty,
// every non-conffile regular file of every configured package is
// immutable (lsattr) and nothing else is, no conffile is, and no file a
// package listed before the step is left on disk unowned.
func checkChroot(t *testing.T, c *testutil.Chroot, step string, before map[string]bool) {
	t.Helper()
	checkChrootAllowing(t, c, step, before, "")
}

// checkChrootAllowing is checkChroot where dpkg --audit may name one
// package that the scenario leaves half-installed on purpose.
func checkChrootAllowing(t *testing.T, c *testutil.Chroot, step string, before map[string]bool, halfInstalled string) {
	t.Helper()
	out, _ := c.Run(t, nil, "dpkg", "--audit")
	bad := halfInstalled == "" && strings.TrimSpace(out) != ""
	for _, l := range strings.Split(out, "\n") {
		// The package lines of dpkg --audit are indented.
		if f := strings.Fields(l); len(f) > 0 && strings.HasPrefix(l, " ") && f[0] != halfInstalled {
			bad = true
		}
	}
	if bad {
		t.Errorf("%s: dpkg --audit:\n%s", step, out)
	}
	checkLocked(t, c, step)
	checkOrphans(t, c, step, before)
}

// checkLocked checks that exactly the configured packages' non-conffile
// regular files are immutable.
func checkLocked(t *testing.T, c *testutil.Chroot, step string) {
	t.Helper()
	want, conffiles := testutil.ExpectedLocked(t, c.Dir, testutil.ChrootTool(c.Dir))
	got := lsattrLocked(t, c.Dir, want)
	var notLocked []string
	for _, p := range want {
		if !got[p] {
			notLocked = append(notLocked, p)
		}
	}
	if len(notLocked) > 0 {
		t.Errorf("%s: %d package files not immutable, e.g. %v", step, len(notLocked), notLocked[:min(10, len(notLocked))])
	}
	for p := range lsattrLocked(t, c.Dir, conffiles) {
		t.Errorf("%s: conffile %s is immutable", step, p)
	}
	// Nothing outside the expected set is immutable (walk with the
	// independent ioctl reader: lsattr over the whole tree is slow).
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
		t.Errorf("%s: immutable but not an expected package file: %v", step, extra[:min(10, len(extra))])
	}
}

// checkOrphans fails for files listed before the step, listed by nobody
// now, and still on disk.
func checkOrphans(t *testing.T, c *testutil.Chroot, step string, before map[string]bool) {
	t.Helper()
	// Orphans: listed before, listed by nobody now, still there.
	after := listedPaths(t, c)
	var orphans []string
	for p := range before {
		if after[p] {
			continue
		}
		if fi, err := os.Lstat(c.Path(p)); err == nil && !fi.IsDir() {
			orphans = append(orphans, p)
		}
	}
	sort.Strings(orphans)
	if len(orphans) > 0 {
		t.Errorf("%s: orphaned files (owned by nobody, left on disk): %v", step, orphans)
	}
}

func TestEndToEndApt(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "debootstrap", "lsattr", "chroot")
	for _, mode := range []string{"dpkg-hooks", "apt-hooks", "wrapper", "divert"} {
		t.Run(mode, func(t *testing.T) {
			c := e2eChroot(t)
			c.MustRun(t, "debseal", "setup", "--mode", mode)
			c.MustRun(t, "debseal", "lock", "--all")
			checkChroot(t, c, "after lock --all", listedPaths(t, c))
			runSteps(t, c, e2eSteps(mode))
			log, _ := os.ReadFile(c.Path("/var/log/debseal.log"))
			for _, l := range strings.Split(string(log), "\n") {
				if strings.Contains(l, " error: ") || strings.Contains(l, "orphan") || strings.Contains(l, "MISMATCH") || strings.Contains(l, "changed after dpkg wrote it") ||
					strings.Contains(l, "tampered-before-upgrade") || strings.Contains(l, "not checked before unlocking") {
					t.Errorf("debseal.log: %s", l)
				}
			}
			// Teardown leaves a working dpkg and apt.
			c.MustRun(t, "debseal", "teardown")
			c.MustRun(t, "debseal", "unlock", "--all")
			if out, code := c.Apt(t, nil, "install", "--reinstall", "hostname"); code != 0 {
				t.Errorf("apt after teardown: exit %d\n%s", code, out)
			}
			if out, code := c.Run(t, nil, "dpkg", "--version"); code != 0 || !strings.Contains(out, "dpkg") {
				t.Errorf("dpkg after teardown: exit %d\n%s", code, out)
			}
		})
	}
}

// runSteps runs the steps in the chroot: each must exit as expected, and
// after each the invariants hold (checkChroot).
func runSteps(t *testing.T, c *testutil.Chroot, steps []e2eStep) {
	t.Helper()
	versions := func() string {
		return testutil.ChrootTool(c.Dir)(t, "dpkg-query", "-W", "-f=${binary:Package} ${Version}\n")
	}
	for _, st := range steps {
		before := listedPaths(t, c)
		v0 := versions()
		out, code := runStep(t, c, st)
		if code != st.want {
			t.Fatalf("%s: exit %d, want %d\n%s", st.name, code, st.want, out)
		}
		if strings.Contains(st.name, "real upgrade") {
			n := countChanged(v0, versions())
			t.Logf("%s: %d packages changed version", st.name, n)
			if n == 0 {
				t.Errorf("%s: no package was upgraded: the step proves nothing", st.name)
			}
		}
		if st.noCheck {
			waitChrootDpkg(t, c)
			continue
		}
		checkChrootAllowing(t, c, st.name, before, st.halfInstalled)
	}
}

func countChanged(a, b string) int {
	old := map[string]bool{}
	for _, l := range strings.Split(a, "\n") {
		old[l] = true
	}
	n := 0
	for _, l := range strings.Split(b, "\n") {
		if l != "" && !old[l] {
			n++
		}
	}
	return n
}

// TestEndToEndNegativeControl locks a chroot without any integration and
// runs the same kind of upgrade and removal: they must fail or orphan
// files. It proves the suite can fail.
func TestEndToEndNegativeControl(t *testing.T) {
	testutil.RequireRoot(t)
	c := e2eChroot(t)
	if out, code := c.Apt(t, nil, "install", "hello"); code != 0 {
		t.Fatalf("install: %d\n%s", code, out)
	}
	c.MustRun(t, "debseal", "lock", "--all")
	outR, codeR := c.Apt(t, nil, "install", "--reinstall", "hello")
	outP, codeP := c.Apt(t, nil, "purge", "hello")
	orphaned := false
	if fi, err := os.Lstat(c.Path("/usr/bin/hello")); err == nil && !fi.IsDir() {
		orphaned = true
	}
	t.Logf("reinstall: exit %d; purge: exit %d; /usr/bin/hello left behind: %v", codeR, codeP, orphaned)
	if codeR == 0 && codeP == 0 && !orphaned {
		t.Errorf("without debseal's integration, a locked system upgraded and purged cleanly: the suite could not fail\n%s\n%s", outR, outP)
	}
	if codeR == 0 {
		t.Errorf("reinstall of a locked package succeeded without debseal:\n%s", outR)
	}
	c.MustRun(t, "debseal", "unlock", "--all")
}

// TestEndToEndCrash kills the transaction at each point in each mode:
// right after debseal unlocked, while dpkg runs, and before debseal
// relocks; then recovers with debseal recover or simply with the next apt
// run, and checks the system is fully locked with nothing lost. debseal
// is killed through DEBSEAL_FAULT; "while dpkg runs" kills the wrapper
// (wrapper, divert) or, in the hook modes, where no debseal process lives
// during dpkg, dpkg itself (dstest-killer's preinst), so that its
// post-invoke hook never runs.
func TestEndToEndCrash(t *testing.T) {
	testutil.RequireRoot(t)
	killer := localDebs + "/dstest-killer_1.0_all.deb"
	for _, mode := range []string{"dpkg-hooks", "apt-hooks", "wrapper", "divert"} {
		t.Run(mode, func(t *testing.T) {
			c := e2eChroot(t)
			if out, code := c.Apt(t, nil, "install", "hello", "sed"); code != 0 {
				t.Fatalf("install: %d\n%s", code, out)
			}
			c.MustRun(t, "debseal", "setup", "--mode", mode)
			c.MustRun(t, "debseal", "lock", "--all")
			for _, fault := range []string{"after-unlock", "during-dpkg", "before-relock"} {
				for _, next := range []string{"recover", "next-run"} {
					name := fault + "/" + next
					killDpkg := fault == "during-dpkg" && (mode == "dpkg-hooks" || mode == "apt-hooks")
					var out string
					var code int
					if killDpkg {
						out, code = c.WithCache(t, nil, "sh", "-c", "touch /dstest-kill-dpkg; apt-get -q -y install --reinstall hello "+killer+"; rc=$?; rm -f /dstest-kill-dpkg; exit $rc")
					} else {
						out, code = c.Apt(t, []string{"DEBSEAL_FAULT=" + fault}, "install", "--reinstall", "hello")
					}
					t.Logf("%s: crashed apt run exit %d", name, code)
					if code == 0 {
						t.Fatalf("%s: the crashing run succeeded: nothing crashed\n%s", name, out)
					}
					waitChrootDpkg(t, c)
					if j, _ := filepath.Glob(c.Path("/var/lib/debseal/journal/*.json")); len(j) == 0 {
						// apt runs its Post-Invoke even after dpkg died:
						// then debseal relocked at once, nothing to recover.
						if !(killDpkg && mode == "apt-hooks") {
							t.Fatalf("%s: no journal left by the crash\n%s", name, out)
						}
					}
					switch next {
					case "recover":
						if out, code := c.Run(t, nil, "debseal", "recover"); code != 0 {
							t.Fatalf("%s: recover: exit %d\n%s", name, code, out)
						}
					case "next-run":
						// The next run: after dpkg itself died, apt refuses
						// to run before "dpkg --configure -a", so that is
						// the next run; otherwise an apt run about another
						// package.
						if killDpkg {
							if out, code := c.Run(t, nil, configureAll(mode)...); code != 0 {
								t.Fatalf("%s: next run (%v): exit %d\n%s", name, configureAll(mode), code, out)
							}
						} else if out, code := c.Apt(t, nil, "install", "--reinstall", "sed"); code != 0 {
							t.Fatalf("%s: next apt run: exit %d\n%s", name, code, out)
						}
					}
					if j, _ := filepath.Glob(c.Path("/var/lib/debseal/journal/*.json")); len(j) > 0 {
						t.Errorf("%s: journals left after recovery: %v", name, j)
					}
					// Right after recovery: every configured package is
					// locked (hello itself may be left unconfigured).
					checkLocked(t, c, name+" (after recovery)")
					// dpkg may have been stopped half-way by the crash:
					// finish as an admin would (dpkg --configure -a, then
					// the apt run again), then check everything.
					if out, code := c.Run(t, nil, configureAll(mode)...); code != 0 {
						t.Fatalf("%s: %v: exit %d\n%s", name, configureAll(mode), code, out)
					}
					args := []string{"install", "--reinstall", "hello"}
					if killDpkg {
						args = append(args, killer)
					}
					if out, code := c.Apt(t, nil, args...); code != 0 {
						t.Fatalf("%s: finishing the transaction: exit %d\n%s", name, code, out)
					}
					checkChroot(t, c, name, listedPaths(t, c))
				}
			}
		})
	}
}

// configureAll is "dpkg --configure -a" as the admin runs it in a mode: in
// the apt-hooks and wrapper modes a plain dpkg is not hooked, so through
// debseal's wrapper.
func configureAll(mode string) []string {
	if mode == "apt-hooks" || mode == "wrapper" {
		return []string{"debseal", "dpkg", "--configure", "-a"}
	}
	return []string{"dpkg", "--configure", "-a"}
}

// waitChrootDpkg waits until no dpkg holds the chroot's database lock.
func waitChrootDpkg(t *testing.T, c *testutil.Chroot) {
	s := &testutil.Sandbox{Root: c.Dir, Admindir: c.Path("/var/lib/dpkg")}
	waitDpkgDone(t, s)
}
