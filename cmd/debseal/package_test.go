package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// buildDeb builds debseal's package at version from the test binary.
func buildDeb(t *testing.T, version, out string) string {
	t.Helper()
	testutil.RequireCommand(t, "dpkg-deb")
	cmd := exec.Command(filepath.Join(testutil.RepoRoot(t), "scripts", "mkdeb.sh"), testutil.Binary(t), version, out)
	cmd.Dir = testutil.RepoRoot(t)
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("mkdeb.sh: %v\n%s", err, b)
	}
	return strings.TrimSpace(string(b[strings.LastIndexByte(strings.TrimSpace(string(b)), '\n')+1:]))
}

// TestDebianPackage installs debseal's own .deb with apt in a chroot,
// turns locking on with the documented switch, runs the integration
// scenario, upgrades debseal to a newer build while its own files are
// locked, removes the binary by hand, checks the units, and purges it.
func TestDebianPackage(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "debootstrap", "lsattr", "chroot")
	dist := t.TempDir()
	v1 := buildDeb(t, "0.1.9000", dist)
	v2 := buildDeb(t, "0.1.9001", dist)

	// lintian, where it applies (a binary package built without a source
	// package): no errors, no warnings.
	testutil.RequireCommand(t, "lintian")
	if out, err := exec.Command("lintian", "--fail-on", "error,warning", v1).CombinedOutput(); err != nil {
		t.Errorf("lintian %s: %v\n%s", filepath.Base(v1), err, out)
	}

	c := e2eChroot(t)
	os.Remove(c.Path("/usr/sbin/debseal")) // the package installs it
	for _, d := range []string{v1, v2} {
		b, err := os.ReadFile(d)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(c.Path("/root/"+filepath.Base(d)), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	step := func(name string, args ...string) string {
		t.Helper()
		out, code := c.WithCache(t, nil, args...)
		if code != 0 {
			t.Fatalf("%s: exit %d\n%s", name, code, out)
		}
		return out
	}

	// systemd first, so that the postinst enables the units as on a real
	// system.
	step("install systemd", "apt-get", "-q", "-y", "install", "--no-install-recommends", "systemd")
	step("install the package", "apt-get", "-q", "-y", "install", "/root/"+filepath.Base(v1))
	for _, l := range []string{"/etc/systemd/system/timers.target.wants/debseal-audit.timer", "/etc/systemd/system/sysinit.target.wants/debseal-recover.service"} {
		if _, err := os.Lstat(c.Path(l)); err != nil {
			t.Errorf("the postinst did not enable the unit: %v", err)
		}
	}
	if _, err := os.Stat(c.Path("/etc/dpkg/dpkg.cfg.d/debseal")); err != nil {
		t.Fatalf("postinst did not set up the dpkg hooks: %v", err)
	}
	if got := immutableFiles(t, c.Dir); len(got) != 0 {
		t.Errorf("files locked without opting in: %v", got[:min(5, len(got))])
	}

	// Opt in, as documented: SEAL_ON_INSTALL=yes, then reconfigure.
	def, err := os.ReadFile(c.Path("/etc/default/debseal"))
	if err != nil {
		t.Fatal(err)
	}
	def = regexp.MustCompile(`(?m)^SEAL_ON_INSTALL=no$`).ReplaceAll(def, []byte("SEAL_ON_INSTALL=yes"))
	if err := os.WriteFile(c.Path("/etc/default/debseal"), def, 0o644); err != nil {
		t.Fatal(err)
	}
	step("dpkg-reconfigure", "dpkg-reconfigure", "debseal")
	checkChroot(t, c, "after opting in", listedPaths(t, c))
	if !testutil.IsImmutable(t, c.Path("/usr/sbin/debseal")) {
		t.Error("debseal's own binary is not locked")
	}

	runSteps(t, c, e2eSteps("dpkg-hooks"))

	// Upgrade debseal itself while its files are locked.
	before := listedPaths(t, c)
	step("upgrade debseal", "apt-get", "-q", "-y", "install", "/root/"+filepath.Base(v2))
	if v := testutil.ChrootTool(c.Dir)(t, "dpkg-query", "-W", "-f=${Version}", "debseal"); v != "0.1.9001" {
		t.Errorf("after the upgrade debseal is %s", v)
	}
	checkChroot(t, c, "after upgrading debseal", before)

	// The units are valid.
	out, code := c.Run(t, nil, "systemd-analyze", "verify",
		"/usr/lib/systemd/system/debseal-recover.service",
		"/usr/lib/systemd/system/debseal-audit.service",
		"/usr/lib/systemd/system/debseal-audit.timer")
	if code != 0 {
		t.Errorf("systemd-analyze verify: exit %d\n%s", code, out)
	}
	if strings.Contains(out, "debseal") {
		t.Errorf("systemd-analyze verify complains about debseal's units:\n%s", out)
	}

	// The binary removed by hand while the hook configuration stays and
	// files are sealed, in every mode: what goes through debseal stops
	// before dpkg changes anything (it would fail half-way on the locked
	// files) and says why; the rest, and everything with
	// DEBSEAL_DISABLE=1, works (new packages install and go; what is
	// locked stays locked). Not sealed, the hooks are silent no-ops
	// (aptconf's tests).
	if err := os.Rename(c.Path("/usr/sbin/debseal"), c.Path("/root/debseal.moved")); err == nil {
		t.Error("the locked binary could be moved")
	}
	const why = "/usr/sbin/debseal is missing, but files under / are still locked"
	for _, mode := range []struct {
		name           string
		dpkgStops, apt bool // whether dpkg -i by hand, and apt, go through debseal
	}{{"dpkg-hooks", true, true}, {"apt-hooks", false, true}, {"wrapper", false, true}, {"divert", true, true}} {
		c.MustRun(t, "debseal", "setup", "--mode", mode.name)
		if out, code := c.Run(t, nil, "debseal", "unlock", "debseal"); code != 0 {
			t.Fatalf("unlock debseal: %d %s", code, out)
		}
		if err := os.Rename(c.Path("/usr/sbin/debseal"), c.Path("/root/debseal.moved")); err != nil {
			t.Fatal(err)
		}
		if out, code := c.Run(t, nil, "dpkg", "-i", localDebs+"/dstest-multi_1.0_amd64.deb"); mode.dpkgStops != (code != 0) || mode.dpkgStops && !strings.Contains(out, why) {
			t.Errorf("%s: dpkg -i without the debseal binary, sealed: exit %d (stop expected: %v)\n%s", mode.name, code, mode.dpkgStops, out)
		}
		if _, err := os.Stat(c.Path("/usr/share/doc/dstest-multi/README")); mode.dpkgStops && err == nil {
			t.Errorf("%s: dpkg unpacked although the hook stopped it", mode.name)
		}
		if out, code := c.Apt(t, nil, "install", "sl"); code == 0 || !strings.Contains(out, why) {
			t.Errorf("%s: apt install without the debseal binary, sealed: exit %d, want a stop that says why\n%s", mode.name, code, out)
		}
		disable := []string{"DEBSEAL_DISABLE=1"}
		if out, code := c.Run(t, disable, "dpkg", "-i", localDebs+"/dstest-multi_1.0_amd64.deb"); code != 0 {
			t.Errorf("%s: DEBSEAL_DISABLE=1 dpkg -i without the debseal binary: exit %d\n%s", mode.name, code, out)
		}
		if out, code := c.Run(t, disable, "dpkg", "-P", "dstest-multi"); code != 0 {
			t.Errorf("%s: DEBSEAL_DISABLE=1 dpkg -P without the debseal binary: exit %d\n%s", mode.name, code, out)
		}
		if out, code := c.Apt(t, disable, "install", "sl"); code != 0 {
			t.Errorf("%s: DEBSEAL_DISABLE=1 apt install without the debseal binary: exit %d\n%s", mode.name, code, out)
		}
		if out, code := c.Apt(t, disable, "purge", "sl"); code != 0 {
			t.Errorf("%s: DEBSEAL_DISABLE=1 apt purge without the debseal binary: exit %d\n%s", mode.name, code, out)
		}
		if err := os.Rename(c.Path("/root/debseal.moved"), c.Path("/usr/sbin/debseal")); err != nil {
			t.Fatal(err)
		}
	}
	c.MustRun(t, "debseal", "setup", "--mode", "dpkg-hooks")
	c.MustRun(t, "debseal", "lock", "--all")

	// With its binary gone and files still sealed, the hooks stop dpkg
	// before it changes anything and say how to get debseal back; with
	// DEBSEAL_DISABLE=1, removing debseal works (its prerm cannot unlock
	// any more, and says so).
	c.MustRun(t, "debseal", "unlock", "debseal")
	if err := os.Rename(c.Path("/usr/sbin/debseal"), c.Path("/root/debseal.moved")); err != nil {
		t.Fatal(err)
	}
	if out, code := c.WithCache(t, nil, "apt-get", "-q", "-y", "remove", "debseal"); code == 0 || !strings.Contains(out, "/usr/sbin/debseal is missing, but files under / are still locked") {
		t.Errorf("remove debseal without its binary, files sealed: exit %d, want a failure that says why:\n%s", code, out)
	}
	out, code = c.WithCache(t, []string{"DEBSEAL_DISABLE=1"}, "apt-get", "-q", "-y", "remove", "debseal")
	if code != 0 {
		t.Fatalf("remove debseal without its binary, DEBSEAL_DISABLE=1: exit %d\n%s", code, out)
	}
	if !strings.Contains(out, "files it locked stay immutable") {
		t.Errorf("the prerm did not warn that files stay locked:\n%s", out)
	}
	step("dpkg after that", "dpkg", "-i", localDebs+"/dstest-multi_1.0_amd64.deb")
	step("dpkg after that", "dpkg", "-P", "dstest-multi")
	c.MustRun(t, "/root/debseal.moved", "unlock", "--all")
	os.Remove(c.Path("/root/debseal.moved"))

	// Reinstall, lock, and remove (not purge): exit 0, nothing left
	// immutable, the hooks gone, the configuration kept.
	step("reinstall debseal", "apt-get", "-q", "-y", "install", "/root/"+filepath.Base(v2))
	c.MustRun(t, "debseal", "lock", "--all")
	step("remove debseal", "apt-get", "-q", "-y", "remove", "debseal")
	if got := immutableFiles(t, c.Dir); len(got) != 0 {
		sort.Strings(got)
		t.Errorf("immutable after remove: %d files, e.g. %v", len(got), got[:min(10, len(got))])
	}
	for _, p := range []string{"/etc/dpkg/dpkg.cfg.d/debseal", "/usr/sbin/debseal"} {
		if _, err := os.Lstat(c.Path(p)); err == nil {
			t.Errorf("%s left after remove", p)
		}
	}
	if _, err := os.Stat(c.Path("/etc/debseal/debseal.conf")); err != nil {
		t.Errorf("remove (not purge) lost the configuration: %v", err)
	}
	step("dpkg after remove", "dpkg", "-i", localDebs+"/dstest-multi_1.0_amd64.deb")

	// Purge: exit 0, nothing left immutable, no state, dpkg and apt work.
	step("purge debseal", "apt-get", "-q", "-y", "purge", "debseal")
	if got := immutableFiles(t, c.Dir); len(got) != 0 {
		sort.Strings(got)
		t.Errorf("immutable after purge: %d files, e.g. %v", len(got), got[:min(10, len(got))])
	}
	for _, p := range []string{"/var/lib/debseal", "/etc/dpkg/dpkg.cfg.d/debseal", "/usr/sbin/debseal", "/etc/debseal"} {
		if _, err := os.Lstat(c.Path(p)); err == nil {
			t.Errorf("%s left after purge", p)
		}
	}
	step("apt after purge", "apt-get", "-q", "-y", "install", "--reinstall", "coreutils", "sl")
	step("dpkg after purge", "dpkg", "-r", "dstest-multi")
}

// TestManPageListsEveryCommand renders the man page with man -l and checks
// that it describes every command debseal --help lists.
func TestManPageListsEveryCommand(t *testing.T) {
	testutil.RequireCommand(t, "man", "go")
	root := testutil.RepoRoot(t)
	page := filepath.Join(t.TempDir(), "debseal.8")
	cmd := exec.Command("go", "run", "./scripts/mkman", "docs/debseal.8.md")
	cmd.Dir = root
	roff, err := cmd.Output()
	if err != nil {
		t.Fatalf("mkman: %v", err)
	}
	if err := os.WriteFile(page, roff, 0o644); err != nil {
		t.Fatal(err)
	}
	render := exec.Command("man", "-l", page)
	render.Env = append(os.Environ(), "MANWIDTH=100", "MANPAGER=cat", "PAGER=cat")
	var stderr strings.Builder
	render.Stderr = &stderr
	text, err := render.Output()
	if err != nil || stderr.Len() > 0 {
		t.Fatalf("man -l: %v\n%s", err, stderr.String())
	}
	commands := regexp.MustCompile(`(?m)^COMMANDS\n((?:.*\n)*?)[A-Z]`).FindSubmatch(text)
	if commands == nil {
		t.Fatalf("no COMMANDS section in:\n%s", text)
	}
	// What --help prints: the commands, and every option of each command
	// and the global ones, must all be in the page.
	help, _, _ := debseal(t, "--help")
	section := func(text, title string) []string {
		_, rest, ok := strings.Cut(text, title+":\n")
		if !ok {
			t.Fatalf("no %s in --help:\n%s", title, text)
		}
		var lines []string
		for _, l := range strings.Split(rest, "\n") {
			if !strings.HasPrefix(l, "   ") {
				break
			}
			lines = append(lines, strings.TrimSpace(l))
		}
		return lines
	}
	options := func(lines []string) []string {
		var out []string
		for _, l := range lines {
			for _, f := range strings.Fields(strings.ReplaceAll(l, ",", " ")) {
				if strings.HasPrefix(f, "--") && f != "--help" {
					out = append(out, f)
				} else if !strings.HasPrefix(f, "-") {
					break
				}
			}
		}
		return out
	}
	for _, o := range options(section(help, "GLOBAL OPTIONS")) {
		if !strings.Contains(string(text), o) {
			t.Errorf("debseal --help lists the global option %s, the man page does not", o)
		}
	}
	for _, l := range section(help, "COMMANDS") {
		name := strings.Fields(l)[0]
		if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(name) + `\b`).Match(commands[1]) {
			t.Errorf("debseal --help lists %q, the man page's COMMANDS section does not", name)
			continue
		}
		if name == "dpkg" {
			continue // its options are dpkg's (and --help would exec dpkg)
		}
		cmdHelp, _, _ := debseal(t, name, "--help")
		if !strings.Contains(cmdHelp, "OPTIONS:") {
			continue
		}
		for _, o := range options(section(cmdHelp, "OPTIONS")) {
			if !strings.Contains(string(commands[1]), o) {
				t.Errorf("debseal %s --help lists %s, the man page's COMMANDS section does not", name, o)
			}
		}
	}
	for _, want := range []string{"EXIT STATUS", "FILES", "THREAT MODEL", "MODES", "CAP_LINUX_IMMUTABLE"} {
		if !strings.Contains(string(text), want) {
			t.Errorf("the man page lacks %s", want)
		}
	}
}

