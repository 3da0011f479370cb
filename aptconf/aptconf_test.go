package aptconf

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// hookCommands extracts the shell commands of a snippet: dpkg.cfg lines
// "pre-invoke=CMD", or apt.conf list items "...-Invoke { "CMD"; };".
func hookCommands(t *testing.T, f File) []string {
	t.Helper()
	var out []string
	if strings.HasPrefix(f.Path, "/etc/dpkg/") {
		for _, l := range strings.Split(string(f.Content), "\n") {
			if _, cmd, ok := strings.Cut(l, "-invoke="); ok {
				out = append(out, cmd)
			}
		}
		return out
	}
	re := regexp.MustCompile(`(?m)^DPkg::(?:Pre-Invoke|Post-Invoke|Pre-Install-Pkgs) \{ "(.*)"; \};$`)
	for _, m := range re.FindAllStringSubmatch(string(f.Content), -1) {
		out = append(out, m[1])
	}
	return out
}

// TestMissingBinaryDoesNotBrick runs every hook command of every snippet
// with debseal absent: each must succeed, or dpkg and apt would refuse to
// work until debseal came back (and nothing could reinstall it).
func TestMissingBinaryDoesNotBrick(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no", "debseal")
	for _, mode := range []string{"dpkg-hooks", "apt-hooks"} {
		files, err := Snippets(mode, missing)
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range files {
			cmds := hookCommands(t, f)
			if len(cmds) == 0 {
				t.Fatalf("%s: no hook commands found", f.Path)
			}
			for _, cmd := range cmds {
				c := exec.Command("sh", "-c", cmd)
				c.Env = append(os.Environ(), "DPKG_ROOT="+t.TempDir()) // nothing sealed there
				out, err := c.CombinedOutput()
				if err != nil {
					t.Errorf("%s: %q with the binary missing: %v\n%s", f.Path, cmd, err, out)
				}
			}
		}
	}
}

