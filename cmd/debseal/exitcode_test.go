package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// exitTemplate is a sandbox with dstest-base installed, made once per
// test: each case runs on its own copy (dpkg -i takes seconds here).
func exitTemplate(t *testing.T) string {
	t.Helper()
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	return s.Root
}

// copySandbox copies a template sandbox; its flags are cleared when the
// test ends.
func copySandbox(t *testing.T, tmpl string) *testutil.Sandbox {
	t.Helper()
	dst := filepath.Join(testutil.TempRoot(t), "root")
	if out, err := exec.Command("cp", "-a", tmpl, dst).CombinedOutput(); err != nil {
		t.Fatalf("cp -a %s %s: %v\n%s", tmpl, dst, err, out)
	}
	return &testutil.Sandbox{Root: dst, Admindir: filepath.Join(dst, "var/lib/dpkg"), Log: filepath.Join(dst, "var/log/dpkg.log")}
}

// runBinary runs the built debseal (under the name name, when not "")
// with extra environment, stdin as standard input, standard output to
// stdout (a buffer when nil), and returns what it printed and its exit
// code.
func runBinary(t *testing.T, name string, env []string, stdin string, stdout *os.File, args ...string) (out, errOut string, code int) {
	t.Helper()
	bin := testutil.Binary(t)
	if name != "" {
		link := filepath.Join(t.TempDir(), name)
		if err := os.Symlink(bin, link); err != nil {
			t.Fatal(err)
		}
		bin = link
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	var ob, eb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &ob, &eb
	if stdout != nil {
		cmd.Stdout = stdout
	}
	err := cmd.Run()
	var ee *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &ee):
		code = ee.ExitCode()
	default:
		t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	}
	return ob.String(), eb.String(), code
}

