package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// dpkg's own functional test suite (the tests/ directory of the dpkg source
// matching the chroot's dpkg, fetched and cached by scripts/dpkgsrc.sh) run
// in a debootstrap chroot, never on the host, in four configurations:
//
//   - plain: dpkg alone, the baseline;
//   - wrapper: every dpkg call of the suite goes through debseal's wrapper
//     script (aptconf/lib/dpkg, so `debseal dpkg`), and everything is
//     sealed (`debseal lock --all` on the suite's instdir and admindir)
//     after every call;
//   - hooks: debseal's dpkg.cfg.d hooks (aptconf/dpkg.cfg.d/debseal) in the
//     chroot, sealed after every call the same way;
//   - control: sealed after every call, with no debseal around dpkg.
//
// Every test that passes plain must pass through debseal; the control
// must fail some, or the locks did not bite and the run proved nothing.
//
// The suite runs dpkg as "dpkg" from $PATH with --instdir=tests/dpkginst
// and --admindir=tests/dpkgdb (Test.mk, not as root): a directory put
// first in PATH interposes on every call, including the calls maintainer
// scripts make (those go straight to dpkg: they run inside the outer
// call's transaction, and sealing there would race dpkg).

// dpkgSuiteEngineKnown are suite tests that fail through debseal because
// of the transaction engine (pkg/seal, cmd/debseal/{hook,dpkg}.go), with
// the failure seen. They are asserted only with DEBSEAL_ENGINE_FIXES=1
// until the engine is fixed; the test logs them on every run, and says so
// when one starts passing.
var dpkgSuiteEngineKnown = map[string]string{
	// (empty) t-multiarch was here: a postrm's "dpkg-divert --remove
	// --rename /m-a/common-file" moved the sealed divert-to file back,
	// which was not unlocked. The engine now unlocks the other end of
	// every diversion a script names.
}

// dpkgSuiteControl are the tests the negative control runs (sealed after
// every dpkg call, no debseal around dpkg): each passes on plain dpkg and
// fails once locked files meet dpkg — a replaced file, a leftover
// directory, a diversion, a directory switched to a symlink and back,
// path filtering. Running all 70 there too would cost a quarter of
// the suite's time and prove nothing more.
var dpkgSuiteControl = []string{"t-file-replaces", "t-dir-leftover-parents", "t-unpack-divert-nowarn",
	"t-switch-dir-to-symlink-abs", "t-symlink-dir", "t-filtering"}

// dpkgSuiteRunner runs the suite's tests one by one in one mode, each in
// a fresh copy of the tests/ tree (so a failure cannot leak into the next
// test), and prints "RESULT test exit-code" lines. The modes run side by
// side, each in its own /root/run-MODE.
const dpkgSuiteRunner = `#!/bin/sh
mode=$1
logs=/root/suite-logs/$mode
run=/root/run-$mode
rm -rf "$logs"; mkdir -p "$logs"
tests=${2:-$(make -s -C /root/dpkg-tests help | sed -n 's/^The available tests are: //p')}
export DEBSEAL_SUITE_MODE=$mode DEBSEAL_SUITE_RUN=$run DEBSEAL_SUITE_LOCKLOG=$logs/lock.log
export PATH=/root/suite-bin:/usr/sbin:/usr/bin:/sbin:/bin
fresh() {
	# Whatever a failed test left locked (the control leaves plenty).
	[ -d "$run" ] && chattr -R -f -i "$run" 2>/dev/null
	rm -rf "$run"
	cp -a /root/dpkg-tests "$run"
}
for t in $tests; do
	fresh
	timeout 1800 make -C "$run/$t" test >"$logs/$t.log" 2>&1
	rc=$?
	# GNU make sometimes loses its child on this loaded machine ("wait: No
	# child processes", in every mode, plain included): once more, said so.
	if [ $rc -ne 0 ] && grep -q 'wait: No child processes' "$logs/$t.log"; then
		echo "RETRY $t"
		mv "$logs/$t.log" "$logs/$t.log.1"
		fresh
		timeout 1800 make -C "$run/$t" test >"$logs/$t.log" 2>&1
		rc=$?
	fi
	echo "RESULT $t $rc"
done
chattr -R -f -i "$run" 2>/dev/null
rm -rf "$run"
`

