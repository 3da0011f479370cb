package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/seal"
	"github.com/debseal/debseal/pkg/testutil"
)

var faultErrnos = []struct {
	name  string
	errno syscall.Errno
}{{"ENOSPC", syscall.ENOSPC}, {"EIO", syscall.EIO}}

// maxFaultIndex bounds the loops over write indexes: far more than any
// run here makes, so reaching it means the loop does not end.
const maxFaultIndex = 300

// injectAt makes the n-th change to debseal's own files in this process
// fail with errno; it returns whether it fired.
func injectAt(t *testing.T, errno syscall.Errno, n int64) *atomic.Bool {
	var count atomic.Int64
	fired := &atomic.Bool{}
	confined.Fault = func(op, path string) error {
		if count.Add(1) == n {
			fired.Store(true)
			t.Logf("injected %v at %s %s", errno, op, path)
			return errno
		}
		return nil
	}
	t.Cleanup(func() { confined.Fault = nil })
	return fired
}

// pendingFiles lists the files of the pending packages, from dpkg's lists.
func pendingFiles(t *testing.T, s *testutil.Sandbox, names []string) map[string]bool {
	out := map[string]bool{}
	for _, n := range names {
		lists, _ := filepath.Glob(filepath.Join(s.Admindir, "info", n+"*.list"))
		for _, l := range lists {
			f, err := os.Open(l)
			if err != nil {
				continue
			}
			sc := bufio.NewScanner(f)
			for sc.Scan() {
				out[sc.Text()] = true
			}
			f.Close()
		}
	}
	return out
}

// checkConsistent is the invariant after any failure: the state parses,
// every journal parses, nothing is flagged that the state does not seal,
// and every sealed file left unlocked is named by a journal or belongs to
// a pending package.
func checkConsistent(t *testing.T, s *testutil.Sandbox, what string) {
	t.Helper()
	st, err := seal.LoadState(s.Root)
	if err != nil {
		t.Errorf("%s: state: %v", what, err)
		return
	}
	js, errs := seal.Journals(s.Root)
	if len(errs) > 0 {
		t.Errorf("%s: journals: %v", what, errs)
	}
	pending, err := seal.Pending(s.Root)
	if err != nil {
		t.Errorf("%s: pending: %v", what, err)
	}
	var want []string
	if st.All {
		want, _ = testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
	}
	missing, extra := diffLists(want, immutableFiles(t, s.Root))
	if len(extra) > 0 {
		t.Errorf("%s: locked although the state does not seal them: %v", what, extra)
	}
	covered := pendingFiles(t, s, pending)
	for _, j := range js {
		for _, e := range j.Unlocked {
			covered[e.Path] = true
		}
	}
	// A journal names an inode by one of its paths: a hard link to it is
	// covered too.
	coveredInode := map[[2]uint64]bool{}
	for p := range covered {
		if id, ok := inodeOf(s.Path(p)); ok {
			coveredInode[id] = true
		}
	}
	for _, m := range missing {
		if id, ok := inodeOf(s.Path(m)); !covered[m] && !(ok && coveredInode[id]) {
			t.Errorf("%s: %s is left unlocked, and neither a journal nor the pending list names it", what, m)
		}
	}
}

// inodeOf is the device and inode of a path (not followed).
func inodeOf(p string) ([2]uint64, bool) {
	fi, err := os.Lstat(p)
	if err != nil {
		return [2]uint64{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return [2]uint64{}, false
	}
	return [2]uint64{uint64(st.Dev), st.Ino}, true
}

// repairs checks that, once the fault is gone, recover and the next dpkg
// run (through the hooks) succeed and leave every sealed file locked.
func repairs(t *testing.T, s *testutil.Sandbox, bin, what string, next ...string) {
	t.Helper()
	if out, errOut, code := debseal(t, "--root", s.Root, "recover"); code != 0 {
		t.Fatalf("%s: recover after the fault: exit %d\n%s%s", what, code, out, errOut)
	}
	if out, code := hookedDpkg(s, bin)(t, nil, next...); code != 0 {
		t.Fatalf("%s: next dpkg run: exit %d\n%s", what, code, out)
	}
	want, _ := testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
	if missing, extra := diffLists(want, immutableFiles(t, s.Root)); len(missing)+len(extra) > 0 {
		t.Fatalf("%s: after recover and the next run: not locked %v, wrongly locked %v", what, missing, extra)
	}
	if js, _ := seal.Journals(s.Root); len(js) > 0 {
		t.Errorf("%s: journals left after recover and the next run: %d", what, len(js))
	}
}

// TestFaultsDuringLock fails each change lock --all makes to debseal's own
// files in turn (ENOSPC, EIO), until a run makes no more: every failure is
// reported, leaves a consistent state, and lock --all and dpkg work again
// once the fault is gone.
func TestFaultsDuringLock(t *testing.T) {
	bin := testutil.Binary(t)
	for _, fe := range faultErrnos {
		t.Run(fe.name, func(t *testing.T) {
			for n := int64(1); ; n++ {
				if n == maxFaultIndex {
					t.Fatal("the fault loop does not end")
				}
				s := testutil.NewSandbox(t)
				s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
				fired := injectAt(t, fe.errno, n)
				out, errOut, code := debseal(t, "--root", s.Root, "lock", "--all")
				confined.Fault = nil
				what := fmt.Sprintf("%s at change %d", fe.name, n)
				if !fired.Load() {
					if code != 0 {
						t.Fatalf("lock --all without a fault: exit %d\n%s%s", code, out, errOut)
					}
					t.Logf("lock --all makes %d changes to debseal's own files", n-1)
					break
				}
				if code == 0 || !strings.Contains(errOut, fe.errno.Error()) {
					t.Errorf("%s: lock --all exit %d, want a failure that says %q:\n%s%s", what, code, fe.errno.Error(), out, errOut)
				}
				checkConsistent(t, s, what)
				if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
					t.Fatalf("%s: lock --all again: exit %d\n%s", what, code, errOut)
				}
				repairs(t, s, bin, what, "-i", testutil.Deb(t, "dstest-base_2.0_all"))
			}
		})
	}
}

