package seal

import (
	"context"
	"testing"

	"github.com/debseal/debseal/pkg/fsattr"
)

// A lock with fs-verity enables it before the flag (the kernel refuses it
// on an immutable file), on regular files only, once per file; a device
// without it costs one probe and locks anyway; a file locked before
// fs-verity was wanted gets it and ends locked.
func TestApplyVerity(t *testing.T) {
	setup := func(f *fakeFS) {
		f.file("/usr/bin/a", "a")
		f.file("/usr/bin/b", "b")
		f.add("/usr/share/d", 0o040755, 1, "")
		f.add("/boot/x", 0o100644, 7, "x")
		f.add("/boot/y", 0o100644, 7, "y")
		f.noVerity[7] = true
	}
	pkgs := []fakePkg{{name: "p", files: []string{"/usr/bin/a", "/usr/bin/b", "/usr/share/d", "/boot/x", "/boot/y"}}}
	cases := []struct {
		name         string
		verity       bool
		prelock      bool // the files are immutable already
		wantEnabled  int
		wantUnsupDev int
		wantVerity   []string // files with fs-verity afterwards
	}{
		{name: "off", verity: false, wantVerity: nil},
		{name: "on", verity: true, wantEnabled: 2, wantUnsupDev: 2, wantVerity: []string{"/usr/bin/a", "/usr/bin/b"}},
		{name: "on, locked before", verity: true, prelock: true, wantEnabled: 2, wantUnsupDev: 2, wantVerity: []string{"/usr/bin/a", "/usr/bin/b"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			w := newWorld(t, pkgs, "", setup, nil)
			ctx := context.Background()
			if c.prelock {
				if s := Apply(ctx, w.fs, w.plan(t).Targets, true, 1, nil); len(s.Errors) != 0 {
					t.Fatal(s.Errors)
				}
			}
			s := ApplyWith(ctx, w.fs, w.plan(t).Targets, true, Options{Workers: 1, Verity: c.verity})
			if len(s.Errors) != 0 || len(s.Verity.Warnings) != 0 {
				t.Fatalf("errors %v, warnings %v", s.Errors, s.Verity.Warnings)
			}
			if s.Verity.Enabled != c.wantEnabled || w.fs.verityOn != c.wantEnabled {
				t.Errorf("enabled %d (fake counted %d), want %d", s.Verity.Enabled, w.fs.verityOn, c.wantEnabled)
			}
			if u := s.Verity.Unsupported[7]; u.Files != c.wantUnsupDev || (c.wantUnsupDev > 0 && u.Err == nil) {
				t.Errorf("device without fs-verity: %d files, err %v; want %d", u.Files, u.Err, c.wantUnsupDev)
			}
			if c.verity && (s.Verity.Devices[1] != true || s.Verity.Devices[7] != false) {
				t.Errorf("devices = %v, want 1: true, 7: false", s.Verity.Devices)
			}
			for p, n := range w.fs.nodes {
				if !n.info.IsRegular() {
					continue // the policy locks files, not directories
				}
				if n.flags&fsattr.Immutable == 0 {
					t.Errorf("%s not locked", p)
				}
				if want := contains(c.wantVerity, p); n.verity != want {
					t.Errorf("%s: fs-verity %v, want %v", p, n.verity, want)
				}
			}
			// A second lock finds everything as wanted and opens nothing
			// but the one probe of the device without fs-verity.
			w.fs.gets, w.fs.sets = 0, 0
			s = ApplyWith(ctx, w.fs, w.plan(t).Targets, true, Options{Workers: 1, Verity: c.verity})
			if w.fs.sets != 0 || s.Verity.Enabled != 0 || len(s.Errors) != 0 {
				t.Errorf("second lock: %d flag changes, %d enabled, errors %v", w.fs.sets, s.Verity.Enabled, s.Errors)
			}
			// Without fs-verity wanted nothing is opened; with it, one
			// probe of the device that lacks it. Every file on it stays
			// as cheap as in a lock without fs-verity.
			if want := map[bool]int{false: 0, true: 1}[c.verity]; w.fs.gets != want {
				t.Errorf("second lock opened %d files, want %d", w.fs.gets, want)
			}
			if s.Already != 4 {
				t.Errorf("second lock: %d already locked, want 4", s.Already)
			}
		})
	}
}

// A file that cannot take fs-verity for a reason of its own (open for
// writing elsewhere) is locked all the same and named in a warning.
func TestApplyVerityFailureStillLocks(t *testing.T) {
	w := newWorld(t, []fakePkg{{name: "p", files: []string{"/usr/bin/a", "/usr/bin/b"}}}, "", func(f *fakeFS) {
		f.file("/usr/bin/a", "a")
		n := f.file("/usr/bin/b", "b")
		n.flags |= 0x20 // append-only: the kernel says EPERM
	}, nil)
	s := ApplyWith(context.Background(), w.fs, w.plan(t).Targets, true, Options{Workers: 1, Verity: true})
	if len(s.Errors) != 0 || s.Changed != 2 {
		t.Fatalf("changed %d, errors %v; want both locked", s.Changed, s.Errors)
	}
	if len(s.Verity.Warnings) != 1 || s.Verity.Enabled != 1 {
		t.Errorf("warnings %v, enabled %d; want one warning (b) and a enabled", s.Verity.Warnings, s.Verity.Enabled)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