// TestBashCompletion runs the shipped completion in bash and checks it
// offers every command and every option of each command.
func TestBashCompletion(t *testing.T) {
	const lib = "/usr/share/bash-completion/bash_completion"
	if _, err := os.Stat(lib); err != nil {
		testutil.Skip(t, "needs bash-completion (apt-get install bash-completion)")
	}
	script := filepath.Join(testutil.RepoRoot(t), "packaging", "bash-completion")
	complete := func(words ...string) []string {
		t.Helper()
		sh := ". " + lib + "; . " + script + `; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}; _debseal; printf '%s\n' "${COMPREPLY[@]}"`
		out, err := exec.Command("bash", append([]string{"-c", sh, "bash"}, words...)...).Output()
		if err != nil {
			t.Fatalf("completion of %v: %v", words, err)
		}
		return strings.Fields(string(out))
	}
	has := func(list []string, s string) bool {
		for _, x := range list {
			if x == s {
				return true
			}
		}
		return false
	}
	cmds := complete("debseal", "")
	for _, c := range newApp(nil, nil).Commands {
		if c.Hidden {
			continue
		}
		if !has(cmds, c.Name) {
			t.Errorf("completion does not offer command %q", c.Name)
		}
		opts := complete("debseal", c.Name, "--")
		for _, f := range c.Flags {
			if !has(opts, "--"+f.Names()[0]) {
				t.Errorf("completion of %s does not offer --%s", c.Name, f.Names()[0])
			}
		}
		subs := complete("debseal", c.Name, "")
		for _, sub := range c.Subcommands {
			if !has(subs, sub.Name) {
				t.Errorf("completion of %s does not offer %s", c.Name, sub.Name)
			}
			opts := complete("debseal", c.Name, sub.Name, "--")
			for _, f := range sub.Flags {
				if !has(opts, "--"+f.Names()[0]) {
					t.Errorf("completion of %s %s does not offer --%s", c.Name, sub.Name, f.Names()[0])
				}
			}
		}
	}
	if got := complete("debseal", "setup", "--mode", ""); !has(got, "divert") || !has(got, "dpkg-hooks") {
		t.Errorf("modes: %v", got)
	}
	if got := complete("debseal", "lock", "coreut"); !has(got, "coreutils") {
		t.Errorf("package names: %v", got)
	}
}