// killFault is DEBSEAL_FAULT_IO's KILL: SIGKILL before the n-th change
// (for a process run from its binary; errno is unused).
var killFault = struct {
	name  string
	errno syscall.Errno
}{"KILL", 0}

// checkManifests: every manifest in the store reads back whole (a write
// cut short leaves the old manifest or the new one, never a broken one).
func checkManifests(t *testing.T, s *testutil.Sandbox, what string) {
	t.Helper()
	files, _ := filepath.Glob(s.Path("/var/lib/debseal/manifests/*.manifest"))
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		if _, err := manifest.Read(fh, f); err != nil {
			t.Errorf("%s: %v", what, err)
		}
		fh.Close()
	}
}

// TestKilledDuringLock kills lock --all (the binary) before each change
// it makes to debseal's own files in turn, until a run makes no more:
// every kill leaves nothing locked that the state does not seal, and
// whole manifests (they are written in one batch: temporary files, one
// flush, renames, one flush of the directory); lock --all then completes
// and the audit is clean.
func TestKilledDuringLock(t *testing.T) {
	bin := testutil.Binary(t)
	for n := 1; ; n++ {
		if n == maxFaultIndex {
			t.Fatal("the kill loop does not end")
		}
		s := testutil.NewSandbox(t)
		s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"), testutil.Deb(t, "dstest-multi_1.0_i386"))
		out, code := runCmd(t, []string{fmt.Sprintf("DEBSEAL_FAULT_IO=KILL:%d", n)}, bin, "--root", s.Root, "lock", "--all")
		what := fmt.Sprintf("killed before change %d", n)
		if !strings.Contains(out, "debseal: fault injected") {
			if code != 0 {
				t.Fatalf("lock --all without a kill: exit %d\n%s", code, out)
			}
			t.Logf("lock --all makes %d changes to debseal's own files", n-1)
			if n < 10 {
				t.Fatalf("only %d changes: the kill never reached the manifests", n-1)
			}
			break
		}
		// The state may claim files the kill left unlocked (lock saves it
		// before it sets any flag), never the other way round.
		st, err := seal.LoadState(s.Root)
		if err != nil {
			t.Fatalf("%s: state: %v", what, err)
		}
		var want []string
		if st.All {
			want, _ = testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
		}
		if _, extra := diffLists(want, immutableFiles(t, s.Root)); len(extra) > 0 {
			t.Errorf("%s: locked although the state does not seal them: %v", what, extra)
		}
		checkManifests(t, s, what)
		if out, code := runCmd(t, nil, bin, "--root", s.Root, "lock", "--all"); code != 0 {
			t.Fatalf("%s: lock --all again: exit %d\n%s", what, code, out)
		}
		if out, code := runCmd(t, nil, bin, "--root", s.Root, "audit"); code != 0 {
			t.Errorf("%s: audit after lock --all again: exit %d\n%s", what, code, out)
		}
	}
}

