package main

import (
	"crypto/sha256"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/testutil"
)

// The manifests lock records carry each regular file's fs-verity digest,
// equal to what fsverity-utils computes from the installed file (the
// kernel's FS_IOC_MEASURE_VERITY returns the same once fs-verity is on:
// the VM suite checks that on a kernel that has it).
func TestManifestsRecordFsverityDigests(t *testing.T) {
	testutil.RequireCommand(t, "fsverity")
	s := testutil.NewSandbox(t)
	installAll(t, s)
	if out, errs, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errs)
	}
	dir := filepath.Join(s.Root, "var/lib/debseal/manifests")
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, ent := range ents {
		f, err := os.Open(filepath.Join(dir, ent.Name()))
		if err != nil {
			t.Fatal(err)
		}
		m, err := manifest.Read(f, ent.Name())
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		pkg := m.Package
		if m.Format != 2 {
			t.Errorf("%s: manifest format %d, want 2", pkg, m.Format)
		}
		for _, e := range m.Entries {
			if e.Type != manifest.TypeFile || !e.HasSHA256 {
				continue
			}
			if !e.HasVerity {
				t.Errorf("%s %s: no fs-verity digest", pkg, e.Path)
				continue
			}
			if b, err := os.ReadFile(s.Path(e.Path)); err != nil || sha256.Sum256(b) != e.SHA256 {
				continue // diverted: another package's file is at the listed path
			}
			out, err := exec.Command("fsverity", "digest", "--compact", "--hash-alg=sha256", "--block-size=4096", s.Path(e.Path)).Output()
			if err != nil {
				t.Fatalf("fsverity digest %s: %v", e.Path, err)
			}
			if got, want := strings.TrimSpace(string(out)), hexString(e.Verity[:]); got != want {
				t.Errorf("%s %s: manifest fs-verity digest %s, fsverity digest says %s", pkg, e.Path, want, got)
			}
			checked++
		}
	}
	if checked < 3 {
		t.Errorf("checked %d files, want the sandbox packages' regular files", checked)
	}
}

func hexString(b []byte) string {
	const hx = "0123456789abcdef"
	out := make([]byte, 2*len(b))
	for i, c := range b {
		out[2*i], out[2*i+1] = hx[c>>4], hx[c&15]
	}
	return string(out)
}
