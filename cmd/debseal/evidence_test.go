package main

import (
	"crypto/md5"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// evidenceSandbox is a sandbox with dstest-base 1.0 installed, the given
// debseal.conf, and everything sealed (lock --all records the manifests).
func evidenceSandbox(t *testing.T, conf string) *testutil.Sandbox {
	t.Helper()
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if conf != "" {
		if err := os.MkdirAll(s.Path("/etc/debseal"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(s.Path("/etc/debseal/debseal.conf"), []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if out, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errOut)
	}
	return s
}

// chattr sets or clears a flag by path with chattr(1): the test's own
// hands, independent of debseal. The sandbox's cleanup clears every flag
// under it.
func chattr(t *testing.T, op, path string) {
	t.Helper()
	if out, err := exec.Command("chattr", op, path).CombinedOutput(); err != nil {
		t.Fatalf("chattr %s %s: %v\n%s", op, path, err, out)
	}
}

// replaceLocked does what a root attacker does to a sealed file: clear
// the flag, change it with do, and set the flag again when relock (and
// the result is a regular file).
func replaceLocked(t *testing.T, path string, relock bool, do func(path string) error) {
	t.Helper()
	chattr(t, "-i", path)
	if err := do(path); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(path); relock && err == nil && fi.Mode().IsRegular() {
		chattr(t, "+i", path)
	}
}

func writeContent(content []byte) func(string) error {
	return func(p string) error { return os.WriteFile(p, content, 0o755) }
}

// evidenceRecords is what debseal evidence list --json says.
func evidenceRecords(t *testing.T, root string) []map[string]any {
	t.Helper()
	out, errOut, code := debseal(t, "--root", root, "evidence", "list", "--json")
	if code != 0 {
		t.Fatalf("evidence list: exit %d\n%s", code, errOut)
	}
	var recs []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l == "" {
			continue
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("evidence list --json: %v: %q", err, l)
		}
		recs = append(recs, m)
	}
	return recs
}

// auditFindings runs debseal audit --format json and returns the findings
// of kind.
func auditFindings(t *testing.T, root, kind string) ([]map[string]any, int) {
	t.Helper()
	out, _, code := debseal(t, "--root", root, "audit", "--format", "json")
	var found []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Fatalf("audit --format json: %v: %q", err, l)
		}
		if m["type"] == "finding" && m["kind"] == kind {
			found = append(found, m)
		}
	}
	return found, code
}