// dpkgSuiteDpkg is "dpkg" as the suite finds it first in PATH. In the
// hooks mode it passes the lines of debseal's dpkg.cfg.d file as the
// options they are (dpkg reads a configuration file line as the long
// option of that name): the same hooks, for this mode's calls only, so
// the modes can run at the same time.
const dpkgSuiteDpkg = `#!/bin/sh
# Calls from maintainer scripts run inside the outer call: straight to dpkg.
if [ -n "${DPKG_MAINTSCRIPT_NAME:-}" ]; then
	exec /usr/bin/dpkg "$@"
fi
case $DEBSEAL_SUITE_MODE in
wrapper) /root/suite-bin/debseal-wrapper "$@" ;;
hooks) /usr/bin/dpkg "--pre-invoke=$(sed -n 's/^pre-invoke=//p' /root/suite-bin/dpkg.cfg)" \
	"--post-invoke=$(sed -n 's/^post-invoke=//p' /root/suite-bin/dpkg.cfg)" "$@" ;;
*) /usr/bin/dpkg "$@" ;;
esac
rc=$?
if [ "$DEBSEAL_SUITE_MODE" != plain ]; then
	echo "after: dpkg $*" >>"$DEBSEAL_SUITE_LOCKLOG"
	DEBSEAL_REFUSE_HOST_ROOT=1 /usr/sbin/debseal --root "$DEBSEAL_SUITE_RUN/dpkginst" --admindir "$DEBSEAL_SUITE_RUN/dpkgdb" \
		lock --all >>"$DEBSEAL_SUITE_LOCKLOG" 2>&1 || echo "LOCKFAIL $? dpkg $*" >>"$DEBSEAL_SUITE_LOCKLOG"
fi
exit $rc
`

