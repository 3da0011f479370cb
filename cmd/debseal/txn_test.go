package main

import (
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/testutil"
)

// runner runs one dpkg command (dpkg's arguments without the sandbox
// options) and returns its output and exit code.
type runner func(t *testing.T, env []string, args ...string) (string, int)

func runCmd(t *testing.T, env []string, name string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(os.Environ(), env...)
	return testutil.Output(t, cmd)
}

// plainDpkg is dpkg on a sandbox, without debseal.
func plainDpkg(s *testutil.Sandbox) runner {
	return func(t *testing.T, env []string, args ...string) (string, int) {
		return runCmd(t, env, "dpkg", append(s.Args(), args...)...)
	}
}

// hookedDpkg is dpkg with debseal's pre-/post-invoke hooks, as the
// dpkg.cfg.d snippet installs them (given on the command line here: the
// host's /etc/dpkg is not the sandbox's).
func hookedDpkg(s *testutil.Sandbox, bin string) runner {
	return func(t *testing.T, env []string, args ...string) (string, int) {
		hooks := []string{"--pre-invoke=" + bin + " hook dpkg-pre", "--post-invoke=" + bin + " hook dpkg-post"}
		return runCmd(t, env, "dpkg", append(append(s.Args(), hooks...), args...)...)
	}
}

// wrappedDpkg is "debseal dpkg".
func wrappedDpkg(s *testutil.Sandbox, bin string) runner {
	return func(t *testing.T, env []string, args ...string) (string, int) {
		return runCmd(t, append(env, "DEBSEAL_REAL_DPKG=/usr/bin/dpkg"), bin, append([]string{"dpkg"}, append(s.Args(), args...)...)...)
	}
}

