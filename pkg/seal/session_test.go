package seal

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func locked(w *world, p string) bool { return w.fs.nodes[p].flags&0x10 != 0 }

// A second Apply on the same targets must see the state the first one
// left: the class of bug where a rollback trusted the pre-change cached
// state and skipped every file it had to put back.
func TestApplyUpdatesCachedState(t *testing.T) {
	w := newWorld(t, []fakePkg{{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b"}}}, "",
		func(f *fakeFS) {
			f.file("/usr/bin/a", "a").flags = 0x10
			f.file("/usr/bin/b", "b").flags = 0x10
		}, nil)
	w.pl.ForUnlock = true
	plan := w.plan(t)
	ctx := context.Background()
	for i, on := range []bool{false, true, false, true} {
		sum := Apply(ctx, w.fs, plan.Targets, on, 2, nil)
		if sum.Changed != 2 || len(sum.Errors) != 0 {
			t.Fatalf("Apply #%d (on=%v) on the same targets: changed %d, errors %v; want 2, none", i, on, sum.Changed, sum.Errors)
		}
		for _, p := range []string{"/usr/bin/a", "/usr/bin/b"} {
			if locked(w, p) != on {
				t.Errorf("after Apply #%d %s locked = %v, want %v", i, p, !on, on)
			}
		}
	}
}

// What scripts name is resolved against sealed package files: a path
// under /proc, a locked file no package owns and an unowned path are never
// touched; a sealed file named under its merged-/usr alias is unlocked and
// its owner relocked afterwards; and a file that cannot be unlocked does
// not stop the run.
func TestBeginScriptPaths(t *testing.T) {
	postinst := "#!/bin/sh\nset -e\n" +
		"grep -qz '^container=' /proc/1/environ || true\n" +
		"rm -f /bin/other-tool\n" + // coreutils-style alias of /usr/bin/other-tool
		"echo x >> /usr/lib/handmade\n" + // locked by hand, no package owns it
		"rm -f /usr/lib/fails\n"
	pkgs := []fakePkg{
		{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/p"}},
		{name: "other", files: []string{"/usr", "/usr/bin", "/usr/bin/other-tool", "/usr/lib", "/usr/lib/fails"}},
	}
	w := newWorld(t, pkgs, "", func(f *fakeFS) {
		f.file("/usr/bin/p", "p").flags = 0x10
		f.file("/usr/bin/other-tool", "o").flags = 0x10
		f.file("/usr/lib/handmade", "h").flags = 0x10
		f.file("/usr/lib/fails", "f").flags = 0x10
		f.add("/proc/1/environ", 0o100444, 9, "container=x")
		f.dirLinks["/bin"] = "/usr/bin"
	}, nil)
	w.fs.fail["/usr/lib/fails"] = syscall.EIO
	s := w.sealedSystem(t)
	s.ReadDeb = func(p string) (*DebInfo, error) {
		return &DebInfo{Path: p, Package: "p", Version: "2", Arch: "all", Paths: []string{"/usr/bin/p"},
			Scripts: map[string][]byte{"postinst": []byte(postinst)}}, nil
	}
	ctx := context.Background()
	owner := Process{Pid: 7, StartTime: 7, Via: "wrapper"}
	rep, err := s.Begin(ctx, Request{Debs: []string{"/tmp/p_2_all.deb"}}, owner)
	if err != nil {
		t.Fatalf("Begin: %v (a file that cannot be unlocked must not stop dpkg)", err)
	}
	if len(rep.Errors) != 1 || !errors.Is(rep.Errors[0], syscall.EIO) {
		t.Errorf("Begin errors = %v, want the one EIO on /usr/lib/fails", rep.Errors)
	}
	if locked(w, "/usr/bin/p") || locked(w, "/usr/bin/other-tool") {
		t.Error("the package's file or the file its script names by alias is still locked")
	}
	if !locked(w, "/usr/lib/handmade") {
		t.Error("a locked file no sealed package owns was unlocked")
	}
	if rep.Ignored != 1 {
		t.Errorf("Ignored = %d, want 1 (/usr/lib/handmade)", rep.Ignored)
	}
	var owners []string
	for _, e := range rep.Journal.Unlocked {
		if e.Path == "/bin/other-tool" || e.Path == "/usr/bin/other-tool" {
			owners = e.Pkgs
		}
	}
	if !reflect.DeepEqual(owners, []string{"other"}) {
		t.Errorf("journal owners of the aliased file = %v, want [other]", owners)
	}
	end, err := s.End(ctx, rep.Journal)
	if err != nil {
		t.Fatal(err)
	}
	if !locked(w, "/usr/bin/other-tool") || !locked(w, "/usr/bin/p") {
		t.Errorf("End left a file unlocked; relocked packages %v", end.Packages)
	}
}

// Begin is all or nothing: a journal that cannot be written leaves
// everything locked, and a run cancelled half-way relocks what it had
// unlocked and leaves no journal.
func TestBeginAllOrNothing(t *testing.T) {
	pkgs := []fakePkg{{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b", "/usr/bin/c"}}}
	setup := func(f *fakeFS) {
		for _, n := range []string{"a", "b", "c"} {
			f.file("/usr/bin/"+n, n).flags = 0x10
		}
	}
	t.Run("journal unwritable", func(t *testing.T) {
		w := newWorld(t, pkgs, "", setup, nil)
		s := w.sealedSystem(t)
		jdir := filepath.Join(StateDir(s.Root), "journal")
		if err := os.WriteFile(jdir, nil, 0o600); err != nil { // a file where the directory goes
			t.Fatal(err)
		}
		if _, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 1, Via: "wrapper"}); err == nil {
			t.Fatal("Begin with an unwritable journal succeeded")
		}
		for _, n := range []string{"a", "b", "c"} {
			if !locked(w, "/usr/bin/"+n) {
				t.Errorf("/usr/bin/%s unlocked although no journal records it", n)
			}
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		w := newWorld(t, pkgs, "", setup, nil)
		s := w.sealedSystem(t)
		ctx, cancel := context.WithCancel(context.Background())
		w.fs.onSet = func(p string) {
			if p == "/usr/bin/b" {
				cancel()
			}
		}
		s.Workers = 1
		_, err := s.Begin(ctx, Request{Remove: []string{"p"}}, Process{Pid: 1, Via: "wrapper"})
		if err == nil || !strings.Contains(err.Error(), "locked again") {
			t.Fatalf("Begin cancelled half-way: err %v, want a rollback", err)
		}
		for _, n := range []string{"a", "b", "c"} {
			if !locked(w, "/usr/bin/"+n) {
				t.Errorf("/usr/bin/%s left unlocked by the rollback", n)
			}
		}
		if js, errs := Journals(s.Root); len(js) != 0 || len(errs) != 0 {
			t.Errorf("journals after a rollback: %v %v, want none", js, errs)
		}
	})
}

// A file dpkg moved from /bin to /usr/bin in the new version is still
// owned: no orphan warning for it. A file really left behind is one.
func TestOrphansAcrossMergedUsr(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "p", files: []string{"/bin", "/bin/moved", "/bin/dropped"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/moved", "m")
		f.file("/usr/bin/dropped", "d")
		f.dirLinks["/bin"] = "/usr/bin"
	}, nil)
	s := w.sealedSystem(t)
	ctx := context.Background()
	rep, err := s.Begin(ctx, Request{Configure: []string{"p"}, Remove: []string{"p"}}, Process{Pid: 3, Via: "wrapper"})
	if err != nil {
		t.Fatal(err)
	}
	if err := writeAdmindir(w.db.Admindir, []fakePkg{{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/moved"}}}, ""); err != nil {
		t.Fatal(err)
	}
	end, err := s.End(ctx, rep.Journal)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range end.Orphans {
		got = append(got, o.Path)
	}
	if !reflect.DeepEqual(got, []string{"/bin/dropped"}) {
		t.Errorf("orphans = %v, want [/bin/dropped] (/bin/moved is /usr/bin/moved)", got)
	}
}

// End never relocks what another live transaction unlocked, and nothing
// at all while a dpkg that is not the session's own holds its lock.
func TestEndLeavesOtherTransactionsAlone(t *testing.T) {
	pkgs := []fakePkg{
		{name: "mine", files: []string{"/usr", "/usr/bin", "/usr/bin/mine"}},
		{name: "theirs", files: []string{"/usr", "/usr/bin", "/usr/bin/theirs"}},
	}
	setup := func(f *fakeFS) {
		f.file("/usr/bin/mine", "m").flags = 0x10
		f.file("/usr/bin/theirs", "t").flags = 0x10
	}
	ctx := context.Background()
	me, them := Process{Pid: 100, StartTime: 1, Via: "wrapper"}, Process{Pid: 200, StartTime: 2, Via: "wrapper"}

	t.Run("live journal", func(t *testing.T) {
		w := newWorld(t, pkgs, "", setup, nil)
		s := w.sealedSystem(t)
		s.Alive = func(p Process) bool { return p == them || p == me }
		theirs, err := s.Begin(ctx, Request{Remove: []string{"theirs"}}, them)
		if err != nil {
			t.Fatal(err)
		}
		// Our run names both packages (the losing dpkg of a race).
		mine, err := s.Begin(ctx, Request{Remove: []string{"mine", "theirs"}}, me)
		if err != nil {
			t.Fatal(err)
		}
		end, err := s.End(ctx, mine.Journal)
		if err != nil {
			t.Fatal(err)
		}
		if !locked(w, "/usr/bin/mine") || locked(w, "/usr/bin/theirs") {
			t.Errorf("End: mine locked %v (want true), theirs locked %v (want false: its transaction runs)",
				locked(w, "/usr/bin/mine"), locked(w, "/usr/bin/theirs"))
		}
		if !reflect.DeepEqual(end.Held, []string{"theirs"}) {
			t.Errorf("Held = %v, want [theirs]", end.Held)
		}
		if _, err := s.End(ctx, theirs.Journal); err != nil {
			t.Fatal(err)
		}
		if !locked(w, "/usr/bin/theirs") {
			t.Error("their End did not relock their file")
		}
	})

	t.Run("dpkg lock held by another process", func(t *testing.T) {
		w := newWorld(t, pkgs, "", setup, nil)
		s := w.sealedSystem(t)
		rep, err := s.Begin(ctx, Request{Remove: []string{"mine"}}, me)
		if err != nil {
			t.Fatal(err)
		}
		pid := holdFcntlLock(t, filepath.Join(s.Admindir, "lock"))
		end, err := s.End(ctx, rep.Journal)
		if err != nil {
			t.Fatal(err)
		}
		if end.Deferred == "" || locked(w, "/usr/bin/mine") {
			t.Errorf("End while pid %d holds dpkg's lock: deferred %q, relocked %v; want deferred, nothing relocked", pid, end.Deferred, locked(w, "/usr/bin/mine"))
		}
		if js, _ := Journals(s.Root); len(js) != 1 {
			t.Errorf("the deferred journal is gone (%d journals), nothing would recover it", len(js))
		}
		s.Ours = func(p int) bool { return p == pid }
		if end, err := s.End(ctx, rep.Journal); err != nil || end.Deferred != "" || !locked(w, "/usr/bin/mine") {
			t.Errorf("End with the holder one of ours: deferred %q, err %v, locked %v; want relocked", end.Deferred, err, locked(w, "/usr/bin/mine"))
		}
	})
}

// holdFcntlLock makes a child process hold an fcntl write lock on p (as
// dpkg holds its database lock) until the test ends, and returns its pid.
func holdFcntlLock(t *testing.T, p string) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "SEAL_HOLD_LOCK="+p)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	buf := make([]byte, 6)
	if _, err := out.Read(buf); err != nil || string(buf[:5]) != "held\n"[:5] {
		t.Fatalf("lock holder: %q, %v", buf, err)
	}
	return cmd.Process.Pid
}

// TestHelperHoldLock is the child of holdFcntlLock, not a test.
func TestHelperHoldLock(t *testing.T) {
	p := os.Getenv("SEAL_HOLD_LOCK")
	if p == "" {
		return
	}
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	lk := syscall.Flock_t{Type: syscall.F_WRLCK}
	if err := syscall.FcntlFlock(f.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	fmt.Println("held")
	if os.Getenv("SEAL_HOLD_ONCE") == "" {
		time.Sleep(time.Minute)
	}
}

// A postrm's "dpkg-divert --remove --rename X" (no --divert: the common
// form) moves the locked divert-to file back to X: Begin must unlock the
// file the diversions database records, which the script never names.
func TestBeginUnlocksDivertTo(t *testing.T) {
	postrm := "#!/bin/sh\nset -e\nif [ \"$1\" = remove ]; then\n" +
		"  dpkg-divert --package diverter --remove --rename /usr/bin/tool\nfi\n"
	w := newWorld(t, []fakePkg{
		{name: "base", files: []string{"/usr", "/usr/bin", "/usr/bin/tool"}},
		{name: "diverter", files: []string{"/usr", "/usr/bin"}},
	}, "/usr/bin/tool\n/usr/bin/tool.distrib\ndiverter\n", func(f *fakeFS) {
		f.file("/usr/bin/tool.distrib", "base's tool").flags = 0x10
	}, nil)
	if err := os.WriteFile(filepath.Join(w.db.Admindir, "info", "diverter.postrm"), []byte(postrm), 0o755); err != nil {
		t.Fatal(err)
	}
	s := w.sealedSystem(t)
	rep, err := s.Begin(context.Background(), Request{Remove: []string{"diverter"}}, Process{Pid: 5, Via: "wrapper"})
	if err != nil {
		t.Fatal(err)
	}
	if locked(w, "/usr/bin/tool.distrib") {
		t.Errorf("the divert-to file stays locked; dpkg-divert --rename cannot move it back (unlocked %d)", rep.Unlocked)
	}
}

// A signal in the middle of End's relock must not lose the journal: the
// files it did not reach are still unlocked, and only the journal lets
// recovery find them.
func TestEndInterruptedKeepsJournal(t *testing.T) {
	w := newWorld(t, []fakePkg{{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/sbin", "/usr/sbin/b"}}}, "",
		func(f *fakeFS) {
			f.file("/usr/bin/a", "a").flags = 0x10
			f.file("/usr/sbin/b", "b").flags = 0x10
		}, nil)
	s := w.sealedSystem(t)
	s.Workers = 1
	rep, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 9, Via: "dpkg-hook"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.fs.onSet = func(string) { cancel() } // the first relock is the last
	if _, err := s.End(ctx, rep.Journal); err == nil {
		t.Error("End interrupted half-way reported success")
	}
	if locked(w, "/usr/bin/a") && locked(w, "/usr/sbin/b") {
		t.Fatal("both files relocked: the interruption did not happen")
	}
	js, _ := Journals(s.Root)
	if len(js) != 1 {
		t.Fatalf("journals after an interrupted End: %d, want the one that names what is still unlocked", len(js))
	}
	w.fs.onSet = nil
	reps, errs := s.Recover(context.Background(), false)
	if len(errs) != 0 || len(reps) != 1 || reps[0].End == nil {
		t.Fatalf("Recover = %+v, %v", reps, errs)
	}
	if !locked(w, "/usr/bin/a") || !locked(w, "/usr/sbin/b") {
		t.Error("recovery did not relock what the interrupted End left")
	}
}

// Recover holds dpkg's lock while it relocks; checking who holds the lock
// (which opens and closes the lock file) must not drop that hold.
func TestRecoverKeepsDpkgLockHeld(t *testing.T) {
	admindir := t.TempDir()
	release, err := holdDpkgLock(admindir)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	s := &System{Admindir: admindir, holdsDpkgLock: true}
	if why := s.Busy(); why != "" {
		t.Fatalf("Busy with our own hold: %q", why)
	}
	if _, err := DpkgLockHolder(admindir); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "SEAL_HOLD_LOCK="+filepath.Join(admindir, "lock"), "SEAL_HOLD_ONCE=1")
	out, _ := cmd.CombinedOutput()
	if strings.Contains(string(out), "held") {
		t.Errorf("another process took dpkg's lock while Recover held it:\n%s", out)
	}
}

// A file that another live run already unlocked, named by this run's
// script, goes on this run's record: the other run's End then leaves its
// package unlocked for this run instead of relocking it under this run's
// dpkg.
func TestBeginRecordsFilesOtherRunsUnlocked(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "coreutils", files: []string{"/usr", "/usr/bin", "/usr/bin/rm"}},
		{name: "b", files: []string{"/usr", "/usr/bin", "/usr/bin/b"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/rm", "rm").flags = 0x10
		f.file("/usr/bin/b", "b").flags = 0x10
	}, nil)
	s := w.sealedSystem(t)
	a, b := Process{Pid: 1, StartTime: 1, Via: "dpkg-hook"}, Process{Pid: 2, StartTime: 2, Via: "dpkg-hook"}
	s.Alive = func(p Process) bool { return p == a || p == b }
	s.ReadDeb = func(p string) (*DebInfo, error) {
		return &DebInfo{Path: p, Package: "b", Version: "2", Arch: "all",
			Scripts: map[string][]byte{"postinst": []byte("#!/bin/sh\nchmod 755 /usr/bin/rm\n")}}, nil
	}
	ctx := context.Background()
	ra, err := s.Begin(ctx, Request{Configure: []string{"coreutils"}}, a)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := s.Begin(ctx, Request{Debs: []string{"/d/b_2_all.deb"}}, b)
	if err != nil {
		t.Fatal(err)
	}
	if !slicesContains(rb.Journal.Packages, "coreutils") {
		t.Errorf("B's journal packages %v lack coreutils, whose file B's script names and A unlocked", rb.Journal.Packages)
	}
	end, err := s.End(ctx, ra.Journal)
	if err != nil {
		t.Fatal(err)
	}
	if locked(w, "/usr/bin/rm") {
		t.Errorf("A's End relocked /usr/bin/rm under B's run (held %v)", end.Held)
	}
}

func slicesContains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}

// Maintainer scripts that change another sealed package's files through
// variables, computed names under a directory, or that package's own
// file list: the files are unlocked for the run (issue 13, item 6).
func TestBeginScriptsThroughVariables(t *testing.T) {
	for _, tt := range []struct {
		name, script string
		unlocked     []string // of other's files; the rest stay locked
	}{
		{"DPKG_ROOT", "echo x > \"$DPKG_ROOT/usr/bin/x\"\n", []string{"/usr/bin/x"}},
		{"variable and append", "F=/usr/lib/other/x\necho >> \"$F\"\n", []string{"/usr/lib/other/x"}},
		{"variable directory", "D=/usr/lib/other\nrm $D/f\n", []string{"/usr/lib/other/f"}},
		{"for list", "for f in /usr/bin/x /usr/lib/other/f; do rm -f \"$f\"; done\n", []string{"/usr/bin/x", "/usr/lib/other/f"}},
		{"computed name under a directory", "rm -rf /usr/lib/other/$v\n", []string{"/usr/lib/other/f", "/usr/lib/other/x"}},
		{"computed name, merged-/usr alias", "rm -rf /lib/other/$v\n", []string{"/usr/lib/other/f", "/usr/lib/other/x"}},
		{"another package's list", "dpkg -L other | grep '\\.so$' | while read f; do rm -f \"$f\"; done\n", []string{"/usr/bin/x", "/usr/lib/other/f", "/usr/lib/other/x"}},
		{"reads only", "grep -q foo /usr/bin/x && echo found\n", []string{"/usr/bin/x"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			files := []string{"/usr/bin/x", "/usr/lib/other/f", "/usr/lib/other/x"}
			w := newWorld(t, []fakePkg{
				{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/p"}},
				{name: "other", files: append([]string{"/usr", "/usr/bin", "/usr/lib", "/usr/lib/other"}, files...)},
			}, "", func(f *fakeFS) {
				f.file("/usr/bin/p", "p").flags = 0x10
				for _, p := range files {
					f.file(p, p).flags = 0x10
				}
				f.dirLinks["/lib"] = "/usr/lib"
			}, nil)
			s := w.sealedSystem(t)
			s.ReadDeb = func(p string) (*DebInfo, error) {
				return &DebInfo{Path: p, Package: "p", Version: "2", Arch: "all",
					Scripts: map[string][]byte{"postinst": []byte("#!/bin/sh\nset -e\n" + tt.script)}}, nil
			}
			rep, err := s.Begin(context.Background(), Request{Debs: []string{"/d/p_2_all.deb"}}, Process{Pid: 4, Via: "wrapper"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.All {
				t.Fatalf("escalated to everything: %s", rep.Reason)
			}
			want := map[string]bool{}
			for _, p := range tt.unlocked {
				want[p] = true
			}
			for _, p := range files {
				if locked(w, p) == want[p] {
					t.Errorf("%s: locked = %v, want %v", p, locked(w, p), !want[p])
				}
			}
		})
	}
}

// TestOwnerFromName: a journal's file name gives back the owner whose key
// named it, and anything else gives none (so the journal is read).
func TestOwnerFromName(t *testing.T) {
	for _, o := range []Process{
		{Via: "dpkg-hook", Pid: 123, StartTime: 456},
		{Via: "wrapper", Pid: 1, StartTime: 0},
		{Via: "apt-hook", Pid: 4194304, StartTime: 18446744073709551615},
	} {
		got, ok := ownerFromName(o.key() + ".json")
		if !ok || got != o {
			t.Errorf("ownerFromName(%q) = %+v, %v; want %+v", o.key()+".json", got, ok, o)
		}
	}
	for _, name := range []string{"x.json", "dpkg-hook-12.json", "-12-34.json", "a-0-1.json",
		"a-1-x.json", "a-x-1.json", "a-1-2.json.tmp", "a-1-2", ".json"} {
		if o, ok := ownerFromName(name); ok {
			t.Errorf("ownerFromName(%q) = %+v, want none", name, o)
		}
	}
}
