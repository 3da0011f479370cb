package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// makeDecoy is a directory outside the root that looks like debseal's
// state directory, and a file, both of which debseal must never touch.
func makeDecoy(t *testing.T) string {
	dir := testutil.TempRoot(t)
	for _, d := range []string{"journal", "manifests"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	for _, f := range []string{"f", "sealed", "lock", "journal/x.json", "manifests/dstest-base_all.manifest", "debseal.log"} {
		os.WriteFile(filepath.Join(dir, f), []byte("host file "+f+"\n"), 0o644)
	}
	return dir
}

// TestHostileRoot plants a symlink to a decoy outside the root where
// debseal's own directories and files are, then runs every command that
// touches them: nothing outside the root may change (no new file, same
// content, mode and flags), and where debseal's own directory or file is
// a symlink, the command says so, naming it.
func TestHostileRoot(t *testing.T) {
	bin := testutil.Binary(t)
	type place struct {
		path   string // within the root
		isFile bool   // the symlink replaces a file (else a directory)
		// commands whose output must name the symlink
		named []string
	}
	all := []string{"lock", "manifest", "audit", "hook", "recover"}
	places := []place{
		{"/var/lib/debseal", false, all},
		{"/var/lib/debseal/sealed", true, all},
		{"/var/lib/debseal/manifests", false, []string{"lock", "manifest", "audit"}},
		{"/var/lib/debseal/journal", false, []string{"hook", "recover"}},
		{"/var/lib/debseal/seen", false, []string{"lock", "audit", "hook"}},
		{"/var/lib/debseal/policy", true, nil}, // the kept configuration: replaced, never followed
		{"/var/log/debseal.log", true, []string{"hook"}},
		{"/var/log", false, nil}, // a system directory: resolved inside the root
	}
	for _, pl := range places {
		for _, kind := range []string{"absolute", "relative"} {
			t.Run(strings.TrimPrefix(pl.path, "/")+"/"+kind, func(t *testing.T) {
				s := testutil.NewSandbox(t)
				// dpkg's own --log is the test's business, not debseal's:
				// keep it out of the way of a symlinked /var/log.
				s.Log = s.Path("/var/lib/dpkg/test.log")
				s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
				decoy := makeDecoy(t)
				target := decoy
				if pl.isFile {
					target = filepath.Join(decoy, "f")
				}
				link := s.Path(pl.path)
				if kind == "relative" {
					rel, err := filepath.Rel(filepath.Dir(link), target)
					if err != nil {
						t.Fatal(err)
					}
					target = rel
				}
				os.MkdirAll(filepath.Dir(link), 0o755)
				if pl.path == "/var/log" {
					os.RemoveAll(link)
				}
				if err := os.Symlink(target, link); err != nil {
					t.Fatal(err)
				}
				before := testutil.TreeState(t, decoy)
				run := map[string]func() string{
					"lock": func() string {
						o, e, _ := debseal(t, "--root", s.Root, "lock", "--all")
						return o + e
					},
					"manifest": func() string {
						o, e, _ := debseal(t, "--root", s.Root, "manifest", "--all")
						return o + e
					},
					"audit": func() string {
						o, e, _ := debseal(t, "--root", s.Root, "audit")
						return o + e
					},
					"hook": func() string {
						o, _ := hookedDpkg(s, bin)(t, nil, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
						return o
					},
					"recover": func() string {
						o, e, _ := debseal(t, "--root", s.Root, "recover")
						return o + e
					},
				}
				for _, cmd := range all {
					out := run[cmd]()
					t.Logf("%s:\n%s", cmd, out)
					if after := testutil.TreeState(t, decoy); len(diffState(before, after)) > 0 {
						t.Errorf("%s changed the decoy outside the root: %v", cmd, diffState(before, after))
					}
					if contains(pl.named, cmd) && !strings.Contains(out, link+" is a symlink") {
						t.Errorf("%s: output does not say that %s is a symlink:\n%s", cmd, link, out)
					}
				}
			})
		}
	}
}

func diffState(a, b map[string]string) []string {
	var out []string
	for k, v := range a {
		if b[k] != v {
			out = append(out, fmt.Sprintf("%s: %q -> %q", k, v, b[k]))
		}
	}
	for k, v := range b {
		if _, ok := a[k]; !ok {
			out = append(out, fmt.Sprintf("%s: new %q", k, v))
		}
	}
	return out
}

// TestFIFOInsteadOfOwnFile puts a FIFO where the state file, the lock
// file, a journal or the pending list is: no command hangs, and each
// command that reads or writes that file fails (or, for a hook, reports)
// with an error naming it.
func TestFIFOInsteadOfOwnFile(t *testing.T) {
	bin := testutil.Binary(t)
	for _, c := range []struct {
		name  string
		named []string // commands whose output must name the FIFO
	}{
		{"sealed", []string{"lock", "recover", "status", "hook"}},
		{"lock", []string{"recover", "hook"}},
		{"journal/dpkg-hook-1-1.json", []string{"recover", "status", "hook"}},
		{"pending", []string{"recover", "status", "hook"}},
		{"policy", nil}, // the kept configuration: replaced, never opened
	} {
		t.Run(c.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if _, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatal("lock --all failed")
			}
			p := s.Path("/var/lib/debseal/" + c.name)
			os.MkdirAll(filepath.Dir(p), 0o755)
			os.Remove(p)
			if err := syscall.Mkfifo(p, 0o644); err != nil {
				t.Fatal(err)
			}
			// The binary, so that a hang is a killed process and not a
			// stuck test.
			for _, args := range [][]string{{"lock", "--all"}, {"recover"}, {"status"}} {
				cmd := exec.Command(bin, append([]string{"--root", s.Root}, args...)...)
				out, code, hung := runBounded(t, cmd, 20*time.Second)
				if hung {
					t.Fatalf("debseal %s hangs on a FIFO at %s", strings.Join(args, " "), p)
				}
				t.Logf("%s: exit %d\n%s", args[0], code, out)
				if contains(c.named, args[0]) && (code == 0 || !strings.Contains(out, p)) {
					t.Errorf("debseal %s with a FIFO at %s: exit %d, want an error naming it:\n%s", strings.Join(args, " "), p, code, out)
				}
			}
			cmd := exec.Command("dpkg", append(append(s.Args(), "--pre-invoke="+bin+" hook dpkg-pre", "--post-invoke="+bin+" hook dpkg-post"),
				"-i", testutil.Deb(t, "dstest-base_2.0_all"))...)
			out, code, hung := runBounded(t, cmd, 60*time.Second)
			if hung {
				t.Fatalf("hooked dpkg hangs on a FIFO at %s", p)
			}
			t.Logf("hooked dpkg: exit %d\n%s", code, out)
			if !strings.Contains(out, p) {
				t.Errorf("hooked dpkg with a FIFO at %s: output does not name it:\n%s", p, out)
			}
		})
	}
}