// TestFaultsDuringHookCycle fails the n-th change one hook process
// (dpkg's pre-invoke, or its post-invoke) makes to debseal's own files, for
// every n until the hook makes no more: the run leaves a consistent state,
// and recover and the next run repair everything.
func TestFaultsDuringHookCycle(t *testing.T) {
	bin := testutil.Binary(t)
	for _, fe := range append(faultErrnos, killFault) {
		for _, hook := range []string{"dpkg-pre", "dpkg-post"} {
			t.Run(fe.name+"/"+hook, func(t *testing.T) {
				s := testutil.NewSandbox(t)
				s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
				if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
					t.Fatalf("lock --all: %s", errOut)
				}
				versions := []string{"2.0", "1.0"}
				for n := 1; ; n++ {
					if n == maxFaultIndex {
						t.Fatal("the fault loop does not end")
					}
					deb := testutil.Deb(t, "dstest-base_"+versions[n%2]+"_all")
					out, code := hookedDpkg(s, bin)(t, []string{fmt.Sprintf("DEBSEAL_FAULT_IO=%s:%d:%s", fe.name, n, hook)}, "-i", deb)
					what := fmt.Sprintf("%s at change %d of %s", fe.name, n, hook)
					fired := strings.Contains(out, "debseal: fault injected")
					t.Logf("%s: dpkg exit %d\n%s", what, code, out)
					checkConsistent(t, s, what)
					checkManifests(t, s, what)
					repairs(t, s, bin, what, "-i", deb)
					if !fired {
						if code != 0 {
							t.Fatalf("hooked dpkg without a fault: exit %d\n%s", code, out)
						}
						t.Logf("%s makes %d changes to debseal's own files", hook, n-1)
						break
					}
				}
			})
		}
	}
}

// TestFaultsDuringRecover crashes a hooked run after it unlocked files,
// then fails the n-th change recover makes to debseal's own files, for
// every n until recover makes no more.
func TestFaultsDuringRecover(t *testing.T) {
	bin := testutil.Binary(t)
	for _, fe := range faultErrnos {
		t.Run(fe.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
			if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatalf("lock --all: %s", errOut)
			}
			versions := []string{"2.0", "1.0"}
			for n := int64(1); ; n++ {
				if n == maxFaultIndex {
					t.Fatal("the fault loop does not end")
				}
				deb := testutil.Deb(t, "dstest-base_"+versions[n%2]+"_all")
				hookedDpkg(s, bin)(t, []string{"DEBSEAL_FAULT=after-unlock"}, "-i", deb)
				waitDpkgDone(t, s)
				if js, _ := seal.Journals(s.Root); len(js) == 0 {
					t.Fatal("the crashed run left no journal: nothing to recover")
				}
				fired := injectAt(t, fe.errno, n)
				out, errOut, code := debseal(t, "--root", s.Root, "recover")
				confined.Fault = nil
				what := fmt.Sprintf("%s at change %d of recover", fe.name, n)
				t.Logf("%s: exit %d\n%s%s", what, code, out, errOut)
				checkConsistent(t, s, what)
				// A failed write of a best-effort file (the apt index
				// cache, the log, the sync stamp) may pass silently; the
				// journal's removal may not.
				if fired.Load() && code == 0 && strings.Contains(out+errOut, "journal") {
					t.Errorf("%s: recover exit 0 although the journal could not be handled", what)
				}
				repairs(t, s, bin, what, "-i", deb)
				if !fired.Load() {
					if code != 0 {
						t.Fatalf("recover without a fault: exit %d\n%s%s", code, out, errOut)
					}
					t.Logf("recover makes %d changes to debseal's own files", n-1)
					break
				}
			}
		})
	}
}

// fillDisk writes a file in dir until the filesystem is full, and returns
// its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	p := filepath.Join(dir, "filler")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, size := range []int{1 << 20, 4096, 1} {
		buf := make([]byte, size)
		for {
			if _, err := f.Write(buf); err != nil {
				if !errors.Is(err, syscall.ENOSPC) {
					t.Fatal(err)
				}
				break
			}
		}
	}
	f.Sync()
	return p
}

// TestLockOnFullDisk fills a real (loop-mounted ext4) filesystem before
// lock --all: lock fails, saying why, and locks nothing; once space is
// freed, lock and a dpkg install through the hooks work and every sealed
// file is locked. Before the fix every file got +i while the state could
// not be saved.
func TestLockOnFullDisk(t *testing.T) {
	testutil.RequireRoot(t)
	testutil.RequireCommand(t, "dpkg", "dpkg-deb", "mkfs.ext4")
	bin := testutil.Binary(t)
	mnt := filepath.Join(t.TempDir(), "mnt")
	testutil.Mount(t, "ext4", mnt)
	s := testutil.InitSandbox(t, mnt)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
	filler := fillDisk(t, mnt)
	out, errOut, code := debseal(t, "--root", s.Root, "lock", "--all")
	t.Logf("lock --all on a full disk: exit %d\n%s%s", code, out, errOut)
	if code == 0 || !strings.Contains(errOut, "no space left on device") {
		t.Errorf("lock --all on a full disk: exit %d, want a failure saying the disk is full", code)
	}
	if locked := immutableFiles(t, s.Root); len(locked) > 0 {
		t.Errorf("lock --all on a full disk locked %v although the state could not be saved", locked)
	}
	checkConsistent(t, s, "full disk")
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if _, errOut, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all after freeing space: exit %d\n%s", code, errOut)
	}
	repairs(t, s, bin, "after freeing space", "-i", testutil.Deb(t, "dstest-base_2.0_all"))
}