// tree lists every regular file and symlink under root (relative), except
// dpkg's and debseal's own state and logs: two systems that went through
// the same dpkg operations must have the same tree.
func tree(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := "/" + strings.TrimPrefix(strings.TrimPrefix(p, root), "/")
		if d.IsDir() && (rel == "/var/lib/dpkg" || rel == "/var/lib/debseal" || rel == "/var/log") {
			return filepath.SkipDir
		}
		if !d.IsDir() {
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func diffLists(a, b []string) (onlyA, onlyB []string) {
	m := map[string]int{}
	for _, x := range a {
		m[x] |= 1
	}
	for _, x := range b {
		m[x] |= 2
	}
	for x, v := range m {
		switch v {
		case 1:
			onlyA = append(onlyA, x)
		case 2:
			onlyB = append(onlyB, x)
		}
	}
	sort.Strings(onlyA)
	sort.Strings(onlyB)
	return
}

// checkSealed verifies the invariants after a step: dpkg --audit is
// empty, the tree equals the twin's, and exactly the dpkg-derived set of
// files is immutable.
func checkSealed(t *testing.T, step string, s, twin *testutil.Sandbox) {
	t.Helper()
	out, _ := runCmd(t, nil, "dpkg", "--admindir="+s.Admindir, "--audit")
	tout, _ := runCmd(t, nil, "dpkg", "--admindir="+twin.Admindir, "--audit")
	if out != tout {
		t.Errorf("%s: dpkg --audit:\n%s\nthe unlocked twin's:\n%s", step, out, tout)
	}
	if a, b := diffLists(tree(t, s.Root), tree(t, twin.Root)); len(a)+len(b) > 0 {
		t.Errorf("%s: tree differs from the unlocked twin: only sealed %v, only twin %v", step, a, b)
	}
	want, conffiles := testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
	got := immutableFiles(t, s.Root)
	if missing, extra := diffLists(want, got); len(missing)+len(extra) > 0 {
		t.Errorf("%s: not locked: %v; locked but should not be: %v", step, missing, extra)
	}
	for _, c := range conffiles {
		if p := s.Path(c); fileExists(p) && testutil.IsImmutable(t, p) {
			t.Errorf("%s: conffile %s is locked", step, c)
		}
	}
}

func fileExists(p string) bool { _, err := os.Lstat(p); return err == nil }

type step struct {
	name string
	args []string
}

// scenario is the sequence every integration runs: installs and upgrades
// that replace and drop locked files, a --rename diversion and a
// statoverride of another package's locked file, a file trigger, an
// interrupted unpack finished by --configure -a, removal and purge.
func scenario(t *testing.T) []step {
	deb := func(n string) string { return testutil.Deb(t, n) }
	return []step{
		{"install base and multi-arch", []string{"-i", deb("dstest-base_1.0_all"), deb("dstest-multi_1.0_amd64"), deb("dstest-multi_1.0_i386")}},
		{"reinstall base", []string{"-i", deb("dstest-base_1.0_all")}},
		{"diverter renames a locked file", []string{"-i", deb("dstest-diverter_1.0_all")}},
		{"statoverride on a locked file", []string{"-i", deb("dstest-override_1.0_all")}},
		{"plugin fires a file trigger", []string{"-i", deb("dstest-plugin_1.0_all")}},
		{"--force-overwrite of a locked file, archive without md5sums", []string{"--force-overwrite", "-i", deb("dstest-nomd5_1.0_all")}},
		{"remove the overwriting package", []string{"-P", "dstest-nomd5"}},
		{"reinstall base after the overwrite", []string{"-i", deb("dstest-base_1.0_all")}},
		{"upgrade drops a file", []string{"-i", deb("dstest-base_2.0_all")}},
		{"downgrade", []string{"-i", deb("dstest-base_1.0_all")}},
		{"unpack only", []string{"--unpack", deb("dstest-base_2.0_all")}},
		{"configure -a", []string{"--configure", "-a"}},
		{"remove diverter (renames back)", []string{"-r", "dstest-diverter"}},
		{"purge override", []string{"-P", "dstest-override"}},
		{"remove multi-arch", []string{"-r", "dstest-multi:i386", "dstest-multi:amd64"}},
		{"purge plugin and base", []string{"-P", "dstest-plugin", "dstest-base"}},
		{"install again", []string{"-i", deb("dstest-base_1.0_all"), deb("dstest-plugin_1.0_all")}},
	}
}

func TestTransactionsSandbox(t *testing.T) {
	bin := testutil.Binary(t)
	for _, mode := range []string{"dpkg-hooks", "wrapper"} {
		t.Run(mode, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			twin := testutil.NewSandbox(t)
			run := hookedDpkg(s, bin)
			if mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			twinRun := plainDpkg(twin)
			// Seal the (empty) system: new packages get locked as they arrive.
			if out, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatalf("lock --all: %d %s", code, out)
			}
			for _, st := range scenario(t) {
				out, code := run(t, nil, st.args...)
				tout, tcode := twinRun(t, nil, st.args...)
				if code != tcode {
					t.Fatalf("%s: exit %d, unlocked twin exits %d\n--- sealed:\n%s\n--- twin:\n%s", st.name, code, tcode, out, tout)
				}
				if strings.Contains(out, "debseal: warning") || strings.Contains(out, "debseal: error") {
					t.Errorf("%s: debseal complained:\n%s", st.name, out)
				}
				checkSealed(t, st.name, s, twin)
			}
			log, _ := os.ReadFile(s.Path("/var/log/debseal.log"))
			if strings.Contains(string(log), "orphan") || strings.Contains(string(log), "error") {
				t.Errorf("debseal.log reports problems:\n%s", log)
			}
		})
	}
}

