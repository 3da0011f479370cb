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
				out, err := exec.Command("sh", "-c", cmd).CombinedOutput()
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
