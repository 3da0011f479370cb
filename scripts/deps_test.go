// Package scripts holds the tests of the shell scripts beside it.
package scripts

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeTools are stand-ins on PATH for the system tools deps.sh asks and
// drives: dpkg-query answers from FAKE_STATUS ("package<TAB>status"
// lines) with the format it is given, apt-get records its arguments in
// FAKE_APT_LOG (and fails an install when FAKE_APT_FAIL is set), id -u
// prints FAKE_UID.
var fakeTools = map[string]string{
	"dpkg-query": `#!/bin/bash
f= rc=0
for a in "$@"; do
	case $a in
	-f=*) f=${a#-f=} ;;
	-*) ;;
	*)
		st=$(awk -F'\t' -v p="$a" '$1 == p {print $2}' "$FAKE_STATUS")
		if [ -z "$st" ]; then echo "dpkg-query: no packages found matching $a" >&2; rc=1; continue; fi
		out=${f//'${Status}'/$st}
		printf '%b' "${out//'${Package}'/$a}"
		;;
	esac
done
exit $rc
`,
	"apt-get": `#!/bin/bash
echo "$*" >>"$FAKE_APT_LOG"
if [ "$1" = install ] && [ -n "${FAKE_APT_FAIL:-}" ]; then echo "E: Unable to locate package $5" >&2; exit 100; fi
`,
	"id": `#!/bin/bash
[ "$1" = -u ] && echo "$FAKE_UID"
`,
}