// TestWithoutDebsealFails is the negative control: the same upgrade and
// removal on a locked tree without debseal's integration fail or leave
// orphans. It proves the scenario can fail.
func TestWithoutDebsealFails(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if _, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatal("lock --all failed")
	}
	out, code := s.Dpkg(t, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
	if code == 0 || !strings.Contains(out, "Operation not permitted") {
		t.Errorf("upgrade of a locked package without debseal: exit %d (want failure)\n%s", code, out)
	}
	out, code = s.Dpkg(t, "-r", "dstest-base")
	// dpkg's silent failure: exit 0, files left behind, owned by nobody.
	if code == 0 && !fileExists(s.Path("/usr/bin/dstest-tool")) {
		t.Errorf("remove of a locked package without debseal removed the files:\n%s", out)
	}
	if !fileExists(s.Path("/usr/bin/dstest-tool")) {
		t.Error("expected dpkg to leave the locked file behind")
	}
}

// TestCrashRecovery kills debseal at each point of a transaction and
// checks that recovery (by debseal recover, or simply by the next dpkg
// run) leaves every package file locked and nothing lost.
func TestCrashRecovery(t *testing.T) {
	bin := testutil.Binary(t)
	type crash struct {
		name, fault, mode string
		next              string // "recover" or "next-run"
	}
	var crashes []crash
	for _, mode := range []string{"dpkg-hooks", "wrapper"} {
		for _, f := range []string{"after-unlock", "during-dpkg", "before-relock"} {
			if f == "during-dpkg" && mode != "wrapper" {
				continue // only the wrapper runs dpkg as its child
			}
			for _, next := range []string{"recover", "next-run"} {
				crashes = append(crashes, crash{mode + "/" + f + "/" + next, f, mode, next})
			}
		}
	}
	for _, c := range crashes {
		t.Run(c.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			twin := testutil.NewSandbox(t)
			run := hookedDpkg(s, bin)
			if c.mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			for _, sb := range []*testutil.Sandbox{s, twin} {
				sb.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
			}
			if _, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatal("lock --all failed")
			}
			// The crashing run: an upgrade of dstest-base.
			out, code := run(t, []string{"DEBSEAL_FAULT=" + c.fault}, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
			t.Logf("crashed run: exit %d\n%s", code, out)
			// A wrapper killed while dpkg runs leaves dpkg running on its
			// own: wait for it, as the admin would.
			waitDpkgDone(t, s)
			journals, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json"))
			if len(journals) == 0 {
				t.Fatalf("no journal left by the crashed run")
			}
			if len(immutableFiles(t, s.Root)) == len(wantAfterLock(t, s)) {
				t.Fatalf("the crash left nothing unlocked: the test proves nothing")
			}
			switch c.next {
			case "recover":
				out, _, code := debseal(t, "--root", s.Root, "recover")
				if code != 0 {
					t.Fatalf("recover: exit %d\n%s", code, out)
				}
			case "next-run":
				// A run about another package: only recovery can relock
				// what the crash left unlocked.
				out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-multi_1.0_amd64"))
				if code != 0 {
					t.Fatalf("next run: exit %d\n%s", code, out)
				}
			}
			if j, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json")); len(j) > 0 {
				t.Errorf("journals left: %v", j)
			}
			want, _ := testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
			if missing, extra := diffLists(want, immutableFiles(t, s.Root)); len(missing)+len(extra) > 0 {
				t.Errorf("after %s: not locked %v, wrongly locked %v", c.next, missing, extra)
			}
			// Nothing lost: finishing the upgrade (again) works and gives
			// the same system as the unlocked twin.
			out, code = run(t, nil, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
			if code != 0 {
				t.Fatalf("upgrade after recovery: exit %d\n%s", code, out)
			}
			twin.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
			checkSealed(t, "after recovery", s, twin)
		})
	}
}

// wantAfterLock is the expected locked set right now (dpkg-derived).
func wantAfterLock(t *testing.T, s *testutil.Sandbox) []string {
	want, _ := testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
	return want
}

// waitDpkgDone waits until no dpkg holds the sandbox's database lock.
func waitDpkgDone(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	for i := 0; i < 300; i++ {
		if holder, _ := seal.DpkgLockHolder(s.Admindir); holder == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatal("dpkg still runs after 30 s")
}
