package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/dpkghook"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// lift clears a file's immutable flag by path, as `chattr -i` does, and
// returns when: the moment the window of a lifted finding must contain.
func lift(t *testing.T, path string) time.Time {
	t.Helper()
	at := time.Now()
	setInodeFlag(t, path, 0x10, false)
	if testutil.IsImmutable(t, path) {
		t.Fatalf("%s is still immutable", path)
	}
	return at
}

// lockFinding is the lock-state finding of one path in an audit (kind
// "" when there is none), with its JSON.
func lockFinding(t *testing.T, all []jsonFinding, path string) jsonFinding {
	t.Helper()
	var out jsonFinding
	for _, f := range all {
		if f.Path == path && (f.Kind == "lifted" || f.Kind == "not-locked") {
			if out.Kind != "" {
				t.Errorf("%s: two lock findings, %s and %s", path, out.Kind, f.Kind)
			}
			out = f
		}
	}
	return out
}

// checkWindow: a lifted finding's window holds the moment of the lift.
func checkWindow(t *testing.T, f jsonFinding, liftedAt time.Time, by string) {
	t.Helper()
	if f.Kind != "lifted" {
		t.Fatalf("%s: finding %q (%+v), want lifted", f.Path, f.Kind, f)
	}
	seenAt, err1 := time.Parse(time.RFC3339, f.SeenLocked)
	foundAt, err2 := time.Parse(time.RFC3339, f.FoundUnlocked)
	if err1 != nil || err2 != nil {
		t.Fatalf("%s: window %q .. %q does not parse: %v %v", f.Path, f.SeenLocked, f.FoundUnlocked, err1, err2)
	}
	if seenAt.After(liftedAt) || foundAt.Before(liftedAt) || f.SeenBy != by {
		t.Errorf("%s: seen locked by %s at %v, found unlocked at %v; want a window by %s that holds the lift at %v",
			f.Path, f.SeenBy, seenAt, foundAt, by, liftedAt)
	}
	if !strings.Contains(f.Expected, f.SeenLocked) || !strings.Contains(f.Actual, f.FoundUnlocked) {
		t.Errorf("%s: expected %q, actual %q do not give the window", f.Path, f.Expected, f.Actual)
	}
}

// TestAuditLifted: a sealed file whose flag is lifted outside any dpkg
// run is reported as lifted, with a window that holds the lift, whether
// lock, the relock after a dpkg run or an audit saw it locked last; a
// file never locked is still not-locked; a file a running dpkg's journal
// names is neither, and one an interrupted run's journal names is
// not-locked (debseal unlocked it; recovery relocks it).
func TestAuditLifted(t *testing.T) {
	s := testutil.NewSandbox(t)
	bin := testutil.Binary(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"))
	if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s", code, errOut)
	}
	deep, suid := "/usr/share/dstest/a/b/c/deep.txt", "/usr/bin/dstest-suid"

	// Seen by lock, no audit since.
	at := lift(t, s.Path(deep))
	_, all, code := auditJSON(t, "--root", s.Root, "audit")
	if code != 1 {
		t.Errorf("audit after a lift: exit %d, want 1", code)
	}
	first := lockFinding(t, all, deep)
	checkWindow(t, first, at, "lock")
	// The evidence stays: the next audit says the same.
	_, all, _ = auditJSON(t, "--root", s.Root, "audit")
	if again := lockFinding(t, all, deep); again.SeenLocked != first.SeenLocked || again.Kind != "lifted" {
		t.Errorf("second audit: %+v, want the same window as the first (%s)", again, first.SeenLocked)
	}
	out, _, _ := debseal(t, "--root", s.Root, "audit")
	if !strings.Contains(out, "lifted "+deep+" [dstest-base]: expected immutable (seen locked by lock at "+first.SeenLocked+")") {
		t.Errorf("text audit lacks the lifted line:\n%s", out)
	}

	// Seen by an audit: lock again, audit (clean), lift.
	if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all again: exit %d\n%s", code, errOut)
	}
	if byPath, _, code := auditJSON(t, "--root", s.Root, "audit"); code != 0 {
		t.Fatalf("audit after relocking: exit %d, %v", code, byPath)
	}
	at = lift(t, s.Path(suid))
	_, all, _ = auditJSON(t, "--root", s.Root, "audit")
	checkWindow(t, lockFinding(t, all, suid), at, "audit")
	if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s", code, errOut)
	}

	// Seen by the relock after a dpkg run: an upgrade through the hooks
	// replaces the files (new inodes), then one is lifted.
	if out, code := hookedDpkg(s, bin)(t, nil, "-i", testutil.Deb(t, "dstest-base_2.0_all")); code != 0 {
		t.Fatalf("hooked dpkg -i: exit %d\n%s", code, out)
	}
	at = lift(t, s.Path(deep))
	_, all, _ = auditJSON(t, "--root", s.Root, "audit")
	checkWindow(t, lockFinding(t, all, deep), at, "relock")

	// Never locked: a package installed behind debseal's back (plain
	// dpkg) while everything is sealed.
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-multi_1.0_amd64"))
	_, all, _ = auditJSON(t, "--root", s.Root, "audit")
	if f := lockFinding(t, all, "/usr/share/doc/dstest-multi/README"); f.Kind != "not-locked" {
		t.Errorf("a file never locked: %q, want not-locked", f.Kind)
	}

	// A journal names the lifted file: by a running process (this test),
	// then by one that is gone.
	if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s", code, errOut)
	}
	lift(t, s.Path(suid))
	self, err := dpkghook.ReadProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	live := seal.Process{Pid: self.Pid, StartTime: self.StartTime, Via: "wrapper"}
	gone := seal.Process{Pid: self.Pid, StartTime: self.StartTime + 1, Via: "wrapper"} // a recycled pid: not this process
	for _, tc := range []struct {
		owner seal.Process
		want  string
	}{{live, ""}, {gone, "not-locked"}} {
		j := writeJournal(t, s, tc.owner, "dstest-base", suid)
		_, all, _ = auditJSON(t, "--root", s.Root, "audit")
		if f := lockFinding(t, all, suid); f.Kind != tc.want {
			t.Errorf("lifted while a journal of %+v names it: %q, want %q", tc.owner, f.Kind, tc.want)
		}
		if err := os.Remove(j); err != nil {
			t.Fatal(err)
		}
	}
	// The journal gone, the file is lifted again: its sighting was kept.
	_, all, _ = auditJSON(t, "--root", s.Root, "audit")
	if f := lockFinding(t, all, suid); f.Kind != "lifted" {
		t.Errorf("after the journal went: %q, want lifted", f.Kind)
	}
}

// writeJournal writes the journal of a transaction of owner that unlocked
// the file rel of pkg, as pkg/seal's Begin would, and returns its path.
func writeJournal(t *testing.T, s *testutil.Sandbox, owner seal.Process, pkg, rel string) string {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(s.Path(rel), &st); err != nil {
		t.Fatal(err)
	}
	j := seal.Journal{Version: 1, Owner: owner, Created: time.Now().UTC(), Packages: []string{pkg},
		Unlocked: []seal.Entry{{Path: rel, Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Pkgs: []string{pkg}}}}
	b, err := json.Marshal(j)
	if err != nil {
		t.Fatal(err)
	}
	dir := s.Path("/var/lib/debseal/journal")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, fmt.Sprintf("%s-%d-%d.json", owner.Via, owner.Pid, owner.StartTime))
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if js, errs := seal.Journals(s.Root); len(js) != 1 || len(errs) > 0 {
		t.Fatalf("the test's journal does not read back: %d journals, %v", len(js), errs)
	}
	return p
}