// runBounded runs cmd, killing it (by its pid) after limit.
func runBounded(t *testing.T, cmd *exec.Cmd, limit time.Duration) (string, int, bool) {
	t.Helper()
	var buf strings.Builder
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
		return buf.String(), cmd.ProcessState.ExitCode(), false
	case <-time.After(limit):
		cmd.Process.Kill()
		<-done
		return buf.String(), -1, true
	}
}

// setup and teardown write hook files, the wrapper script, and in the
// divert mode link and rename /usr/bin/dpkg: with the directories they
// work in replaced by symlinks to a decoy outside the root, nothing
// outside the root may change, whatever the command's outcome.
func TestSetupHostileRoot(t *testing.T) {
	testutil.RequireCommand(t, "dpkg-divert")
	for _, tt := range []struct {
		mode, link string
	}{
		{"dpkg-hooks", "/etc/dpkg/dpkg.cfg.d"},
		{"dpkg-hooks", "/etc/dpkg"},
		{"apt-hooks", "/etc/apt/apt.conf.d"},
		{"wrapper", "/usr/lib/debseal"},
		{"wrapper", "/usr/lib"},
		{"divert", "/usr/bin"},
	} {
		for _, relative := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s %s relative=%v", tt.mode, tt.link, relative), func(t *testing.T) {
				s := testutil.NewSandbox(t)
				decoy := makeDecoy(t)
				os.WriteFile(filepath.Join(decoy, "dpkg"), []byte("host dpkg\n"), 0o755)
				for _, d := range []string{"/etc/dpkg", "/etc/apt/apt.conf.d", "/usr/lib", "/usr/sbin"} {
					os.MkdirAll(s.Path(d), 0o755)
				}
				at := s.Path(tt.link)
				os.RemoveAll(at)
				if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
					t.Fatal(err)
				}
				target := decoy
				if relative {
					rel, err := filepath.Rel(filepath.Dir(at), decoy)
					if err != nil {
						t.Fatal(err)
					}
					target = rel
				}
				if err := os.Symlink(target, at); err != nil {
					t.Fatal(err)
				}
				before := testutil.TreeState(t, decoy)
				debseal(t, "--root", s.Root, "setup", "--mode", tt.mode)
				debseal(t, "--root", s.Root, "teardown")
				after := testutil.TreeState(t, decoy)
				for p, v := range after {
					if before[p] != v {
						t.Errorf("decoy %s changed: %q -> %q", p, before[p], v)
					}
				}
				for p := range before {
					if _, ok := after[p]; !ok {
						t.Errorf("decoy %s removed", p)
					}
				}
			})
		}
	}
}
