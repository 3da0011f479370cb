package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// shadowRoot is a sandbox with dstest-base and dstest-multi:amd64
// installed and every package locked: audit finds nothing there until
// something is mounted over it.
func shadowRoot(t *testing.T) *testutil.Sandbox {
	t.Helper()
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
	if out, errs, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
	if out, errs, code := debseal(t, "--root", s.Root, "audit", "--no-cache"); code != 0 {
		t.Fatalf("audit of the sandbox before any mount: exit %d\n%s%s", code, out, errs)
	}
	return s
}

// auditShadowJSON runs audit --format json and returns its findings and
// summary.
func auditShadowJSON(t *testing.T, root string) ([]jsonFinding, jsonSummary, int) {
	t.Helper()
	out, errs, code := debseal(t, "--root", root, "audit", "--no-cache", "--format", "json")
	var fs []jsonFinding
	var sum jsonSummary
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var probe struct{ Type string }
		if err := json.Unmarshal(sc.Bytes(), &probe); err != nil {
			t.Fatalf("audit --format json: %v in %q\n%s", err, sc.Text(), errs)
		}
		if probe.Type == "summary" {
			json.Unmarshal(sc.Bytes(), &sum)
			continue
		}
		var f jsonFinding
		json.Unmarshal(sc.Bytes(), &f)
		fs = append(fs, f)
	}
	return fs, sum, code
}