// TestFailingBinaryStopsBeforeDpkg: when debseal is there but cannot
// unlock, the pre hooks fail, so dpkg/apt stop before changing anything.
func TestFailingBinaryStopsBeforeDpkg(t *testing.T) {
	dir := t.TempDir()
	failing := filepath.Join(dir, "debseal")
	if err := os.WriteFile(failing, []byte("#!/bin/sh\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"dpkg-hooks", "apt-hooks"} {
		files, _ := Snippets(mode, failing)
		for _, f := range files {
			for _, cmd := range hookCommands(t, f) {
				if !strings.Contains(cmd, "pre") {
					continue
				}
				if strings.Contains(cmd, "apt-pre-invoke") {
					continue // recovery only; the real binary never fails it
				}
				if err := exec.Command("sh", "-c", cmd).Run(); err == nil {
					t.Errorf("%s: %q succeeded although debseal failed", f.Path, cmd)
				}
			}
		}
	}
}

// TestDpkgWithMissingBinary runs real dpkg with the shipped hook lines
// (passed on the command line: the host's dpkg.cfg.d is not a sandbox's)
// and debseal absent.
func TestDpkgWithMissingBinary(t *testing.T) {
	s := testutil.NewSandbox(t)
	files, err := Snippets("dpkg-hooks", filepath.Join(t.TempDir(), "gone", "debseal"))
	if err != nil {
		t.Fatal(err)
	}
	var opts []string
	for _, l := range strings.Split(string(files[0].Content), "\n") {
		if strings.HasPrefix(l, "pre-invoke=") || strings.HasPrefix(l, "post-invoke=") {
			opts = append(opts, "--"+l)
		}
	}
	args := append(opts, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if out, code := s.Dpkg(t, args...); code != 0 {
		t.Errorf("dpkg with the hooks and no debseal: exit %d\n%s", code, out)
	}
}

// TestAptParsesSnippets checks the apt snippets' syntax with apt-config.
func TestAptParsesSnippets(t *testing.T) {
	testutil.RequireCommand(t, "apt-config")
	for _, mode := range []string{"apt-hooks", "wrapper"} {
		files, _ := Snippets(mode, "")
		for _, f := range files {
			if !strings.HasPrefix(f.Path, "/etc/apt/") {
				continue // the wrapper script
			}
			p := filepath.Join(t.TempDir(), filepath.Base(f.Path))
			if err := os.WriteFile(p, f.Content, 0o644); err != nil {
				t.Fatal(err)
			}
			out, err := exec.Command("apt-config", "-c", p, "dump").CombinedOutput()
			if err != nil {
				t.Fatalf("apt-config rejects %s: %v\n%s", f.Path, err, out)
			}
			for _, want := range map[string][]string{
				"apt-hooks": {`DPkg::Pre-Install-Pkgs:: "/usr/sbin/debseal hook apt-pre-install-pkgs`, `DPkg::Tools::Options::/usr/sbin/debseal::Version "3"`},
				"wrapper":   {`Dir::Bin::dpkg "/usr/lib/debseal/dpkg"`},
			}[mode] {
				if !strings.Contains(string(out), want) {
					t.Errorf("apt-config dump of %s lacks %s", f.Path, want)
				}
			}
		}
	}
}

// TestWrapperScriptFallsBack: apt's Dir::Bin::dpkg in the wrapper mode
// runs debseal's wrapper when debseal is there, and the real dpkg when it
// is not (apt before 2.9.22 stops when Dir::Bin::dpkg cannot be run).
func TestWrapperScriptFallsBack(t *testing.T) {
	dir := t.TempDir()
	files, err := Snippets("wrapper", filepath.Join(dir, "sbin", "debseal"))
	if err != nil {
		t.Fatal(err)
	}
	var script []byte
	for _, f := range files {
		if f.Path == WrapperPath {
			if f.Mode != 0o755 {
				t.Errorf("%s mode %v, want 0755", f.Path, f.Mode)
			}
			script = f.Content
		}
	}
	if script == nil {
		t.Fatalf("the wrapper mode writes no %s", WrapperPath)
	}
	// Point the fallback at a stand-in for the real dpkg.
	real := filepath.Join(dir, "real-dpkg")
	if err := os.WriteFile(real, []byte("#!/bin/sh\necho \"real dpkg: $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	s := strings.ReplaceAll(string(script), "exec /usr/bin/dpkg ", "exec "+real+" ")
	p := filepath.Join(dir, "dpkg")
	if err := os.WriteFile(p, []byte(s), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(p, "--configure", "-a").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "real dpkg: --configure -a" {
		t.Errorf("without debseal: %v, %q; want the real dpkg with the same arguments", err, out)
	}
	if err := os.MkdirAll(filepath.Join(dir, "sbin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "sbin", "debseal"), []byte("#!/bin/sh\necho \"debseal: $*\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(p, "--configure", "-a").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "debseal: dpkg --configure -a" {
		t.Errorf("with debseal: %v, %q; want debseal dpkg with the same arguments", err, out)
	}
	// apt's queries skip debseal; anything that may change files does
	// not, including command lines where a query's name is only an
	// option's value or a file name.
	for _, tt := range []struct {
		args   []string
		direct bool
	}{
		{[]string{"--print-foreign-architectures"}, true},
		{[]string{"--admindir=/var/lib/dpkg", "--assert-multi-arch"}, true},
		{[]string{"--compare-versions", "1", "lt", "2"}, true},
		{[]string{"--status-fd", "15", "--no-triggers", "--unpack", "/var/cache/apt/archives/a.deb"}, false},
		{[]string{"--log", "--version", "-r", "pkg"}, false},
		{[]string{"-i", "a.deb", "--version"}, false},
		{[]string{"-i", "--", "--version"}, false},
		{[]string{"-P", "pkg"}, false},
	} {
		out, err := exec.Command(p, tt.args...).CombinedOutput()
		got := strings.TrimSpace(string(out))
		want := "debseal: dpkg " + strings.Join(tt.args, " ")
		if tt.direct {
			want = "real dpkg: " + strings.Join(tt.args, " ")
		}
		if err != nil || got != want {
			t.Errorf("dpkg %q: %v, %q; want %q", tt.args, err, got, want)
		}
	}
	// DEBSEAL_ROOT left in an admin's shell never reaches debseal from
	// here: "debseal dpkg" would send the run to that root.
	if err := os.WriteFile(filepath.Join(dir, "sbin", "debseal"), []byte("#!/bin/sh\necho \"root=${DEBSEAL_ROOT-unset}\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(p, "-i", "x.deb")
	cmd.Env = append(os.Environ(), "DEBSEAL_ROOT=/srv/chroot")
	if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "root=unset" {
		t.Errorf("with DEBSEAL_ROOT set: %v, %q; want debseal started without it", err, out)
	}
	// Calls from maintainer scripts, and DEBSEAL_DISABLE=1, never start
	// debseal.
	for _, env := range []string{"DPKG_MAINTSCRIPT_NAME=postinst", "DEBSEAL_DISABLE=1"} {
		cmd := exec.Command(p, "-i", "x.deb")
		cmd.Env = append(os.Environ(), env)
		if out, err := cmd.CombinedOutput(); err != nil || strings.TrimSpace(string(out)) != "real dpkg: -i x.deb" {
			t.Errorf("with %s: %v, %q; want the real dpkg", env, err, out)
		}
	}
	// The divert mode's copy names the diverted real dpkg.
	if d := string(DivertScript("/usr/bin/dpkg.distrib", "")); !strings.Contains(d, "exec /usr/bin/dpkg.distrib \"$@\"") || strings.Contains(d, "@REAL_DPKG@") {
		t.Errorf("DivertScript does not run /usr/bin/dpkg.distrib:\n%s", d)
	}
}

// sealedStates are the states of ROOT/var/lib/debseal the hook lines read
// when debseal is gone, and whether they mean "files are still locked".
var sealedStates = []struct {
	name   string
	files  map[string]string // relative to ROOT/var/lib/debseal; nil: no state directory
	sealed bool
}{
	{"no state directory", nil, false},
	{"empty state directory", map[string]string{}, false},
	{"sealed none", map[string]string{"sealed": "Sealed: none\n"}, false},
	{"sealed all", map[string]string{"sealed": "Sealed: all\nExcept: foo\n"}, true},
	{"sealed packages", map[string]string{"sealed": "Sealed: packages\nPackages: a b\n"}, true},
	{"journal only", map[string]string{"journal/dpkg-hook.123.json": "{}\n"}, true},
	{"sealed none, journal left", map[string]string{"sealed": "Sealed: none\n", "journal/wrapper.9.json": "{}\n"}, true},
	{"a crashed journal write's temporary file only", map[string]string{"sealed": "Sealed: none\n", "journal/.wrapper.9.json.tmp-123": "{"}, false},
}

// stateRoot makes a root holding one of sealedStates.
func stateRoot(t *testing.T, root string, files map[string]string) {
	t.Helper()
	if files == nil {
		return
	}
	dir := filepath.Join(root, "var/lib/debseal")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// With debseal gone, the pre hooks stop dpkg/apt when files are still
// sealed under $DPKG_ROOT (they would fail half-way on them), with a
// message naming debseal and how to get it back; otherwise every hook is
// a silent no-op. DEBSEAL_DISABLE=1 always lets dpkg through.
func TestMissingBinaryStopsWhenSealed(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "gone", "debseal")
	for _, st := range sealedStates {
		t.Run(st.name, func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root with space")
			stateRoot(t, root, st.files)
			for _, mode := range []string{"dpkg-hooks", "apt-hooks"} {
				files, err := Snippets(mode, missing)
				if err != nil {
					t.Fatal(err)
				}
				for _, cmd := range hookCommands(t, files[0]) {
					pre := strings.Contains(cmd, "pre-invoke") || strings.Contains(cmd, " dpkg-pre")
					for _, disable := range []string{"", "1"} {
						c := exec.Command("sh", "-c", cmd)
						c.Env = append(os.Environ(), "DPKG_ROOT="+root, "DEBSEAL_DISABLE="+disable)
						out, err := c.CombinedOutput()
						stop := pre && st.sealed && disable == ""
						switch {
						case stop && err == nil:
							t.Errorf("%s: %q succeeded with files sealed and debseal gone", mode, cmd)
						case stop && (!strings.Contains(string(out), missing+" is missing") || !strings.Contains(string(out), root) ||
							!strings.Contains(string(out), "DEBSEAL_DISABLE=1") || !strings.Contains(string(out), "dpkg-deb -x")):
							t.Errorf("%s: %q: message lacks what happened, the root, how to restore debseal or bypass it:\n%s", mode, cmd, out)
						case !stop && strings.Contains(cmd, "apt-pre-install-pkgs") && err != nil:
							t.Errorf("%s: %q: %v, %q; want success", mode, cmd, err, out) // the shell says the binary is not found: as before
						case !stop && !strings.Contains(cmd, "apt-pre-install-pkgs") && (err != nil || len(out) > 0):
							t.Errorf("%s: %q (DEBSEAL_DISABLE=%s): %v, %q; want a silent no-op", mode, cmd, disable, err, out)
						}
					}
				}
			}
		})
	}
}

// A --binary path long enough to push the pre-invoke line past what dpkg
// reads would break every dpkg run: Snippets refuses it.
func TestSnippetsRefuseLinesDpkgCannotRead(t *testing.T) {
	if _, err := Snippets("dpkg-hooks", "/opt/"+strings.Repeat("d", 100)+"/debseal"); err != nil {
		t.Errorf("a 110-byte binary path: %v", err)
	}
	if _, err := Snippets("dpkg-hooks", "/opt/"+strings.Repeat("d", 500)+"/debseal"); err == nil {
		t.Error("a binary path that makes a dpkg.cfg line longer than dpkg reads was accepted")
	}
}

// dpkgWithConfig runs real dpkg on the sandbox with the dpkg-hooks
// snippet as a configuration file dpkg itself parses ($HOME/.dpkg.cfg:
// the host's /etc/dpkg is not the sandbox's), and debseal at binary.
func dpkgWithConfig(t *testing.T, s *testutil.Sandbox, binary string, env []string, args ...string) (string, int) {
	t.Helper()
	files, err := Snippets("dpkg-hooks", binary)
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.WriteFile(filepath.Join(home, ".dpkg.cfg"), files[0].Content, 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("dpkg", append(s.Args(), args...)...)
	cmd.Env = append(append(os.Environ(), "HOME="+home, "DEBIAN_FRONTEND=noninteractive"), env...)
	return testutil.Output(t, cmd)
}

// Real dpkg, debseal gone, files sealed: dpkg stops before unpacking
// anything, with the message; not sealed (or DEBSEAL_DISABLE=1): dpkg
// works as if debseal had never been there.
func TestDpkgStopsWhenSealedAndBinaryGone(t *testing.T) {
	for _, st := range sealedStates {
		t.Run(st.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			stateRoot(t, s.Root, st.files)
			gone := filepath.Join(t.TempDir(), "gone", "debseal")
			out, code := dpkgWithConfig(t, s, gone, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			_, statErr := os.Stat(s.Path("/usr/bin/dstest-tool"))
			if !st.sealed {
				if code != 0 || statErr != nil || strings.Contains(out, "debseal") {
					t.Fatalf("not sealed: dpkg exit %d, tool %v, output:\n%s", code, statErr, out)
				}
				return
			}
			if code == 0 || statErr == nil || !strings.Contains(out, "debseal: "+gone+" is missing") {
				t.Fatalf("sealed: dpkg exit %d (want non-zero), tool unpacked: %v, output:\n%s", code, statErr == nil, out)
			}
			if q, _ := s.Dpkg(t, "-s", "dstest-base"); strings.Contains(q, "Status: install") {
				t.Errorf("dpkg recorded the package although the hook stopped it:\n%s", q)
			}
			out, code = dpkgWithConfig(t, s, gone, []string{"DEBSEAL_DISABLE=1"}, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if code != 0 {
				t.Errorf("DEBSEAL_DISABLE=1: dpkg exit %d\n%s", code, out)
			}
		})
	}
}

// The wrapper script (wrapper and divert modes) with debseal gone runs
// the real dpkg, unless files under the root it works on (--root, or
// $DPKG_ROOT) are sealed: then it stops before dpkg changes anything.
// Queries and maintainer scripts' calls still go straight to dpkg.
func TestWrapperStopsWhenSealedAndBinaryGone(t *testing.T) {
	for _, st := range sealedStates {
		t.Run(st.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			stateRoot(t, s.Root, st.files)
			gone := filepath.Join(t.TempDir(), "gone", "debseal")
			script := filepath.Join(t.TempDir(), "dpkg")
			if err := os.WriteFile(script, DivertScript("/usr/bin/dpkg", gone), 0o755); err != nil {
				t.Fatal(err)
			}
			run := func(env []string, args ...string) (string, int) {
				cmd := exec.Command(script, args...)
				cmd.Env = append(append(os.Environ(), "DEBIAN_FRONTEND=noninteractive"), env...)
				return testutil.Output(t, cmd)
			}
			sandbox := []string{"--root", s.Root, "--admindir=" + s.Admindir, "--log=" + s.Log, "--force-script-chrootless"}
			if out, code := run(nil, append(sandbox, "--print-foreign-architectures")...); code != 0 || strings.TrimSpace(out) != "i386" {
				t.Errorf("a query: exit %d, %q", code, out)
			}
			out, code := run(nil, append(sandbox, "-i", testutil.Deb(t, "dstest-base_1.0_all"))...)
			_, statErr := os.Stat(s.Path("/usr/bin/dstest-tool"))
			if !st.sealed {
				if code != 0 || statErr != nil {
					t.Fatalf("not sealed: exit %d, tool %v\n%s", code, statErr, out)
				}
				return
			}
			if code == 0 || statErr == nil || !strings.Contains(out, "debseal: "+gone+" is missing, but files under "+s.Root) {
				t.Fatalf("sealed (--root DIR): exit %d, tool unpacked %v\n%s", code, statErr == nil, out)
			}
			// --root=DIR, and $DPKG_ROOT, name the root too.
			args := append([]string{"--root=" + s.Root}, sandbox[2:]...)
			if out, code := run(nil, append(args, "-i", testutil.Deb(t, "dstest-base_1.0_all"))...); code == 0 {
				t.Errorf("sealed (--root=DIR): exit 0\n%s", out)
			}
			if out, code := run([]string{"DPKG_ROOT=" + s.Root}, "--admindir="+s.Admindir, "--instdir="+s.Root, "--log="+s.Log, "--force-script-chrootless", "-i", testutil.Deb(t, "dstest-base_1.0_all")); code == 0 {
				t.Errorf("sealed ($DPKG_ROOT): exit 0\n%s", out)
			}
			for _, env := range []string{"DEBSEAL_DISABLE=1", "DPKG_MAINTSCRIPT_NAME=postinst"} {
				if out, code := run([]string{env}, append(sandbox, "-i", testutil.Deb(t, "dstest-base_1.0_all"))...); code != 0 {
					t.Errorf("%s: exit %d\n%s", env, code, out)
				}
			}
		})
	}
}
