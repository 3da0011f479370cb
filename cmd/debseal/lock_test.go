package main

import (
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// installAll installs the test packages that exercise locking.
func installAll(t *testing.T, s *testutil.Sandbox) {
	t.Helper()
	s.MustDpkg(t, "-i",
		testutil.Deb(t, "dstest-base_1.0_all"),
		testutil.Deb(t, "dstest-multi_1.0_amd64"),
		testutil.Deb(t, "dstest-multi_1.0_i386"))
	// Second run: the diverter's preinst diverts a file of dstest-base
	// with --rename, the override's postinst changes another's mode, and
	// the plugin fires dstest-base's file trigger.
	s.MustDpkg(t, "-i",
		testutil.Deb(t, "dstest-diverter_1.0_all"),
		testutil.Deb(t, "dstest-override_1.0_all"),
		testutil.Deb(t, "dstest-plugin_1.0_all"))
}

// wantLocked lists, by hand, the files lock --all must make immutable after
// installAll: every regular package file except the conffile and /var, at
// its real (diverted) location. Nothing else under the root may be.
var wantLocked = []string{
	"/usr/bin/dstest-divertme",         // dstest-diverter's own file
	"/usr/bin/dstest-divertme.distrib", // dstest-base's, diverted
	"/usr/bin/dstest-private",          // mode changed by dpkg-statoverride
	"/usr/bin/dstest-suid",
	"/usr/bin/dstest-tool",
	"/usr/bin/dstest-tool-hardlink",
	"/usr/lib/i386-linux-gnu/libdstest.so.1",
	"/usr/lib/x86_64-linux-gnu/libdstest.so.1",
	"/usr/share/doc/dstest-base/copyright",
	"/usr/share/doc/dstest-multi/README", // listed by both architectures
	"/usr/share/doc/dstest-override/copyright",
	"/usr/share/dstest/a/b/c/deep.txt",
	"/usr/share/dstest/dropped-in-2.0.txt",
	"/usr/share/dstest/name with spaces.txt",
	"/usr/share/dstest/plugins/plugin.conf",
}

// immutableFiles walks the whole sandbox and returns every path (relative
// to the root, with a leading /) whose inode carries the immutable flag,
// read with testutil's own ioctl, not debseal's.
func immutableFiles(t *testing.T, root string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch strings.TrimPrefix(p, root) {
			case "/proc", "/sys", "/dev":
				return filepath.SkipDir // kernel filesystems mounted in a chroot
			case "/var/lib/debseal/manifests":
				// debseal's own manifests are immutable by design (the
				// hooks record them); TestAuditTampering checks them.
				return filepath.SkipDir
			}
		}
		if !d.Type().IsRegular() && !d.IsDir() {
			return nil
		}
		v, err := testutil.Flags(p)
		if err != nil {
			return err
		}
		if v&0x10 != 0 {
			out = append(out, "/"+strings.TrimPrefix(strings.TrimPrefix(p, root), "/"))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func ctimes(t *testing.T, root string) map[string]unix.Timespec {
	t.Helper()
	m := map[string]unix.Timespec{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		m[p] = st.Ctim
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func sameStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestLockUnlockRealDpkg(t *testing.T) {
	s := testutil.NewSandbox(t)
	installAll(t, s)
	conffile := s.Path("/etc/dstest/dstest.conf")
	before := ctimes(t, s.Root)

	out, errs, code := debseal(t, "--root", s.Root, "lock", "--all")
	if code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
	// verity = auto: this filesystem either takes fs-verity or is noted
	// once as not taking it (never an error).
	if !strings.Contains(out, "fs-verity: enabled on ") && !strings.Contains(out, "fs-verity: not available on device ") {
		t.Errorf("lock --all says nothing about fs-verity:\n%s", out)
	}
	if got := immutableFiles(t, s.Root); !sameStrings(got, wantLocked) {
		t.Fatalf("immutable after lock --all:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(wantLocked, "\n  "))
	}
	// Conffiles and symlinks are never touched: their ctime is unchanged.
	afterLock := ctimes(t, s.Root)
	for _, p := range []string{conffile, s.Path("/usr/bin/dstest-link"), s.Path("/usr/share/dstest/hostname-link"), s.Path("/var/lib/dstest/state")} {
		if afterLock[p] != before[p] {
			t.Errorf("%s was touched by lock (ctime changed)", p)
		}
	}
	if fi, err := os.Stat(s.Path("/usr/bin/dstest-private")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("statoverride mode lost: %v %v", fi.Mode(), err)
	}

	// Even root cannot change a locked file.
	for _, rel := range wantLocked {
		p := s.Path(rel)
		ops := map[string]func() error{
			"write": func() error {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_TRUNC, 0)
				if err == nil {
					f.Close()
				}
				return err
			},
			"append": func() error {
				f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND, 0)
				if err == nil {
					f.Close()
				}
				return err
			},
			"unlink": func() error { return os.Remove(p) },
			"rename": func() error { return os.Rename(p, p+".moved") },
			"chmod":  func() error { return os.Chmod(p, 0o777) },
			"chown":  func() error { return os.Lchown(p, 1, 1) },
		}
		for name, op := range ops {
			if err := op(); !errors.Is(err, syscall.EPERM) {
				t.Errorf("%s %s as root: error = %v, want EPERM", name, rel, err)
			}
		}
	}
	if err := os.WriteFile(conffile, []byte("edited = yes\n"), 0o644); err != nil {
		t.Errorf("the conffile must stay editable: %v", err)
	}

	// A second lock changes nothing: no ioctl moved any ctime. (15 paths,
	// 14 inodes: the tool and its hard link share one.)
	out, _, code = debseal(t, "--root", s.Root, "lock", "--all")
	if code != 0 || !strings.Contains(out, "locked 0 files, 14 already locked") || strings.Contains(out, "fs-verity") {
		t.Errorf("second lock: exit %d, output %q (nothing to say about fs-verity: noted once)", code, out)
	}
	afterSecond := ctimes(t, s.Root)
	for p, c := range afterLock {
		if p == conffile || strings.HasPrefix(p, s.Path("/var/lib/debseal")) {
			continue // the conffile was edited above; debseal's own state may change
		}
		if afterSecond[p] != c {
			t.Errorf("second lock changed %s", p)
		}
	}

	out, errs, code = debseal(t, "--root", s.Root, "unlock", "--all")
	if code != 0 {
		t.Fatalf("unlock --all: exit %d\n%s%s", code, out, errs)
	}
	if got := immutableFiles(t, s.Root); len(got) != 0 {
		t.Fatalf("still immutable after unlock --all: %v", got)
	}
	for _, rel := range wantLocked {
		if err := os.WriteFile(s.Path(rel), []byte("mutable again"), 0o755); err != nil {
			t.Errorf("write %s after unlock: %v", rel, err)
		}
	}
}

func TestLockSomePackagesAndStatus(t *testing.T) {
	s := testutil.NewSandbox(t)
	installAll(t, s)
	if out, errs, code := debseal(t, "--root", s.Root, "lock", "dstest-multi:i386", "dstest-override"); code != 0 {
		t.Fatalf("lock: exit %d\n%s%s", code, out, errs)
	}
	want := []string{"/usr/lib/i386-linux-gnu/libdstest.so.1", "/usr/share/doc/dstest-multi/README", "/usr/share/doc/dstest-override/copyright"}
	if got := immutableFiles(t, s.Root); !sameStrings(got, want) {
		t.Errorf("immutable = %v, want %v", got, want)
	}
	out, _, code := debseal(t, "--root", s.Root, "status", "--json", "dstest-override", "dstest-base")
	if code != 0 {
		t.Fatalf("status: exit %d: %s", code, out)
	}
	for _, s := range []string{`"package": "dstest-override"`, `"locked": 1`, `"mode": "packages"`, `"conffile": 1`} {
		if !strings.Contains(out, s) {
			t.Errorf("status --json lacks %s:\n%s", s, out)
		}
	}
	if _, _, code := debseal(t, "--root", s.Root, "lock", "no-such-package"); code != exitError {
		t.Errorf("lock of an unknown package: exit %d, want %d", code, exitError)
	}
	if _, _, code := debseal(t, "--root", s.Root, "lock", "dstest-base", "--all"); code != exitUsage {
		t.Errorf("option after package names: exit %d, want %d", code, exitUsage)
	}
}

func TestLockVerifyRefusesTamperedFiles(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	tampered := s.Path("/usr/share/dstest/a/b/c/deep.txt")
	if err := os.WriteFile(tampered, []byte("evil\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, _, code := debseal(t, "--root", s.Root, "lock", "--verify", "--all")
	if code != exitFindings {
		t.Errorf("lock --verify with a tampered file: exit %d, want %d\n%s", code, exitFindings, out)
	}
	if !strings.Contains(out, "MISMATCH "+"/usr/share/dstest/a/b/c/deep.txt") {
		t.Errorf("mismatch not reported:\n%s", out)
	}
	if testutil.IsImmutable(t, tampered) {
		t.Error("the tampered file was sealed")
	}
	if !testutil.IsImmutable(t, s.Path("/usr/bin/dstest-tool")) {
		t.Error("the intact files were not locked")
	}
}

func TestBadDatabaseLocksNothing(t *testing.T) {
	tests := []struct {
		name     string
		damage   func(s *testutil.Sandbox) error
		wantCode int
		wantMsg  string
		locked   bool // whether dstest-multi's files may still be locked
	}{
		{"truncated status", func(s *testutil.Sandbox) error {
			b, err := os.ReadFile(filepath.Join(s.Admindir, "status"))
			if err != nil {
				return err
			}
			i := strings.Index(string(b), "Status:")
			return os.WriteFile(filepath.Join(s.Admindir, "status"), append(b[:i+4:i+4], "\n"...), 0o644)
		}, exitError, "status:", false},
		{"stanza without Package", func(s *testutil.Sandbox) error {
			f, err := os.OpenFile(filepath.Join(s.Admindir, "status"), os.O_APPEND|os.O_WRONLY, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteString("\nStatus: install ok installed\nVersion: 1\n")
			return err
		}, exitError, "without a Package field", false},
		{"diversions missing a line", func(s *testutil.Sandbox) error {
			return os.WriteFile(filepath.Join(s.Admindir, "diversions"), []byte("/usr/bin/dstest-tool\n/usr/bin/dstest-tool.x\n"), 0o644)
		}, exitError, "diversions:2", false},
		{"list with .. path", func(s *testutil.Sandbox) error {
			return os.WriteFile(filepath.Join(s.Admindir, "info", "dstest-base.list"), []byte("/.\n/usr/bin/dstest-tool\n/usr/../etc/shadow\n"), 0o644)
		}, exitPartial, "dstest-base.list:3", true},
		{"unreadable list", func(s *testutil.Sandbox) error {
			p := filepath.Join(s.Admindir, "info", "dstest-base.list")
			if err := os.Remove(p); err != nil {
				return err
			}
			return os.Mkdir(p, 0o755)
		}, exitPartial, "dstest-base.list", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
			if err := tt.damage(s); err != nil {
				t.Fatal(err)
			}
			out, errs, code := debseal(t, "--root", s.Root, "lock", "--all")
			if code != tt.wantCode || !strings.Contains(out+errs, tt.wantMsg) {
				t.Errorf("lock --all: exit %d (want %d), output:\n%s%s\nwant it to name %q", code, tt.wantCode, out, errs, tt.wantMsg)
			}
			got := immutableFiles(t, s.Root)
			for _, p := range got {
				if strings.Contains(p, "dstest-tool") || strings.Contains(p, "/dstest/") {
					t.Errorf("%s locked on the strength of bad data", p)
				}
			}
			if !tt.locked && len(got) > 0 {
				t.Errorf("files locked despite a corrupt database: %v", got)
			}
			if tt.locked && len(got) == 0 {
				t.Error("the intact package was not locked")
			}
		})
	}
}

func TestRefusesHostRoot(t *testing.T) {
	testutil.RequireRoot(t)
	_, errs, code := debseal(t, "lock", "--all")
	if code != exitError || !strings.Contains(errs, "refusing") {
		t.Fatalf("lock --all on the host root: exit %d, stderr %q", code, errs)
	}
	if _, err := os.Stat("/var/lib/debseal/sealed"); err == nil {
		t.Error("a state file was written on the host")
	}
}

// Problems go to stderr: status --json's stdout must stay one valid JSON
// document whatever happens (a corrupt journal here).
func TestStatusJSONStaysValidWithProblems(t *testing.T) {
	s, _ := lockedSandbox(t)
	jdir := s.Path("/var/lib/debseal/journal")
	if err := os.MkdirAll(jdir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(jdir, "wrapper-1-1.json"), []byte("{not json"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errOut, code := debseal(t, "--root", s.Root, "status", "--json")
	if code != 3 || !strings.Contains(errOut, "corrupt") {
		t.Errorf("status --json with a corrupt journal: exit %d, stderr %q; want 3 and the problem on stderr", code, errOut)
	}
	var v map[string]any
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Errorf("status --json stdout is not JSON: %v\n%s", err, out)
	}
}