// TestShadowedMounts mounts things over a sealed sandbox's package files
// (as root; every mount is undone when its subtest ends) and checks that
// audit (text, JSON, Prometheus) and status (text, JSON) report exactly the
// mounts that hide sealed files, and none of those a normal system has.
func TestShadowedMounts(t *testing.T) {
	s := shadowRoot(t)
	pkgDir := "/usr/share/dstest" // deep.txt, "name with spaces.txt", dropped-in-2.0.txt
	type shadowed struct {
		point, fstype string
		hidden        int
		pkgs          string
	}
	tests := []struct {
		name  string
		mount func(t *testing.T)
		want  *shadowed // nil: no shadowed finding
		only  bool      // the shadowed finding is the audit's only one
	}{
		{
			name:  "tmpfs over a package directory",
			mount: func(t *testing.T) { testutil.Mount(t, "tmpfs", s.Path(pkgDir)) },
			want:  &shadowed{pkgDir, "tmpfs", 3, "dstest-base"},
		},
		{
			// The attack the check exists for: a copy with the same
			// content, mode and owner, immutable, bound over the sealed
			// file. Every other check passes; only the mount gives it
			// away.
			name: "an identical immutable copy bound over one sealed file",
			mount: func(t *testing.T) {
				copyDir := testutil.TempRoot(t) // clears the copy's flag when the test ends
				cp := filepath.Join(copyDir, "dstest-suid")
				if out, err := exec.Command("cp", "-a", s.Path("/usr/bin/dstest-suid"), cp).CombinedOutput(); err != nil {
					t.Fatalf("cp: %v\n%s", err, out)
				}
				if out, err := exec.Command("chattr", "+i", cp).CombinedOutput(); err != nil {
					t.Fatalf("chattr +i %s: %v\n%s", cp, err, out)
				}
				testutil.MountArgs(t, s.Path("/usr/bin/dstest-suid"), "--bind", cp)
			},
			want: &shadowed{"/usr/bin/dstest-suid", fsTypeOf(t, os.TempDir()), 1, "dstest-base"},
			only: true,
		},
		{
			name: "an overlay over a package directory",
			mount: func(t *testing.T) {
				w := t.TempDir()
				os.Mkdir(filepath.Join(w, "upper"), 0o755)
				os.Mkdir(filepath.Join(w, "work"), 0o755)
				testutil.MountArgs(t, s.Path(pkgDir), "-t", "overlay", "overlay", "-o",
					"lowerdir="+s.Path(pkgDir)+",upperdir="+filepath.Join(w, "upper")+",workdir="+filepath.Join(w, "work"))
			},
			want: &shadowed{pkgDir, "overlay", 3, "dstest-base"},
		},
		{
			name:  "a loop-mounted ext4 over a package directory",
			mount: func(t *testing.T) { testutil.Mount(t, "ext4", s.Path("/usr/lib/x86_64-linux-gnu")) },
			want:  &shadowed{"/usr/lib/x86_64-linux-gnu", "ext4", 1, "dstest-multi:amd64"},
		},
		{
			name: "FUSE over a package directory",
			mount: func(t *testing.T) {
				if got := testutil.Mount(t, "vfat", s.Path("/usr/share/doc/dstest-base")); got != "fuse.fusefat" {
					testutil.Skip(t, "this kernel mounts FAT itself (%s), not through FUSE", got)
				}
			},
			want: &shadowed{"/usr/share/doc/dstest-base", "fuse.fusefat", 1, "dstest-base"},
		},
		{
			name: "tmpfs over a directory above both packages",
			mount: func(t *testing.T) {
				testutil.Mount(t, "tmpfs", s.Path("/usr/share"))
			},
			want: &shadowed{"/usr/share", "tmpfs", 5, "dstest-base, dstest-multi:amd64"},
		},

		// What a normal system (and the suite's chroots) mounts.
		{
			name: "proc and devpts in the root, as a chroot has them",
			mount: func(t *testing.T) {
				os.MkdirAll(s.Path("/proc"), 0o755)
				os.MkdirAll(s.Path("/dev/pts"), 0o755)
				testutil.MountArgs(t, s.Path("/proc"), "-t", "proc", "proc")
				testutil.MountArgs(t, s.Path("/dev/pts"), "-t", "devpts", "devpts")
			},
			only: true, // no finding at all
		},
		{
			name:  "a separate ext4 at /usr",
			mount: func(t *testing.T) { testutil.Mount(t, "ext4", s.Path("/usr")) },
		},
		{
			name:  "/usr bound onto itself, as systemd's ProtectSystem= does",
			mount: func(t *testing.T) { testutil.MountArgs(t, s.Path("/usr"), "--bind", s.Path("/usr")) },
			only:  true,
		},
		{
			name: "tmpfs over a package directory that mount-allow names",
			mount: func(t *testing.T) {
				conf := s.Path("/etc/debseal/debseal.conf")
				if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(conf, []byte("mount-allow = "+pkgDir+"\n"), 0o644); err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					if err := os.Remove(conf); err != nil {
						t.Error(err)
					}
				})
				testutil.Mount(t, "tmpfs", s.Path(pkgDir))
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.mount(t)
			fs, sum, code := auditShadowJSON(t, s.Root)
			var got []jsonFinding
			for _, f := range fs {
				if f.Kind == "shadowed" {
					got = append(got, f)
				}
			}
			if tt.want == nil {
				if len(got) != 0 || sum.ByKind["shadowed"] != 0 {
					t.Errorf("audit reports a mount a normal system has: %+v", got)
				}
				if tt.only && (code != 0 || len(fs) != 0) {
					t.Errorf("audit: exit %d, %d findings; want none: %+v", code, len(fs), fs)
				}
			} else {
				w := tt.want
				if len(got) != 1 || got[0].Mount == nil {
					t.Fatalf("audit: shadowed findings %+v, want one at %s", got, w.point)
				}
				f, m := got[0], got[0].Mount
				if f.Path != w.point || m.MountPoint != w.point || m.FSType != w.fstype || m.Hidden != w.hidden ||
					strings.Join(m.Packages, ", ") != w.pkgs || f.Package != m.Packages[0] {
					t.Errorf("audit: shadowed %s (%s, %d files of %q, package %s), want %s (%s, %d files of %q)",
						f.Path, m.FSType, m.Hidden, m.Packages, f.Package, w.point, w.fstype, w.hidden, w.pkgs)
				}
				if code != exitFindings || sum.ByKind["shadowed"] != 1 || fs[0].Kind != "shadowed" {
					t.Errorf("audit: exit %d, %d shadowed, first finding %s; want %d, 1, shadowed first", code, sum.ByKind["shadowed"], fs[0].Kind, exitFindings)
				}
				if tt.only && len(fs) != 1 {
					t.Errorf("audit: %d findings, want only the shadowed one: %+v", len(fs), fs)
				}
				text, _, _ := debseal(t, "--root", s.Root, "audit", "--no-cache")
				if line := fmt.Sprintf("shadowed %s [%s]: expected no mount, found %s ", w.point, w.pkgs, w.fstype); !strings.Contains(text, line) {
					t.Errorf("audit text lacks %q:\n%s", line, text)
				}
				prom, _, _ := debseal(t, "--root", s.Root, "audit", "--no-cache", "--format", "prometheus")
				for _, l := range []string{`debseal_audit_findings{kind="shadowed"} 1`, fmt.Sprintf("debseal_audit_files_shadowed %d", w.hidden)} {
					if !strings.Contains(prom, l+"\n") {
						t.Errorf("audit --format prometheus lacks %q:\n%s", l, prom)
					}
				}
			}

			out, errs, code := debseal(t, "--root", s.Root, "status", "--json")
			var rep statusReport
			if err := json.Unmarshal([]byte(out), &rep); err != nil || code != 0 {
				t.Fatalf("status --json: exit %d, %v\n%s%s", code, err, out, errs)
			}
			text, _, _ := debseal(t, "--root", s.Root, "status")
			if tt.want == nil {
				if len(rep.Shadowed) != 0 || strings.Contains(text, "shadowed") {
					t.Errorf("status reports a mount a normal system has: %+v\n%s", rep.Shadowed, text)
				}
				return
			}
			if len(rep.Shadowed) != 1 || rep.Shadowed[0].MountPoint != tt.want.point || rep.Shadowed[0].Hidden != tt.want.hidden {
				t.Errorf("status shadowed = %+v, want %s hiding %d", rep.Shadowed, tt.want.point, tt.want.hidden)
			}
			if line := fmt.Sprintf("shadowed %s: %s ", tt.want.point, tt.want.fstype); !strings.Contains(text, line) {
				t.Errorf("status text lacks %q:\n%s", line, text)
			}
		})
	}
	// Everything is unmounted: clean again.
	if out, errs, code := debseal(t, "--root", s.Root, "audit", "--no-cache"); code != 0 {
		t.Errorf("audit after the mounts are gone: exit %d\n%s%s", code, out, errs)
	}
}