func readLog(t *testing.T, s *testutil.Sandbox) string {
	b, err := os.ReadFile(s.Path("/var/log/debseal.log"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

// TestEvidenceBeforeUpgrade: a sealed file tampered by root (chattr -i,
// write, chattr +i) and then reinstalled through debseal's hooks or
// wrapper: the log names it with its package and both digests, a copy of
// the tampered content is kept, dpkg replaces it as usual, and the audit
// reports it until the evidence is cleared. An untampered reinstall
// records nothing.
func TestEvidenceBeforeUpgrade(t *testing.T) {
	bin := testutil.Binary(t)
	const tool = "/usr/bin/dstest-tool"
	for _, mode := range []string{"dpkg-hooks", "wrapper"} {
		t.Run(mode, func(t *testing.T) {
			s := evidenceSandbox(t, "")
			run := hookedDpkg(s, bin)
			if mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			original, err := os.ReadFile(s.Path(tool))
			if err != nil {
				t.Fatal(err)
			}
			// Untampered: nothing recorded, twice (the second run's check
			// relies on what the first relock recorded).
			for i := 0; i < 2; i++ {
				if out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all")); code != 0 {
					t.Fatalf("reinstall: exit %d\n%s", code, out)
				}
			}
			if log := readLog(t, s); strings.Contains(log, "tampered") {
				t.Errorf("an untampered reinstall logged a tamper:\n%s", log)
			}
			if recs := evidenceRecords(t, s.Root); len(recs) != 0 {
				t.Errorf("an untampered reinstall recorded evidence: %v", recs)
			}

			evil := []byte("#!/bin/sh\necho owned\n")
			replaceLocked(t, s.Path(tool), true, writeContent(evil))
			out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if code != 0 {
				t.Fatalf("reinstall of the tampered package: exit %d\n%s", code, out)
			}
			if !strings.Contains(out, "tampered-before-upgrade: "+s.Path(tool)) && !strings.Contains(out, "tampered-before-upgrade: "+tool) {
				t.Errorf("dpkg's output does not name the tampered file:\n%s", out)
			}
			log := readLog(t, s)
			want := []string{"tampered-before-upgrade: " + tool + " (package dstest-base)",
				"md5 " + md5hex(evil) + ", md5sums says " + md5hex(original),
				"manifest says " + sha256hex(original), "evidence /var/lib/debseal/evidence/"}
			for _, w := range want {
				if !strings.Contains(log, w) {
					t.Errorf("debseal.log lacks %q:\n%s", w, log)
				}
			}
			if b, _ := os.ReadFile(s.Path(tool)); string(b) != string(original) || !testutil.IsImmutable(t, s.Path(tool)) {
				t.Errorf("after the reinstall %s is %q (locked %v), want the package's content, locked", tool, b, testutil.IsImmutable(t, s.Path(tool)))
			}
			recs := evidenceRecords(t, s.Root)
			if len(recs) != 1 {
				t.Fatalf("evidence records: %v, want one", recs)
			}
			r := recs[0]
			if r["package"] != "dstest-base" || r["path"] != tool || r["type"] != "file" || r["actual_md5"] != md5hex(evil) ||
				r["expected_md5"] != md5hex(original) || r["expected_sha256"] != sha256hex(original) || r["actual_sha256"] != sha256hex(evil) {
				t.Errorf("evidence record %v", r)
			}
			copyPath := s.Path("/var/lib/debseal/evidence/" + r["copy"].(string))
			if b, err := os.ReadFile(copyPath); err != nil || string(b) != string(evil) {
				t.Errorf("the copy %s holds %q (%v), want the tampered content", copyPath, b, err)
			}
			if fi, err := os.Stat(copyPath); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("the copy's mode: %v %v, want 0600", fi, err)
			}

			found, code := auditFindings(t, s.Root, "tampered-before-upgrade")
			if code != exitFindings || len(found) != 1 || found[0]["path"] != tool || !strings.Contains(found[0]["evidence"].(string), r["copy"].(string)) {
				t.Errorf("audit: exit %d, tampered-before-upgrade findings %v; want exit 1 and one naming %s and its copy", code, found, tool)
			}
			// Acknowledged: the audit is clean again.
			if out, errOut, code := debseal(t, "--root", s.Root, "evidence", "clear", "--all"); code != 0 || !strings.Contains(out, "cleared 1 records") {
				t.Fatalf("evidence clear --all: exit %d\n%s%s", code, out, errOut)
			}
			if found, code := auditFindings(t, s.Root, "tampered-before-upgrade"); code != 0 || len(found) != 0 {
				t.Errorf("audit after clearing: exit %d, %v", code, found)
			}
			if _, err := os.Stat(copyPath); !os.IsNotExist(err) {
				t.Errorf("the copy is still there after clearing: %v", err)
			}
		})
	}
}

// TestRefuseTamperedUpgrade: with refuse-tampered-upgrade = yes, the
// reinstall of a package with a tampered file stops before dpkg changes
// anything: debseal dpkg exits 4, a dpkg with the hooks fails (its
// pre-invoke hook exits 4); the file is still the tampered one and still
// locked, nothing else was unlocked, no journal is left; the evidence is
// kept once however often the run is retried. Put back, the file lets the
// same reinstall through.
func TestRefuseTamperedUpgrade(t *testing.T) {
	bin := testutil.Binary(t)
	const tool = "/usr/share/dstest/a/b/c/deep.txt"
	for _, mode := range []string{"dpkg-hooks", "wrapper"} {
		t.Run(mode, func(t *testing.T) {
			s := evidenceSandbox(t, "refuse-tampered-upgrade = yes\n")
			run := hookedDpkg(s, bin)
			if mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			original, _ := os.ReadFile(s.Path(tool))
			locked := immutableFiles(t, s.Root)
			replaceLocked(t, s.Path(tool), true, writeContent([]byte("evil\n")))
			for try := 0; try < 2; try++ {
				out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
				wantCode := exitRefused
				if mode == "dpkg-hooks" {
					// dpkg's own status when a hook fails; it prints the
					// hook's raw wait status, 4 << 8.
					wantCode = 2
					if !strings.Contains(out, "exit code 1024") {
						t.Errorf("dpkg's output does not give the hook's status 4 (1024 as dpkg prints it):\n%s", out)
					}
				}
				if code != wantCode || !strings.Contains(out, "refusing to let dpkg replace 1 tampered sealed files") || !strings.Contains(out, tool+" (package dstest-base)") {
					t.Fatalf("try %d: exit %d, want %d and the refusal naming %s:\n%s", try, code, wantCode, tool, out)
				}
			}
			if b, _ := os.ReadFile(s.Path(tool)); string(b) != "evil\n" || !testutil.IsImmutable(t, s.Path(tool)) {
				t.Errorf("after the refusal %s is %q, locked %v; want the tampered content, locked", tool, b, testutil.IsImmutable(t, s.Path(tool)))
			}
			if missing, extra := diffLists(locked, immutableFiles(t, s.Root)); len(missing)+len(extra) > 0 {
				t.Errorf("after the refusal: unlocked %v, newly locked %v", missing, extra)
			}
			if j, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json")); len(j) > 0 {
				t.Errorf("journals left: %v", j)
			}
			if recs := evidenceRecords(t, s.Root); len(recs) != 1 {
				t.Errorf("evidence after two refused runs: %v, want one record", recs)
			}
			// Put back by hand: the same run goes through.
			replaceLocked(t, s.Path(tool), true, writeContent(original))
			if out, code := run(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all")); code != 0 {
				t.Errorf("reinstall after the file was put back: exit %d\n%s", code, out)
			}
		})
	}
}