// readDeps reads deps.txt: the packages of each target, in file order.
func readDeps(t *testing.T) (all []string, byTarget map[string][]string) {
	t.Helper()
	f, err := os.Open("deps.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	byTarget = map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		fs := strings.Fields(line)
		if len(fs) == 0 {
			continue
		}
		if len(fs) == 1 {
			t.Fatalf("deps.txt: %s names no target", fs[0])
		}
		all = append(all, fs[0])
		for _, tg := range fs[1:] {
			byTarget[tg] = append(byTarget[tg], fs[0])
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return all, byTarget
}

func TestDeps(t *testing.T) {
	all, byTarget := readDeps(t)
	for _, p := range []string{"debootstrap", "xfsprogs", "debsums", "time"} {
		if !slices.Contains(all, p) {
			t.Fatalf("deps.txt lacks %s, which the cases below use", p)
		}
	}
	// want lists pkgs as they stand in the target's list: file order.
	inOrder := func(target string, pkgs ...string) string {
		var out []string
		for _, p := range byTarget[target] {
			if slices.Contains(pkgs, p) {
				out = append(out, p)
			}
		}
		return strings.Join(out, " ")
	}
	install := "install -y -qq --no-install-recommends "
	for _, c := range []struct {
		name    string
		args    []string
		uid     string
		absent  []string          // not known to dpkg at all
		status  map[string]string // other states than installed
		ci      bool
		aptFail bool
		rc      int
		apt     []string // apt-get calls, in order
		stdout  string
		stderr  string // a part of it ("" : empty)
	}{
		{name: "root installs only the missing", args: []string{"test"}, uid: "0",
			absent: []string{"xfsprogs", "debsums"}, status: map[string]string{"debootstrap": "deinstall ok config-files"},
			apt:    []string{"update -qq", install + inOrder("test", "debootstrap", "xfsprogs", "debsums")},
			stderr: "deps: installing " + inOrder("test", "debootstrap", "xfsprogs", "debsums")},
		{name: "root with nothing missing does nothing", args: []string{"test"}, uid: "0"},
		{name: "update refreshes the lists anyway", args: []string{"--update", "test"}, uid: "0", apt: []string{"update -qq"}},
		{name: "bench has its own list", args: []string{"bench"}, uid: "0", absent: []string{"time", "xfsprogs"},
			apt: []string{"update -qq", install + "time"}, stderr: "deps: installing time"},
		{name: "not root says what to install", args: []string{"test"}, uid: "1000", absent: []string{"xfsprogs", "time"},
			stderr: "  apt-get install --no-install-recommends xfsprogs\n"},
		{name: "not root under CI fails", args: []string{"test"}, uid: "1000", absent: []string{"xfsprogs"}, ci: true, rc: 1,
			stderr: "apt-get install --no-install-recommends xfsprogs"},
		{name: "dry run prints the missing", args: []string{"--dry-run", "test", "bench"}, uid: "0",
			absent: []string{"time", "xfsprogs"}, stdout: inOrder("test", "xfsprogs") + " time\n"},
		{name: "a failed install shows apt's output", args: []string{"test"}, uid: "0", absent: []string{"xfsprogs"}, aptFail: true,
			apt: []string{"update -qq", install + "xfsprogs"}, stderr: "E: Unable to locate package"},
		{name: "a failed install fails under CI", args: []string{"test"}, uid: "0", absent: []string{"xfsprogs"}, aptFail: true, ci: true, rc: 1,
			apt: []string{"update -qq", install + "xfsprogs"}, stderr: "deps: could not install xfsprogs"},
		{name: "unknown target", args: []string{"tset"}, uid: "0", rc: 1, stderr: "no target tset"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "bin")
			if err := os.Mkdir(bin, 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range fakeTools {
				if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			var status strings.Builder
			for _, p := range all {
				st, ok := c.status[p]
				if !ok {
					st = "install ok installed"
				}
				if !slices.Contains(c.absent, p) {
					status.WriteString(p + "\t" + st + "\n")
				}
			}
			statusFile, aptLog := filepath.Join(dir, "status"), filepath.Join(dir, "apt.log")
			if err := os.WriteFile(statusFile, []byte(status.String()), 0o644); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("./deps.sh", c.args...)
			cmd.Env = []string{"PATH=" + bin + ":" + os.Getenv("PATH"), "FAKE_STATUS=" + statusFile,
				"FAKE_APT_LOG=" + aptLog, "FAKE_UID=" + c.uid}
			if c.ci {
				cmd.Env = append(cmd.Env, "CI=true")
			}
			if c.aptFail {
				cmd.Env = append(cmd.Env, "FAKE_APT_FAIL=1")
			}
			var stdout, stderr strings.Builder
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			rc := 0
			if ee, ok := err.(*exec.ExitError); ok {
				rc = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if rc != c.rc {
				t.Errorf("deps.sh %s: exit %d, want %d\nstderr: %s", strings.Join(c.args, " "), rc, c.rc, stderr.String())
			}
			var apt []string
			if b, err := os.ReadFile(aptLog); err == nil {
				apt = strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			}
			if !slices.Equal(apt, c.apt) {
				t.Errorf("apt-get calls = %q, want %q", apt, c.apt)
			}
			if stdout.String() != c.stdout {
				t.Errorf("stdout = %q, want %q", stdout.String(), c.stdout)
			}
			if c.stderr == "" && stderr.Len() > 0 || !strings.Contains(stderr.String(), c.stderr) {
				t.Errorf("stderr = %q, want it to contain %q", stderr.String(), c.stderr)
			}
		})
	}
}

// make test and make bench install their lists first, and .ci/run goes
// through the same script: the list is kept in one place.
func TestDepsWiring(t *testing.T) {
	for _, c := range []struct{ target, deps, then string }{
		{"test", "scripts/deps.sh test", "scripts/test.sh"},
		{"bench", "scripts/deps.sh bench", "scripts/bench.sh"},
	} {
		cmd := exec.Command("make", "-n", c.target)
		cmd.Dir = ".."
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("make -n %s: %v\n%s", c.target, err, out)
		}
		d, r := strings.Index(string(out), c.deps), strings.Index(string(out), c.then)
		if d < 0 || r < d {
			t.Errorf("make -n %s does not run %q before %q:\n%s", c.target, c.deps, c.then, out)
		}
	}
	ci, err := os.ReadFile("../.ci/run")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(ci), "scripts/deps.sh --update test") || strings.Contains(string(ci), "apt-get install") {
		t.Errorf(".ci/run installs its own list instead of calling scripts/deps.sh --update test")
	}
}