// TestShadowedThroughSymlinkedRoot: a --root reached through a symlink is
// compared with mount points the way the kernel names it.
func TestShadowedThroughSymlinkedRoot(t *testing.T) {
	s := shadowRoot(t)
	link := filepath.Join(t.TempDir(), "root-link")
	if err := os.Symlink(s.Root, link); err != nil {
		t.Fatal(err)
	}
	testutil.Mount(t, "tmpfs", s.Path("/usr/share/dstest"))
	out, errs, code := debseal(t, "--root", link, "audit", "--no-cache")
	if code != exitFindings || !strings.Contains(out, "shadowed /usr/share/dstest [dstest-base]") {
		t.Errorf("audit --root %s: exit %d, want %d and the shadowed mount:\n%s%s", link, code, exitFindings, out, errs)
	}
}

// fsTypeOf returns the type of the filesystem dir is on, as mountinfo
// names it (what a bind of a file from there shows).
func fsTypeOf(t *testing.T, dir string) string {
	t.Helper()
	out, err := exec.Command("findmnt", "-no", "FSTYPE", "--target", dir).Output()
	if err != nil {
		t.Fatalf("findmnt --target %s: %v", dir, err)
	}
	return strings.TrimSpace(string(out))
}

// TestShadowedInChroot: in a sealed debootstrap chroot (merged /usr, with
// the proc and devpts the suite mounts in it) audit reports no mount, run
// from outside (--root) or inside (where mountinfo names mount points
// relative to the chroot); a file bound over /usr/bin/cat, which coreutils
// lists as /bin/cat, is one shadowed mount hiding one file, from both.
func TestShadowedInChroot(t *testing.T) {
	c := testutil.NewChroot(t)
	bin, err := os.ReadFile(testutil.Binary(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.Path("/usr/local/sbin/debseal"), bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, errs, code := debseal(t, "--root", c.Dir, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
	audit := func(want string) {
		t.Helper()
		out, errs, code := debseal(t, "--root", c.Dir, "audit", "--no-cache")
		in, inCode := c.Run(t, nil, "/usr/local/sbin/debseal", "audit", "--no-cache")
		for _, r := range []struct {
			where, out string
			code       int
		}{{"--root", out + errs, code}, {"inside the chroot", in, inCode}} {
			var shadowed []string
			for _, l := range strings.Split(r.out, "\n") {
				if strings.HasPrefix(l, "shadowed ") {
					shadowed = append(shadowed, l)
				}
			}
			switch {
			case want == "" && (r.code != 0 || len(shadowed) != 0):
				t.Errorf("audit %s: exit %d, want 0 and no mount reported:\n%s", r.where, r.code, r.out)
			case want != "" && (r.code != exitFindings || len(shadowed) != 1 || !strings.HasPrefix(shadowed[0], want)):
				t.Errorf("audit %s: exit %d, want %d and one %q…:\n%s", r.where, r.code, exitFindings, want, r.out)
			}
		}
	}
	audit("")
	decoy := filepath.Join(testutil.TempRoot(t), "cat")
	if err := os.WriteFile(decoy, []byte("#!/bin/sh\necho not cat\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	testutil.MountArgs(t, c.Path("/usr/bin/cat"), "--bind", decoy)
	audit("shadowed /usr/bin/cat [coreutils]: expected no mount, found ")
	if out, _, _ := debseal(t, "--root", c.Dir, "audit", "--no-cache"); !strings.Contains(out, "hiding 1 sealed file (mountinfo)") {
		t.Errorf("audit: the bind over /usr/bin/cat hides one sealed file (/bin/cat), got:\n%s", out)
	}
}
