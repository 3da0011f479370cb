package main

import (
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/seal"
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

// After an unlock, the files that keep fs-verity are counted and the
// admin told how to change them: only the regular files the unlock let go
// of, with fs-verity as statx saw it. (This machine's kernel has no
// fs-verity: the VM suite's verity scenario checks the line on a real
// unlock.)
func TestVerityKeptLine(t *testing.T) {
	file := func(verity bool) *seal.Target {
		info := fsattr.Info{Mode: 0o100644}
		if verity {
			info.SetVerity()
		}
		return &seal.Target{Dir: "/usr/bin", Name: "x", Info: info}
	}
	dir := &seal.Target{Dir: "/usr", Name: "bin", Info: fsattr.Info{Mode: 0o040755}}
	dir.Info.SetVerity() // never on a directory; counted only on files all the same
	failed := seal.Outcome{Target: file(true), Err: errors.New("EPERM")}
	cases := []struct {
		name     string
		outcomes []seal.Outcome
		want     string // a substring; "" for no line
	}{
		{"nothing unlocked", nil, ""},
		{"no file with fs-verity", []seal.Outcome{{Target: file(false)}, {Target: file(false)}}, ""},
		{"two of three", []seal.Outcome{{Target: file(true)}, {Target: file(false)}, {Target: file(true)}}, "fs-verity: 2 of these files keep it"},
		{"a failed unlock is not counted", []seal.Outcome{failed, {Target: file(true)}}, "fs-verity: 1 of these files"},
		{"only regular files", []seal.Outcome{{Target: dir}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := verityKeptLine(&seal.Summary{Outcomes: c.outcomes})
			switch {
			case c.want == "" && got != "":
				t.Errorf("line %q, want none", got)
			case c.want != "" && (!strings.Contains(got, c.want) || !strings.Contains(got, "mv it over")):
				t.Errorf("line %q, want it to contain %q and how to replace the file", got, c.want)
			}
		})
	}
}