func TestDpkgSuite(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "apt-get", "dpkg-source", "chroot")
	c := testutil.NewChroot(t)
	version := strings.TrimSpace(testutil.ChrootTool(c.Dir)(t, "dpkg-query", "-W", "-f=${Version}", "dpkg"))
	script := filepath.Join(testutil.RepoRoot(t), "scripts", "dpkgsrc.sh")
	out, err := exec.Command(script, version).Output()
	if err != nil {
		t.Fatalf("scripts/dpkgsrc.sh %s: %v", version, err)
	}
	src := strings.TrimSpace(string(out))
	// cp -a: the tree holds FIFOs (t-unpack-fifo), which a copy by
	// reading would block on.
	if out, err := exec.Command("cp", "-a", filepath.Join(src, "tests"), c.Path("/root/dpkg-tests")).CombinedOutput(); err != nil {
		t.Fatalf("copy the suite: %v\n%s", err, out)
	}

	// make is all the suite needs beyond minbase.
	start := time.Now()
	if out, code := c.Apt(t, nil, "update"); code != 0 {
		t.Fatalf("apt-get update: %d\n%s", code, out)
	}
	if out, code := c.Apt(t, nil, "install", "--no-install-recommends", "make"); code != 0 {
		t.Fatalf("apt-get install make: %d\n%s", code, out)
	}
	t.Logf("chroot with make: %v", time.Since(start).Round(time.Millisecond))

	bin, err := os.ReadFile(testutil.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	repo := testutil.RepoRoot(t)
	wrapper, err := os.ReadFile(filepath.Join(repo, "aptconf", "lib", "dpkg"))
	if err != nil {
		t.Fatal(err)
	}
	hooks, err := os.ReadFile(filepath.Join(repo, "aptconf", "dpkg.cfg.d", "debseal"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []struct {
		path string
		data []byte
		mode os.FileMode
	}{
		{"/usr/sbin/debseal", bin, 0o755},
		{"/root/suite-bin/dpkg", []byte(dpkgSuiteDpkg), 0o755},
		{"/root/suite-bin/debseal-wrapper", []byte(strings.ReplaceAll(string(wrapper), "@REAL_DPKG@", "/usr/bin/dpkg")), 0o755},
		{"/root/suite-bin/dpkg.cfg", hooks, 0o644},
		{"/root/suite.sh", []byte(dpkgSuiteRunner), 0o755},
	} {
		if err := os.MkdirAll(filepath.Dir(c.Path(f.path)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Path(f.path), f.data, f.mode); err != nil {
			t.Fatal(err)
		}
	}

	// The packages are built once, with dpkg-deb (which debseal does not
	// interpose on); each mode's copies find them up to date.
	start = time.Now()
	if out, code := c.Run(t, nil, "make", "-C", "/root/dpkg-tests", "build"); code != 0 {
		t.Fatalf("building the suite's packages: exit %d\n%s", code, suiteTail(out, 40))
	}
	t.Logf("suite packages built in %v", time.Since(start).Round(time.Millisecond))

	// The four modes side by side: each has its own tree and dpkg
	// configuration (its PATH wrapper), and the chroot is shared.
	modes := []string{"plain", "wrapper", "hooks", "control"}
	type modeRun struct {
		out  []byte
		err  error
		took time.Duration
	}
	runs := make([]modeRun, len(modes))
	var wg sync.WaitGroup
	start = time.Now()
	for i, mode := range modes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t0 := time.Now()
			args := []string{c.Dir, "/root/suite.sh", mode}
			if mode == "control" {
				args = append(args, strings.Join(dpkgSuiteControl, " "))
			}
			cmd := exec.Command("chroot", args...)
			cmd.Env = c.Env("DEBSEAL_REAL_DPKG=/usr/bin/dpkg")
			runs[i].out, runs[i].err = cmd.CombinedOutput()
			runs[i].took = time.Since(t0)
		}()
	}
	wg.Wait()
	t.Logf("four modes side by side: %v", time.Since(start).Round(time.Second))
	results := map[string]map[string]int{}
	for i, mode := range modes {
		out := string(runs[i].out)
		if runs[i].err != nil {
			t.Fatalf("suite.sh %s: %v\n%s", mode, runs[i].err, suiteTail(out, 40))
		}
		res := map[string]int{}
		for _, l := range strings.Split(out, "\n") {
			if f := strings.Fields(l); len(f) == 3 && f[0] == "RESULT" {
				res[f[1]] = 0
				if f[2] != "0" {
					res[f[1]] = 1
				}
				if f[2] == "124" {
					t.Logf("%s: %s timed out (30 minutes)", mode, f[1])
				}
			}
		}
		if len(res) == 0 {
			t.Fatalf("suite.sh %s ran no test:\n%s", mode, out)
		}
		results[mode] = res
		if retried := suiteGrep(out, "RETRY "); retried != "" {
			t.Logf("%s: run again after make lost its child: %s", mode, strings.Join(strings.Fields(strings.ReplaceAll(retried, "RETRY ", "")), " "))
		}
		pass, fail := suiteSplit(res)
		t.Logf("%s: %d passed, %d failed in %v; failed: %s", mode, len(pass), len(fail),
			runs[i].took.Round(time.Second), strings.Join(fail, " "))
		if b, err := os.ReadFile(c.Path("/root/suite-logs/" + mode + "/lock.log")); err == nil && strings.Contains(string(b), "LOCKFAIL") {
			t.Errorf("%s: debseal lock --all failed after some dpkg calls:\n%s", mode, suiteGrep(string(b), "LOCKFAIL", "debseal:"))
		}
	}

	plainPass, _ := suiteSplit(results["plain"])
	if len(plainPass) < 50 {
		t.Fatalf("only %d tests pass on plain dpkg: the suite did not really run", len(plainPass))
	}
	for _, mode := range []string{"wrapper", "hooks"} {
		for _, name := range plainPass {
			if results[mode][name] == 0 {
				if why, ok := dpkgSuiteEngineKnown[name]; ok {
					t.Logf("%s: %s passes now (known engine failure %q): remove it from dpkgSuiteEngineKnown", mode, name, why)
				}
				continue
			}
			log, _ := os.ReadFile(c.Path("/root/suite-logs/" + mode + "/" + name + ".log"))
			if why, ok := dpkgSuiteEngineKnown[name]; ok && os.Getenv("DEBSEAL_ENGINE_FIXES") != "1" {
				t.Logf("%s: %s fails (known engine failure: %s)", mode, name, why)
				continue
			}
			t.Errorf("%s: %s passes on plain dpkg but fails through debseal:\n%s", mode, name, suiteTail(string(log), 40))
		}
	}
	var bitten []string
	for _, name := range dpkgSuiteControl {
		rc, ran := results["control"][name]
		switch {
		case !ran:
			t.Errorf("control: %s did not run", name)
		case results["plain"][name] != 0:
			t.Errorf("control: %s fails on plain dpkg too: it proves nothing", name)
		case rc == 0:
			t.Errorf("control: %s passes with everything sealed and no debseal around dpkg: the locks did not bite", name)
		default:
			bitten = append(bitten, name)
		}
	}
	t.Logf("control: %d of %d tests fail sealed without debseal: %s", len(bitten), len(dpkgSuiteControl), strings.Join(bitten, " "))

	dpkgSuiteDivertRename(t, c)
}

// dpkgSuiteDivertScript installs the suite's pkg-files, then
// pkg-divert-unpacking (its preinst diverts pkg-files' /test-file to
// /test-file.diverted with --rename), seals, and purges the diverter
// alone: its postrm's "dpkg-divert --remove --rename /test-file" moves
// pkg-files' sealed file back. The suite's own test purges both packages
// in one call, which never renames a sealed file.
const dpkgSuiteDivertScript = `#!/bin/sh
mode=$1 run=/root/div-$1
export DEBSEAL_SUITE_MODE=$mode DEBSEAL_SUITE_RUN=$run DEBSEAL_SUITE_LOCKLOG=/root/div-$mode.lock.log
export PATH=/root/suite-bin:/usr/sbin:/usr/bin:/sbin:/bin
rm -rf "$run"; mkdir -p "$run/dpkginst" "$run/dpkgdb/info" "$run/dpkgdb/updates"
d=/root/dpkg-tests/t-unpack-divert-nowarn
o="--admindir=$run/dpkgdb --instdir=$run/dpkginst --force-script-chrootless --force-not-root --force-unsafe-io --no-debsig --log=/dev/null"
dpkg $o -i $d/pkg-files.deb; echo "RC install $?"
dpkg $o -i $d/pkg-divert-unpacking.deb; echo "RC divert $?"
dpkg $o -P pkg-divert-unpacking; echo "RC purge $?"
[ -f "$run/dpkginst/test-file" ] && echo "RESTORED"
dpkg-divert --admindir="$run/dpkgdb" --list
chattr -R -f -i "$run"; rm -rf "$run"
`

func dpkgSuiteDivertRename(t *testing.T, c *testutil.Chroot) {
	if err := os.WriteFile(c.Path("/root/divert.sh"), []byte(dpkgSuiteDivertScript), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"plain", "wrapper", "hooks", "control"} {
		out, code := c.Run(t, []string{"DEBSEAL_REAL_DPKG=/usr/bin/dpkg"}, "/root/divert.sh", mode)
		if code != 0 {
			t.Fatalf("divert.sh %s: exit %d\n%s", mode, code, out)
		}
		ok := strings.Contains(out, "RC install 0") && strings.Contains(out, "RC divert 0") &&
			strings.Contains(out, "RC purge 0") && strings.Contains(out, "RESTORED") && !strings.Contains(out, "diversion of")
		switch {
		case mode == "control" && ok:
			t.Errorf("divert --remove --rename, control: sealed without debseal and nothing failed:\n%s", out)
		case mode != "control" && !ok:
			t.Errorf("divert --remove --rename, %s: the purge of a package whose postrm renames a sealed file back failed:\n%s", mode, out)
		}
	}
}

// suiteSplit returns the names of the passed and failed tests, sorted.
func suiteSplit(res map[string]int) (pass, fail []string) {
	for name, rc := range res {
		if rc == 0 {
			pass = append(pass, name)
		} else {
			fail = append(fail, name)
		}
	}
	sort.Strings(pass)
	sort.Strings(fail)
	return pass, fail
}

func suiteGrep(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

func suiteTail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
