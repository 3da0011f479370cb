package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// "debseal --root R dpkg …" (and DEBSEAL_ROOT=R) must run dpkg on R,
// never on the machine's own root. The fake dpkg refuses any run whose
// arguments do not name the sandbox, so a wrapper that drops the root
// fails here instead of touching the host.
func TestWrapperHonoursOuterRoot(t *testing.T) {
	s := sealedSandbox(t)
	fake := filepath.Join(t.TempDir(), "dpkg")
	script := "#!/bin/sh\necho \"args: $*\"\ncase \" $* \" in *\" --root=" + s.Root + " \"*) exit 0 ;; esac\necho refusing: no sandbox root; exit 99\n"
	if err := os.WriteFile(fake, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	deb := testutil.Deb(t, "dstest-base_1.0_all")
	other := t.TempDir()
	for _, tt := range []struct {
		name string
		env  []string
		args []string
		code int
		want string
	}{
		{"--root, a file action", nil, []string{"--root", s.Root, "dpkg", "-i", deb}, 0, "--root=" + s.Root},
		{"--root, a query", nil, []string{"--root", s.Root, "dpkg", "-l"}, 0, "--root=" + s.Root},
		{"DEBSEAL_ROOT", []string{"DEBSEAL_ROOT=" + s.Root}, []string{"dpkg", "--configure", "-a"}, 0, "--root=" + s.Root},
		{"--admindir too", nil, []string{"--root", s.Root, "--admindir", s.Admindir, "dpkg", "-i", deb}, 0, "--root=" + s.Root},
		{"the same root twice", nil, []string{"--root", s.Root, "dpkg", "--root=" + s.Root, "-i", deb}, 0, "--root=" + s.Root},
		{"two roots", nil, []string{"--root", s.Root, "dpkg", "--root=" + other, "-i", deb}, 64, "give one of them"},
		{"--root and --instdir", nil, []string{"--root", s.Root, "dpkg", "--instdir=" + other, "-i", deb}, 64, "--instdir"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(testutil.Binary(t), tt.args...)
			cmd.Env = append(append(os.Environ(), "DEBSEAL_REAL_DPKG="+fake), tt.env...)
			out, code := testutil.Output(t, cmd)
			if code != tt.code || !strings.Contains(out, tt.want) {
				t.Errorf("debseal %v: exit %d (want %d), output lacks %q:\n%s", tt.args, code, tt.code, tt.want, out)
			}
			if tt.code == 64 && strings.Contains(out, "args:") {
				t.Errorf("dpkg ran although the roots disagree:\n%s", out)
			}
		})
	}
}

// Two dpkg runs at once on one root (unattended-upgrades racing an
// admin's dpkg -i): the one that loses dpkg's lock must not relock what
// the other is unpacking. Every run ends as it would without debseal:
// success, or dpkg's own "locked by another process"; never a failure
// on a locked file; afterwards everything is locked and no journal is
// left.
func TestConcurrentRuns(t *testing.T) {
	testutil.RequireRoot(t)
	bin := testutil.Binary(t)
	debs := []string{testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-base_2.0_all")}
	for _, mode := range []string{"wrapper", "dpkg-hooks"} {
		t.Run(mode, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", debs[0])
			if out, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
				t.Fatalf("lock --all: exit %d\n%s", code, out)
			}
			run := hookedDpkg(s, bin)
			if mode == "wrapper" {
				run = wrappedDpkg(s, bin)
			}
			const rounds, parallel = 6, 3
			for r := 0; r < rounds; r++ {
				var wg sync.WaitGroup
				outs := make([]string, parallel)
				codes := make([]int, parallel)
				for i := 0; i < parallel; i++ {
					wg.Add(1)
					go func(i int) {
						defer wg.Done()
						outs[i], codes[i] = run(t, nil, "-i", debs[(r+i)%2])
					}(i)
				}
				wg.Wait()
				won := 0
				for i := range codes {
					switch {
					case codes[i] == 0:
						won++
					case codes[i] == 2 && strings.Contains(outs[i], "lock"):
						// lost the race for dpkg's lock, as without debseal
					default:
						t.Errorf("round %d run %d: exit %d\n%s", r, i, codes[i], outs[i])
					}
					if strings.Contains(outs[i], "Operation not permitted") {
						t.Errorf("round %d run %d met a locked file:\n%s", r, i, outs[i])
					}
				}
				if won == 0 {
					t.Errorf("round %d: no run succeeded", r)
				}
				// What the losers unlocked is relocked by the winner's
				// end, which recovers the journals of runs that died:
				// no debseal recover is needed.
				want, _ := testutil.ExpectedLocked(t, s.Root, testutil.SandboxTool(s.Admindir))
				if missing, _ := diffLists(want, immutableFiles(t, s.Root)); len(missing) > 0 {
					t.Errorf("round %d: not locked after the race: %v", r, missing)
				}
				if js, _ := filepath.Glob(s.Path("/var/lib/debseal/journal/*.json")); len(js) > 0 {
					t.Errorf("round %d: journals left: %v", r, js)
				}
			}
		})
	}
}