// Damage done to a sandbox copy before a case runs.
func tamper(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	if err := os.WriteFile(s.Path("/usr/share/dstest/a/b/c/deep.txt"), []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func badMD5SumsLine(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	p := filepath.Join(s.Admindir, "info", "dstest-base.md5sums")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, append([]byte("Z"), b[1:]...), 0o644); err != nil {
		t.Fatal(err)
	}
}

func badList(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	f, err := os.OpenFile(filepath.Join(s.Admindir, "info", "dstest-base.list"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteString("/usr/../etc/shadow\n"); err != nil {
		t.Fatal(err)
	}
}

func truncatedStatus(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	p := filepath.Join(s.Admindir, "status")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("Status:"))
	if err := os.WriteFile(p, append(b[:i+4:i+4], '\n'), 0o644); err != nil {
		t.Fatal(err)
	}
}

func writeFile(rel, content string) func(t *testing.T, s *testutil.Sandbox) {
	return func(t *testing.T, s *testutil.Sandbox) {
		t.Helper()
		if err := os.MkdirAll(filepath.Dir(s.Path(rel)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path(rel), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func mkdir(rel string) func(t *testing.T, s *testutil.Sandbox) {
	return func(t *testing.T, s *testutil.Sandbox) {
		t.Helper()
		if err := os.MkdirAll(s.Path(rel), 0o755); err != nil {
			t.Fatal(err)
		}
	}
}

func lockAll(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	if out, errs, code := runBinary(t, "", nil, "", nil, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
}

// refuseTampered seals the sandbox with refuse-tampered-upgrade on and
// tampers with a sealed file as root would (chattr -i, write, chattr +i).
func refuseTampered(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	writeFile("/etc/debseal/debseal.conf", "refuse-tampered-upgrade = yes\n")(t, s)
	lockAll(t, s)
	replaceLocked(t, s.Path("/usr/bin/dstest-tool"), true, writeContent([]byte("evil\n")))
}

// exitCase is one command line and the exit code it must end with. In
// args and env, {root} is the sandbox copy's root and {deb} a test package.
type exitCase struct {
	cmd     string // the command whose table row this is ("" for the program's own)
	name    string
	args    []string
	env     []string
	stdin   string
	prep    func(t *testing.T, s *testutil.Sandbox)
	code    int
	stderr  string   // a part of the message
	notErr  string   // what the message must not say
	dpkgArg []string // instead of code: real dpkg's status with these arguments
	asDpkg  bool     // run the binary under the name dpkg
}

// TestExitCodes checks the exit code table through the built binary, per
// command: a usage error, success, and the command's own failure codes.
// Each code a command ends with must be in its --help.
func TestExitCodes(t *testing.T) {
	tmpl := exitTemplate(t)
	const nope = "/nonexistent/debseal.conf"
	cases := []exitCase{
		{cmd: "", name: "no command shows the help", args: []string{}, code: exitOK},
		{cmd: "", name: "unknown command", args: []string{"--root", "{root}", "bogus"}, code: exitUsage, stderr: `unknown command "bogus"`},
		{cmd: "", name: "help is no command", args: []string{"help"}, code: exitUsage, stderr: `unknown command "help"`},
		{cmd: "", name: "unknown global option", args: []string{"--bogus", "status"}, code: exitUsage, stderr: "flag provided but not defined: -bogus"},
		{cmd: "", name: "version", args: []string{"--version"}, code: exitOK},
		{cmd: "", name: "empty --root", args: []string{"--root", "", "status"}, code: exitUsage, stderr: "--root (or DEBSEAL_ROOT) is empty"},
		{cmd: "", name: "empty DEBSEAL_ROOT", env: []string{"DEBSEAL_ROOT="}, args: []string{"status"}, code: exitUsage, stderr: "--root (or DEBSEAL_ROOT) is empty"},
		{cmd: "", name: "empty --admindir", args: []string{"--root", "{root}", "--admindir", "", "status"}, code: exitUsage, stderr: "--admindir is empty"},
		{cmd: "", name: "empty --config", args: []string{"--root", "{root}", "--config", "", "status"}, code: exitUsage, stderr: "--config is empty"},
		{cmd: "", name: "missing --config", args: []string{"--root", "{root}", "--config", nope, "status"}, code: exitUsage, stderr: "--config " + nope + ": no such file"},
		{cmd: "", name: "missing --config, read-only inspect", args: []string{"--config", nope, "inspect", "{deb}"}, code: exitUsage, stderr: "no such file"},
		{cmd: "", name: "default config missing means the defaults", args: []string{"--root", "{root}", "status"}, code: exitOK},
		{cmd: "", name: "given config", prep: writeFile("/cfg/my.conf", "lock-directories = no\n"), args: []string{"--root", "{root}", "--config", "{root}/cfg/my.conf", "status"}, code: exitOK},
		{cmd: "", name: "malformed config", prep: writeFile("/etc/debseal/debseal.conf", "no equals sign\n"), args: []string{"--root", "{root}", "status"}, code: exitError, stderr: "debseal.conf:1"},

		{cmd: "lock", name: "unknown option", args: []string{"--root", "{root}", "lock", "--bogus"}, code: exitUsage, stderr: "lock: flag provided but not defined: -bogus (see debseal lock --help)"},
		{cmd: "lock", name: "no packages", args: []string{"--root", "{root}", "lock"}, code: exitUsage, stderr: "no packages given"},
		{cmd: "lock", name: "success", args: []string{"--root", "{root}", "lock", "--all"}, code: exitOK},
		{cmd: "lock", name: "verify finds a tampered file", prep: tamper, args: []string{"--root", "{root}", "lock", "--verify", "--all"}, code: exitFindings, stderr: "1 files do not match their md5sums"},
		{cmd: "lock", name: "verify meets a bad md5sums line", prep: badMD5SumsLine, args: []string{"--root", "{root}", "lock", "--verify", "--all"}, code: exitFindings,
			stderr: "1 md5sums lines are malformed", notErr: "could not be changed"},
		{cmd: "lock", name: "corrupt database", prep: truncatedStatus, args: []string{"--root", "{root}", "lock", "--all"}, code: exitError, stderr: "status:"},
		{cmd: "lock", name: "a package's list is corrupt", prep: badList, args: []string{"--root", "{root}", "lock", "--all"}, code: exitPartial, stderr: "1 packages could not be locked"},

		{cmd: "unlock", name: "unknown option", args: []string{"--root", "{root}", "unlock", "--bogus"}, code: exitUsage, stderr: "unlock: flag provided"},
		{cmd: "unlock", name: "success", prep: lockAll, args: []string{"--root", "{root}", "unlock", "--all"}, code: exitOK},
		{cmd: "unlock", name: "unknown package", args: []string{"--root", "{root}", "unlock", "no-such-package"}, code: exitError, stderr: "not in the dpkg database"},

		{cmd: "status", name: "unknown option", args: []string{"--root", "{root}", "status", "--bogus"}, code: exitUsage, stderr: "status: flag provided"},
		{cmd: "status", name: "success", args: []string{"--root", "{root}", "status"}, code: exitOK},
		{cmd: "status", name: "an ERROR row", prep: badList, args: []string{"--root", "{root}", "status"}, code: exitPartial, stderr: "1 packages could not be examined"},
		{cmd: "status", name: "an ERROR row, JSON", prep: badList, args: []string{"--root", "{root}", "status", "--json"}, code: exitPartial, stderr: "1 packages could not be examined"},
		{cmd: "status", name: "corrupt database", prep: truncatedStatus, args: []string{"--root", "{root}", "status"}, code: exitError},

		{cmd: "audit", name: "unknown format", args: []string{"--root", "{root}", "audit", "--format", "xml"}, code: exitUsage, stderr: `unknown --format "xml"`},
		{cmd: "audit", name: "unknown option", args: []string{"--root", "{root}", "audit", "--bogus"}, code: exitUsage, stderr: "audit: flag provided"},
		{cmd: "audit", name: "clean", args: []string{"--root", "{root}", "audit"}, code: exitOK},
		{cmd: "audit", name: "findings", prep: tamper, args: []string{"--root", "{root}", "audit"}, code: exitFindings, stderr: "audit: 1 findings"},
		{cmd: "audit", name: "unknown package", args: []string{"--root", "{root}", "audit", "no-such-package"}, code: exitError, stderr: "not installed"},

		{cmd: "manifest", name: "no packages", args: []string{"--root", "{root}", "manifest"}, code: exitUsage, stderr: "no packages given"},
		{cmd: "manifest", name: "success", args: []string{"--root", "{root}", "manifest", "--all"}, code: exitOK},
		{cmd: "manifest", name: "a tampered file", prep: tamper, args: []string{"--root", "{root}", "manifest", "--all"}, code: exitFindings, stderr: "differ from their packages"},
		{cmd: "manifest", name: "a bad md5sums line", prep: badMD5SumsLine, args: []string{"--root", "{root}", "manifest", "--all"}, code: exitFindings, stderr: "1 md5sums lines are malformed"},

		{cmd: "evidence", name: "list, nothing recorded", args: []string{"--root", "{root}", "evidence", "list"}, code: exitOK},
		{cmd: "evidence", name: "unknown subcommand", args: []string{"--root", "{root}", "evidence", "bogus"}, code: exitUsage, stderr: `unknown command "evidence bogus"`},
		{cmd: "evidence", name: "clear what", args: []string{"--root", "{root}", "evidence", "clear"}, code: exitUsage, stderr: "no IDs given"},
		{cmd: "evidence", name: "clear an unknown record", prep: mkdir("/var/lib/debseal/evidence"), args: []string{"--root", "{root}", "evidence", "clear", "nope"}, code: exitError, stderr: "no such event: nope"},
		{cmd: "evidence", name: "a corrupt record", prep: writeFile("/var/lib/debseal/evidence/x.json", "{"), args: []string{"--root", "{root}", "evidence", "list"}, code: exitError, stderr: "x.json is corrupt"},

		{cmd: "recover", name: "extra argument", args: []string{"--root", "{root}", "recover", "now"}, code: exitUsage, stderr: `recover takes no arguments, got ["now"]`},
		{cmd: "recover", name: "success", args: []string{"--root", "{root}", "recover"}, code: exitOK},
		{cmd: "recover", name: "corrupt journal", prep: writeFile("/var/lib/debseal/journal/wrapper-1-1.json", "{not json"), args: []string{"--root", "{root}", "recover"}, code: exitPartial, stderr: "corrupt"},

		{cmd: "setup", name: "extra argument", args: []string{"--root", "{root}", "setup", "wrapper"}, code: exitUsage, stderr: "setup takes no arguments"},
		{cmd: "setup", name: "unknown mode", args: []string{"--root", "{root}", "setup", "--mode", "bogus"}, code: exitUsage, stderr: `unknown mode "bogus"`},
		{cmd: "setup", name: "success", args: []string{"--root", "{root}", "setup"}, code: exitOK},
		{cmd: "setup", name: "cannot write", prep: writeFile("/etc/dpkg/dpkg.cfg.d", ""), args: []string{"--root", "{root}", "setup"}, code: exitError, stderr: "dpkg.cfg.d"},

		{cmd: "teardown", name: "extra argument", args: []string{"--root", "{root}", "teardown", "all"}, code: exitUsage, stderr: "teardown takes no arguments"},
		{cmd: "teardown", name: "success", args: []string{"--root", "{root}", "teardown"}, code: exitOK},
		{cmd: "teardown", name: "unreadable mode file", prep: mkdir("/var/lib/debseal/mode"), args: []string{"--root", "{root}", "teardown"}, code: exitError, stderr: "mode"},

		{cmd: "inspect", name: "no file", args: []string{"inspect"}, code: exitUsage, stderr: "no FILE.deb given"},
		{cmd: "inspect", name: "unknown option", args: []string{"inspect", "--bogus", "{deb}"}, code: exitUsage, stderr: "inspect: flag provided"},
		{cmd: "inspect", name: "success", args: []string{"inspect", "{deb}"}, code: exitOK},
		{cmd: "inspect", name: "missing file", args: []string{"inspect", "/nonexistent.deb"}, code: exitError, stderr: "no such file"},

		// The wrapper exits with dpkg's status, whatever it is; only
		// debseal's own command line is debseal's to refuse.
		{cmd: "dpkg", name: "roots disagree", args: []string{"--root", "{root}", "dpkg", "--root=/elsewhere", "-l"}, code: exitUsage, stderr: "give one of them"},
		{cmd: "dpkg", name: "dpkg's 0", args: []string{"dpkg", "--compare-versions", "1", "lt", "2"}, dpkgArg: []string{"--compare-versions", "1", "lt", "2"}},
		{cmd: "dpkg", name: "dpkg's 1", args: []string{"dpkg", "--compare-versions", "2", "lt", "1"}, dpkgArg: []string{"--compare-versions", "2", "lt", "1"}},
		{cmd: "dpkg", name: "dpkg's usage error", args: []string{"dpkg", "--bogus"}, dpkgArg: []string{"--bogus"}},
		{cmd: "dpkg", name: "dpkg's unknown package", args: []string{"--root", "{root}", "dpkg", "-L", "no-such-package"}, dpkgArg: []string{"--root={root}", "-L", "no-such-package"}},
		{cmd: "dpkg", name: "as dpkg, 1", asDpkg: true, args: []string{"--compare-versions", "2", "lt", "1"}, dpkgArg: []string{"--compare-versions", "2", "lt", "1"}},
		{cmd: "dpkg", name: "as dpkg, usage error", asDpkg: true, args: []string{"--bogus"}, dpkgArg: []string{"--bogus"}},
		{cmd: "dpkg", name: "as dpkg, help", asDpkg: true, args: []string{"--help"}, dpkgArg: []string{"--help"}},
		{cmd: "dpkg", name: "refuses a tampered file", prep: refuseTampered, args: []string{"--root", "{root}", "dpkg", "-i", "{deb}"}, code: exitRefused,
			stderr: "refusing to let dpkg replace 1 tampered sealed files"},

		// Hooks: a pre hook that fails stops dpkg (any non-zero status),
		// a post hook never fails it; their root is dpkg's or apt's.
		{cmd: "hook", name: "unknown hook", args: []string{"hook", "bogus"}, code: exitUsage, stderr: `unknown command "hook bogus"`},
		{cmd: "hook", name: "disabled", env: []string{"DEBSEAL_DISABLE=1"}, args: []string{"hook", "dpkg-pre"}, code: exitOK},
		{cmd: "hook", name: "empty DEBSEAL_ROOT is apt's root", env: []string{"DEBSEAL_DISABLE=1", "DEBSEAL_ROOT="}, args: []string{"hook", "apt-pre-invoke"}, code: exitOK},
		{cmd: "hook", name: "pre hook fails", prep: lockAll, env: []string{"DEBSEAL_ROOT={root}"}, stdin: "VERSION 9\n", args: []string{"hook", "apt-pre-install-pkgs"}, code: exitError, stderr: "stopping before dpkg changes anything"},
		{cmd: "hook", name: "post hook never fails", prep: lockAll, env: []string{"DEBSEAL_ROOT={root}"}, args: []string{"hook", "apt-post-invoke"}, code: exitOK},
	}
	deb := testutil.Deb(t, "dstest-base_1.0_all")
	for _, tc := range cases {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			s := copySandbox(t, tmpl)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			subst := func(in []string) []string {
				var out []string
				for _, a := range in {
					a = strings.ReplaceAll(a, "{root}", s.Root)
					if a == "{deb}" {
						a = deb
					}
					out = append(out, a)
				}
				return out
			}
			args, env := subst(tc.args), subst(tc.env)
			name := ""
			if tc.asDpkg {
				name = "dpkg"
			}
			want := tc.code
			if tc.dpkgArg != nil {
				c := exec.Command("dpkg", subst(tc.dpkgArg)...)
				c.Env = append(os.Environ(), env...)
				_, want = testutil.Output(t, c)
			}
			out, errOut, code := runBinary(t, name, env, tc.stdin, nil, args...)
			if code != want || !strings.Contains(errOut, tc.stderr) || (tc.notErr != "" && strings.Contains(errOut, tc.notErr)) {
				t.Errorf("debseal %q: exit %d, stderr:\n%s\nwant exit %d, stderr with %q (and not %q)", args, code, errOut, want, tc.stderr, tc.notErr)
			}
			if code == exitUsage && (strings.Contains(out, "USAGE:") || strings.Contains(errOut, "USAGE:")) {
				t.Errorf("debseal %q: a usage error printed the help:\n%s%s", args, out, errOut)
			}
			if tc.dpkgArg == nil && tc.cmd != "dpkg" && tc.cmd != "hook" && !documented(tc.cmd, code) {
				t.Errorf("debseal %q exits %d, which debseal %s --help does not list:\n%s", args, code, tc.cmd, exitHelp(tc.cmd))
			}
		})
	}
	// Every command has its rows.
	for _, c := range commands() {
		if !slices.ContainsFunc(cases, func(tc exitCase) bool { return tc.cmd == c.Name }) {
			t.Errorf("command %s has no case in TestExitCodes", c.Name)
		}
	}
}

// documented says whether a command's --help lists code.
func documented(cmd string, code int) bool {
	return strings.Contains(exitHelp(cmd)+"\n", fmt.Sprintf("\n   %-3d ", code))
}

// TestStdoutWriteErrors: every command that writes to standard output
// fails (exit 2, with a message) when that cannot be written, here to
// /dev/full; the wrapper keeps dpkg's own status.
func TestStdoutWriteErrors(t *testing.T) {
	full, err := os.OpenFile("/dev/full", os.O_WRONLY, 0)
	if err != nil {
		testutil.Skip(t, "no /dev/full: %v", err)
	}
	defer full.Close()
	tmpl := exitTemplate(t)
	cases := []exitCase{
		{name: "help", args: []string{"--help"}},
		{name: "-h", args: []string{"-h"}},
		{name: "no command", args: []string{}},
		{name: "version", args: []string{"--version"}},
		{name: "-v", args: []string{"-v"}},
		{cmd: "status", args: []string{"--root", "{root}", "status"}},
		{cmd: "status", name: "json", args: []string{"--root", "{root}", "status", "--json"}},
		{cmd: "status", name: "with an ERROR row", prep: badList, args: []string{"--root", "{root}", "status"}},
		{cmd: "audit", name: "text", prep: tamper, args: []string{"--root", "{root}", "audit"}},
		{cmd: "audit", name: "clean", args: []string{"--root", "{root}", "audit"}},
		{cmd: "audit", name: "dpkg", prep: tamper, args: []string{"--root", "{root}", "audit", "--format", "dpkg"}},
		{cmd: "audit", name: "json", args: []string{"--root", "{root}", "audit", "--format", "json"}},
		{cmd: "audit", name: "prometheus", args: []string{"--root", "{root}", "audit", "--format", "prometheus"}},
		{cmd: "lock", args: []string{"--root", "{root}", "lock", "--all"}},
		{cmd: "lock", name: "dry run", args: []string{"--root", "{root}", "lock", "--dry-run", "--all"}},
		{cmd: "lock", name: "verify findings", prep: tamper, args: []string{"--root", "{root}", "lock", "--verify", "--all"}},
		{cmd: "unlock", prep: lockAll, args: []string{"--root", "{root}", "unlock", "--all"}},
		{cmd: "manifest", args: []string{"--root", "{root}", "manifest", "--all"}},
		{cmd: "recover", args: []string{"--root", "{root}", "recover"}},
		{cmd: "evidence", args: []string{"--root", "{root}", "evidence", "list"}},
		{cmd: "setup", args: []string{"--root", "{root}", "setup"}},
		{cmd: "teardown", args: []string{"--root", "{root}", "teardown"}},
		{cmd: "inspect", args: []string{"inspect", "{deb}"}},
		{cmd: "inspect", name: "json", args: []string{"inspect", "--json", "{deb}"}},
		{cmd: "hook", name: "no subcommand", args: []string{"hook"}},
	}
	for _, c := range commands() {
		if c.Name != "dpkg" { // dpkg's --help is dpkg's
			cases = append(cases, exitCase{cmd: c.Name, name: "help", args: []string{c.Name, "--help"}})
		}
	}
	deb := testutil.Deb(t, "dstest-base_1.0_all")
	for _, tc := range cases {
		t.Run(tc.cmd+"/"+tc.name, func(t *testing.T) {
			s := copySandbox(t, tmpl)
			if tc.prep != nil {
				tc.prep(t, s)
			}
			var args []string
			for _, a := range tc.args {
				if a == "{deb}" {
					a = deb
				}
				args = append(args, strings.ReplaceAll(a, "{root}", s.Root))
			}
			_, errOut, code := runBinary(t, "", nil, "", full, args...)
			if code != exitError || !strings.Contains(errOut, "debseal: writing to standard output: ") || strings.Count(errOut, "no space left on device") != 1 {
				t.Errorf("debseal %q > /dev/full: exit %d, stderr:\n%s\nwant exit %d and one message saying standard output could not be written", args, code, errOut, exitError)
			}
		})
	}
	for _, c := range commands() {
		if c.Name != "dpkg" && !slices.ContainsFunc(cases, func(tc exitCase) bool { return tc.cmd == c.Name && tc.name != "help" }) {
			t.Errorf("command %s has no case in TestStdoutWriteErrors", c.Name)
		}
	}
	t.Run("dpkg", func(t *testing.T) {
		for _, asDpkg := range []bool{false, true} {
			args, name := []string{"dpkg", "--version"}, ""
			if asDpkg {
				args, name = []string{"--version"}, "dpkg"
			}
			c := exec.Command("dpkg", "--version")
			c.Stdout = full
			want := 0
			var ee *exec.ExitError
			if err := c.Run(); errors.As(err, &ee) {
				want = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if _, errOut, code := runBinary(t, name, nil, "", full, args...); code != want || strings.Contains(errOut, "debseal:") {
				t.Errorf("%s %q > /dev/full: exit %d, stderr %q; want dpkg's own %d, and nothing from debseal", name, args, code, errOut, want)
			}
		}
	})
}

// TestExitTableDocumented: the man page's EXIT STATUS and the README list
// the codes of the table, and every command's --help shows its rows.
func TestExitTableDocumented(t *testing.T) {
	man, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "docs", "debseal.8.md"))
	if err != nil {
		t.Fatal(err)
	}
	sec := string(man)
	i := strings.Index(sec, "# EXIT STATUS")
	if i < 0 {
		t.Fatal("debseal.8.md has no EXIT STATUS section")
	}
	sec = sec[i:]
	if j := strings.Index(sec[1:], "\n# "); j >= 0 {
		sec = sec[:j+1]
	}
	readme, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var manCodes []string
	for _, m := range regexp.MustCompile(`(?m)^\*\*(\d+)\*\*`).FindAllStringSubmatch(sec, -1) {
		manCodes = append(manCodes, m[1])
	}
	var want []string
	for _, r := range exitTable {
		want = append(want, fmt.Sprint(r.code))
		if !regexp.MustCompile("`" + fmt.Sprint(r.code) + "`").Match(readme) {
			t.Errorf("README.md does not list exit code %d", r.code)
		}
	}
	if !slices.Equal(manCodes, want) {
		t.Errorf("debseal.8.md EXIT STATUS lists codes %v, the table %v", manCodes, want)
	}
	for _, c := range commands() {
		if c.Name == "dpkg" || c.Hidden {
			continue
		}
		if !strings.Contains(c.Description, exitHelp(c.Name)) {
			t.Errorf("debseal %s --help lacks its exit codes", c.Name)
		}
	}
}