// TestEvidenceHostile: what an attacker leaves where a sealed file was
// must neither be followed, nor hang the run, nor fill the disk, nor stop
// dpkg: a symlink to a host file (recorded with its target, the host file
// never read or changed), a FIFO (recorded, never opened), a file over
// evidence-max-file (recorded by its digests, no copy), the evidence
// directory replaced by a symlink out of the root, and a full
// filesystem under the evidence directory (logged, dpkg goes on).
func TestEvidenceHostile(t *testing.T) {
	bin := testutil.Binary(t)
	host := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(host, []byte("host secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	decoy := t.TempDir()
	const tool = "/usr/bin/dstest-tool"
	tests := []struct {
		name    string
		conf    string
		prep    func(t *testing.T, s *testutil.Sandbox)
		logWant []string          // in debseal.log
		record  map[string]string // the evidence record's fields; nil: none expected
	}{
		{
			name: "symlink to a host file",
			prep: func(t *testing.T, s *testutil.Sandbox) {
				replaceLocked(t, s.Path(tool), false, func(p string) error { os.Remove(p); return os.Symlink(host, p) })
			},
			logWant: []string{"tampered-before-upgrade: " + tool + " (package dstest-base): symlink to " + host + " where a regular file belongs"},
			record:  map[string]string{"type": "symlink", "link": host, "no_copy": "not a regular file"},
		},
		{
			name: "FIFO",
			prep: func(t *testing.T, s *testutil.Sandbox) {
				replaceLocked(t, s.Path(tool), false, func(p string) error { os.Remove(p); return syscall.Mkfifo(p, 0o644) })
			},
			logWant: []string{"tampered-before-upgrade: " + tool + " (package dstest-base): fifo where a regular file belongs"},
			record:  map[string]string{"type": "fifo", "no_copy": "not a regular file"},
		},
		{
			name: "over evidence-max-file",
			conf: "evidence-max-file = 1M\n",
			prep: func(t *testing.T, s *testutil.Sandbox) {
				replaceLocked(t, s.Path(tool), true, writeContent(make([]byte, 3<<20)))
			},
			logWant: []string{"tampered-before-upgrade: " + tool, "no copy: 3145728 bytes, more than evidence-max-file (1048576)"},
			record:  map[string]string{"type": "file", "actual_md5": md5hex(make([]byte, 3<<20)), "no_copy": "more than evidence-max-file"},
		},
		{
			name: "evidence directory is a symlink out of the root",
			prep: func(t *testing.T, s *testutil.Sandbox) {
				replaceLocked(t, s.Path(tool), true, writeContent([]byte("evil\n")))
				if err := os.Symlink(decoy, s.Path("/var/lib/debseal/evidence")); err != nil {
					t.Fatal(err)
				}
			},
			logWant: []string{"tampered-before-upgrade: " + tool, "not checked before unlocking (dpkg goes on)", "is a symlink"},
		},
		{
			name: "evidence on a full filesystem",
			prep: func(t *testing.T, s *testutil.Sandbox) {
				replaceLocked(t, s.Path(tool), true, writeContent(make([]byte, 256<<10)))
				dir := s.Path("/var/lib/debseal/evidence")
				if err := os.MkdirAll(dir, 0o700); err != nil {
					t.Fatal(err)
				}
				if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", dir).CombinedOutput(); err != nil {
					testutil.Skip(t, "cannot mount a tmpfs: %v %s", err, out)
				}
				t.Cleanup(func() {
					if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
						t.Errorf("umount %s: %v %s", dir, err, out)
					}
				})
			},
			logWant: []string{"tampered-before-upgrade: " + tool, "copy failed", "no space left on device"},
			record:  map[string]string{"type": "file", "no_copy": "copy failed"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := evidenceSandbox(t, tt.conf)
			tt.prep(t, s)
			out, code := hookedDpkg(s, bin)(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if code != 0 {
				t.Fatalf("reinstall: exit %d\n%s", code, out)
			}
			log := readLog(t, s)
			for _, w := range tt.logWant {
				if !strings.Contains(log, w) {
					t.Errorf("debseal.log lacks %q:\n%s", w, log)
				}
			}
			if fi, err := os.Lstat(s.Path(tool)); err != nil || !fi.Mode().IsRegular() || !testutil.IsImmutable(t, s.Path(tool)) {
				t.Errorf("after the reinstall %s is %v (%v), want the package's file, locked", tool, fi, err)
			}
			if b, err := os.ReadFile(host); err != nil || string(b) != "host secret\n" || testutil.IsImmutable(t, host) {
				t.Errorf("the host file changed: %q %v", b, err)
			}
			if ents, _ := os.ReadDir(decoy); len(ents) != 0 {
				t.Errorf("evidence written out of the root: %v", ents)
			}
			if tt.record == nil {
				return
			}
			recs := evidenceRecords(t, s.Root)
			if len(recs) != 1 {
				t.Fatalf("evidence records %v, want one", recs)
			}
			for k, v := range tt.record {
				if got, _ := recs[0][k].(string); !strings.Contains(got, v) {
					t.Errorf("record %s = %q, want %q (record %v)", k, got, v, recs[0])
				}
			}
			if c, _ := recs[0]["copy"].(string); c != "" {
				t.Errorf("a copy %s was kept, want none", c)
			}
		})
	}
}

func md5hex(b []byte) string    { return fmt.Sprintf("%x", md5.Sum(b)) }
func sha256hex(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

// TestCheckReadsOnlyWhatNothingVouchesFor: the check before an upgrade
// reads a sealed file only when nothing vouches for it: neither the
// stamps lock recorded while it read every file for its manifest, nor
// the last relock's, nor the audit's cache. After lock --no-manifest (no
// file read) the first reinstall reads the package's files, unless an
// audit ran since; after a relock nothing is read; a file touched by root
// (chattr -i, chattr +i: same content, new ctime) is read again.
func TestCheckReadsOnlyWhatNothingVouchesFor(t *testing.T) {
	bin := testutil.Binary(t)
	checked := regexp.MustCompile(`checked (\d+) sealed files first, (\d+) of them read`)
	// reads reinstalls dstest-base and returns how many files its check
	// checked and read.
	reads := func(t *testing.T, s *testutil.Sandbox) (int, int) {
		t.Helper()
		before := len(readLog(t, s))
		if out, code := hookedDpkg(s, bin)(t, nil, "-i", testutil.Deb(t, "dstest-base_1.0_all")); code != 0 {
			t.Fatalf("reinstall: exit %d\n%s", code, out)
		}
		m := checked.FindStringSubmatch(readLog(t, s)[before:])
		if m == nil {
			t.Fatalf("no check logged:\n%s", readLog(t, s)[before:])
		}
		c, _ := strconv.Atoi(m[1])
		r, _ := strconv.Atoi(m[2])
		return c, r
	}
	tests := []struct {
		name      string
		lock      []string
		audit     bool
		firstRead bool // the first reinstall reads files
	}{
		{name: "lock records what it reads", lock: []string{"lock", "--all"}},
		{name: "lock --no-manifest reads nothing", lock: []string{"lock", "--all", "--no-manifest"}, firstRead: true},
		{name: "an audit read them since", lock: []string{"lock", "--all", "--no-manifest"}, audit: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
			if out, errOut, code := debseal(t, append([]string{"--root", s.Root}, tt.lock...)...); code != 0 {
				t.Fatalf("%v: exit %d\n%s%s", tt.lock, code, out, errOut)
			}
			if tt.audit {
				debseal(t, "--root", s.Root, "audit") // no-manifest findings: exit 1; the cache is written
			}
			c, r := reads(t, s)
			switch {
			case c == 0:
				t.Fatal("the check looked at nothing")
			case tt.firstRead && r == 0:
				t.Errorf("the first reinstall read nothing: what vouched for the files?")
			case !tt.firstRead && r != 0:
				t.Errorf("the first reinstall read %d of %d files, want none", r, c)
			}
			if _, r := reads(t, s); r != 0 {
				t.Errorf("after a relock, the reinstall read %d files, want none", r)
			}
			chattr(t, "-i", s.Path("/usr/share/dstest/a/b/c/deep.txt"))
			chattr(t, "+i", s.Path("/usr/share/dstest/a/b/c/deep.txt"))
			if _, r := reads(t, s); r != 1 {
				t.Errorf("after chattr -i/+i of one file, the reinstall read %d files, want 1", r)
			}
		})
	}
}