// TestUnitsSeePackageFiles: the sandboxing of debseal's units must leave
// every path a package file can be locked at visible (the audit reads
// them) and, for recover, writable (it changes their flags). Found in a
// booted guest: ProtectKernelModules= hid /usr/lib/modules, and the daily
// audit reported every kernel module missing.
func TestUnitsSeePackageFiles(t *testing.T) {
	hides := []string{"ProtectKernelModules=", "InaccessiblePaths=", "TemporaryFileSystem=", "RootDirectory=",
		"RootImage=", "BindPaths=", "BindReadOnlyPaths=", "PrivateMounts="}
	readOnly := []string{"ProtectSystem=", "ReadOnlyPaths=", "ProtectProc="}
	for _, c := range []struct {
		unit     string
		writable bool
	}{
		{"debseal-recover.service", true},
		{"debseal-audit.service", false},
	} {
		b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "packaging/systemd", c.unit))
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || line[0] == '#' || line[0] == ';' {
				continue
			}
			bad := hides
			if c.writable {
				bad = append(bad, readOnly...)
			}
			for _, k := range bad {
				if strings.HasPrefix(line, k) && !strings.HasSuffix(line, "=no") && line != k {
					t.Errorf("%s: %q hides package files from debseal or makes them read-only", c.unit, line)
				}
			}
		}
	}
}
