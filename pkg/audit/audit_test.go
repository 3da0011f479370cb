package audit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/evidence"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/policy"
)

func TestCacheRoundTrip(t *testing.T) {
	root := t.TempDir()
	path := filepath.Join(root, CacheFile)
	c, err := LoadCache(root)
	if err != nil || c.Len() != 0 {
		t.Fatalf("LoadCache(missing) = %d entries, %v", c.Len(), err)
	}
	entries := []CacheEntry{
		{Dev: 2, Ino: 9, Size: 3, Mtime: 4, Ctime: 5, HasMD5: true, MD5: [16]byte{1}},
		{Dev: 1, Ino: 7, Size: 1, Ctime: -1, HasSHA256: true, SHA256: [32]byte{2}},
		{Dev: 2, Ino: 9, Size: 3, Mtime: 4, Ctime: 5, HasMD5: true, MD5: [16]byte{1}}, // a hard link: one record
	}
	for _, e := range entries {
		c.Put(e)
	}
	if err := c.Save(root, false); err != nil {
		t.Fatal(err)
	}
	c2, err := LoadCache(root)
	if err != nil || c2.Len() != 2 {
		t.Fatalf("LoadCache() = %d entries, %v; want 2", c2.Len(), err)
	}
	for _, e := range entries[:2] {
		if got, ok := c2.Lookup(e.Dev, e.Ino); !ok || got != e {
			t.Errorf("Lookup(%d, %d) = %+v, %v; want %+v", e.Dev, e.Ino, got, ok, e)
		}
	}
	if _, ok := c2.Lookup(1, 8); ok {
		t.Error("Lookup(1, 8) found an entry that was never put")
	}
	// Any flipped byte is caught by the checksum.
	b, _ := os.ReadFile(path)
	b[len(cacheMagic)+3] ^= 1
	os.WriteFile(path, b, 0o600)
	if c3, err := LoadCache(root); !errors.Is(err, ErrCacheCorrupt) || c3.Len() != 0 {
		t.Errorf("LoadCache(corrupt) = %d entries, %v; want empty and ErrCacheCorrupt", c3.Len(), err)
	}
}

// A partial audit (some packages) keeps the records of every other file;
// a full one keeps only what it saw.
func TestCacheSaveKeepsOthersAfterPartialAudit(t *testing.T) {
	root := t.TempDir()
	c, _ := LoadCache(root)
	c.Put(CacheEntry{Dev: 1, Ino: 1, Ctime: 1})
	c.Put(CacheEntry{Dev: 1, Ino: 2, Ctime: 1})
	if err := c.Save(root, false); err != nil {
		t.Fatal(err)
	}
	c, _ = LoadCache(root)
	c.Put(CacheEntry{Dev: 1, Ino: 2, Ctime: 9}) // refreshed by a partial audit
	if err := c.Save(root, true); err != nil {
		t.Fatal(err)
	}
	c, _ = LoadCache(root)
	if e, ok := c.Lookup(1, 1); !ok || e.Ctime != 1 {
		t.Errorf("after a partial audit the other file's record = %+v, %v; want it kept", e, ok)
	}
	if e, ok := c.Lookup(1, 2); !ok || e.Ctime != 9 {
		t.Errorf("the refreshed record = %+v, %v; want ctime 9", e, ok)
	}
	c.Put(CacheEntry{Dev: 1, Ino: 2, Ctime: 9})
	if err := c.Save(root, false); err != nil {
		t.Fatal(err)
	}
	if c, _ = LoadCache(root); c.Len() != 1 {
		t.Errorf("after a full audit the cache holds %d records, want only the one it saw", c.Len())
	}
}

func TestPathExcluded(t *testing.T) {
	filters := []string{"-/usr/share/doc/*", "+/usr/share/doc/*/copyright", "-/usr/share/man/*"}
	tests := []struct {
		path string
		want bool
	}{
		{"/usr/share/doc/bash/README", true},
		{"/usr/share/doc/bash/copyright", false},
		{"/usr/share/doc/bash", true}, // '*' matches '/': the directory itself too
		{"/usr/share/man/man1/ls.1.gz", true},
		{"/usr/bin/ls", false},
	}
	for _, tt := range tests {
		if got := pathExcluded(filters, tt.path); got != tt.want {
			t.Errorf("pathExcluded(%s) = %v, want %v", tt.path, got, tt.want)
		}
	}
}

func TestKinds(t *testing.T) {
	seen := map[string]bool{}
	for _, k := range Kinds() {
		n := k.String()
		if n == "" || strings.HasPrefix(n, "Kind(") || seen[n] {
			t.Errorf("kind %d has name %q", k, n)
		}
		seen[n] = true
	}
	if !Excluded.Info() || Missing.Info() {
		t.Error("only excluded is informational")
	}
}

// TestRunUnprivileged audits a hand-made root without root privileges:
// missing, changed, type and path-excluded files, and a bad md5sums line.
func TestRunUnprivileged(t *testing.T) {
	root := t.TempDir()
	admin := filepath.Join(root, "var/lib/dpkg")
	os.MkdirAll(filepath.Join(admin, "info"), 0o755)
	os.WriteFile(filepath.Join(admin, "status"), []byte("Package: p\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/p.list"), []byte("/.\n/usr\n/usr/bin\n/usr/bin/ok\n/usr/bin/changed\n/usr/bin/gone\n/usr/bin/link\n/usr/share\n/usr/share/doc\n/usr/share/doc/p\n/usr/share/doc/p/README\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/p.md5sums"), []byte(
		"d41d8cd98f00b204e9800998ecf8427e  usr/bin/ok\n"+
			"d41d8cd98f00b204e9800998ecf8427e  usr/bin/changed\n"+
			"d41d8cd98f00b204e9800998ecf8427e  usr/bin/gone\n"+
			"d41d8cd98f00b204e9800998ecf8427e  usr/bin/link\n"+
			"garbage\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.MkdirAll(filepath.Join(root, "usr/share/doc"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/ok"), nil, 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/changed"), []byte("x"), 0o755)
	os.Symlink("ok", filepath.Join(root, "usr/bin/link"))

	db, err := dpkgdb.Open(admin)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	a := &Auditor{DB: db, Policy: policy.Default(), FS: fsys,
		Opts: Options{PathFilters: []string{"-/usr/share/doc/*"}}}
	var got []string
	sum, err := a.Run(context.Background(), nil, func(f Finding) {
		got = append(got, f.Kind.String()+" "+f.Real+" "+strings.TrimSpace(f.Dpkg))
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"md5sums-corrupt " + filepath.Join(admin, "info/p.md5sums") + " ",
		"md5 /usr/bin/changed ??5??????",
		"missing /usr/bin/gone missing",
		"type /usr/bin/link ?M???????",
		"excluded /usr/share/doc/p missing",
		"excluded /usr/share/doc/p/README missing",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("Run() findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if sum.Findings() != 4 || sum.ByKind[Excluded] != 2 {
		t.Errorf("Findings() = %d, excluded %d; want 4 and 2", sum.Findings(), sum.ByKind[Excluded])
	}
}

// TestLockTableVerdicts: the verdict on an inode depends on every owner
// that lists it, in any order: one that expects it locked and one that
// forbids it (a conffile) leave it alone; it is reported under the owner
// that expects it; a link count above the package dentries is foreign.
func TestLockTableVerdicts(t *testing.T) {
	a, b := &dpkgdb.Package{Name: "a"}, &dpkgdb.Package{Name: "b"}
	id := fsattr.Ident{Dev: 1, Ino: 2}
	ent := func(p *dpkgdb.Package, path string, fl lockFlags, nlink uint32) lockEnt {
		return lockEnt{flags: fl, nlink: nlink, pkg: p, listed: path, real: path}
	}
	d1 := dentry{dir: fsattr.Ident{Dev: 1, Ino: 10}, name: "x"}
	d2 := dentry{dir: fsattr.Ident{Dev: 1, Ino: 11}, name: "y"}
	tests := []struct {
		name string
		adds []lockEnt
		ds   []dentry
		want []string // kind package path
	}{
		{"expected and locked", []lockEnt{ent(a, "/x", lockExpect|lockImm, 1)}, nil, nil},
		{"expected, not locked", []lockEnt{ent(a, "/x", lockExpect, 1)}, nil, []string{"not-locked a /x"}},
		{"reported under the owner that expects it",
			[]lockEnt{ent(b, "/y", lockApp, 1), ent(a, "/x", lockExpect, 1)}, nil, []string{"not-locked a /x", "append-only a /x"}},
		{"not expected, immutable",
			[]lockEnt{ent(b, "/y", lockImm, 1)}, nil, []string{"unexpected-immutable b /y"}},
		{"a conffile owner forbids it, whatever the order",
			[]lockEnt{ent(a, "/x", lockExpect|lockImm, 1), ent(b, "/etc/x", lockProtect|lockConffile|lockImm, 1)}, nil,
			[]string{"unexpected-immutable a /x"}},
		{"forbidden first, then expected",
			[]lockEnt{ent(b, "/etc/x", lockProtect|lockConffile, 1), ent(a, "/x", lockExpect, 1)}, nil, nil},
		{"append-only", []lockEnt{ent(a, "/x", lockExpect|lockImm|lockApp, 1)}, nil, []string{"append-only a /x"}},
		{"unsupported: no verdict", []lockEnt{ent(a, "/x", lockExpect|lockUnsupported, 1)}, nil, nil},
		{"locked, without fs-verity where locks give it", []lockEnt{ent(a, "/x", lockExpect|lockImm|lockNoVerity, 1)}, nil,
			[]string{"verity-lost a /x"}},
		{"replaced: mutable and without fs-verity", []lockEnt{ent(a, "/x", lockExpect|lockNoVerity, 1)}, nil,
			[]string{"not-locked a /x", "verity-lost a /x"}},
		{"not sealed: no fs-verity verdict", []lockEnt{ent(a, "/x", lockNoVerity, 1)}, nil, nil},
		{"a conffile owner forbids it: no fs-verity verdict",
			[]lockEnt{ent(a, "/x", lockExpect|lockNoVerity, 1), ent(b, "/etc/x", lockProtect|lockConffile, 1)}, nil, nil},
		{"a link no package path reaches", []lockEnt{ent(a, "/x", lockExpect, 2)}, []dentry{d1}, []string{"foreign-link a /x"}},
		{"two package dentries, two links", []lockEnt{ent(a, "/x", lockExpect|lockImm, 2), ent(b, "/y", lockExpect|lockImm, 2)},
			[]dentry{d1, d2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lt := newLockTable()
			for i, e := range tt.adds {
				var d dentry
				if i < len(tt.ds) {
					d = tt.ds[i]
				}
				lt.add(id, e, d)
			}
			var got []string
			for _, f := range lt.findings(&lockVerdict{}) {
				got = append(got, f.Kind.String()+" "+f.Package+" "+f.Path)
			}
			if strings.Join(got, "; ") != strings.Join(tt.want, "; ") {
				t.Errorf("findings = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRunShadowed: a mount that hides sealed files is a finding, emitted
// first, with the files it hides counted; a mount list that cannot be read
// is an unreadable finding; with nothing sealed the list is not read.
func TestRunShadowed(t *testing.T) {
	root := t.TempDir()
	admin := filepath.Join(root, "var/lib/dpkg")
	os.MkdirAll(filepath.Join(admin, "info"), 0o755)
	os.WriteFile(filepath.Join(admin, "status"), []byte("Package: p\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/p.list"), []byte("/usr\n/usr/bin\n/usr/bin/a\n/usr/bin/b\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/p.md5sums"), []byte(
		"d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\nd41d8cd98f00b204e9800998ecf8427e  usr/bin/b\n"), 0o644)
	os.MkdirAll(filepath.Join(root, "usr/bin"), 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/a"), nil, 0o755)
	os.WriteFile(filepath.Join(root, "usr/bin/b"), nil, 0o755)
	db, err := dpkgdb.Open(admin)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	lines := "1 0 8:1 / / rw - ext4 /dev/sda1 rw\n" +
		"2 1 0:40 / " + mountinfo.Escape(fsys.Real()) + "/usr/bin rw - tmpfs tmpfs rw\n"
	read := 0
	mounts := func() ([]mountinfo.Mount, error) {
		read++
		return mountinfo.Parse(strings.NewReader(lines), "test")
	}
	run := func(sealed bool, mounts func() ([]mountinfo.Mount, error)) ([]string, *Summary) {
		t.Helper()
		a := &Auditor{DB: db, Policy: policy.Default(), FS: fsys, Sealed: func(string) bool { return sealed }, Mounts: mounts}
		var got []string
		sum, err := a.Run(context.Background(), nil, func(f Finding) { got = append(got, f.String()) })
		if err != nil {
			t.Fatal(err)
		}
		return got, sum
	}
	got, sum := run(true, mounts)
	want := "shadowed /usr/bin [p]: expected no mount, found tmpfs tmpfs (mount 2) hiding 2 sealed files (mountinfo)"
	if len(got) == 0 || got[0] != want {
		t.Errorf("first finding = %q, want %q", got, want)
	}
	if sum.ByKind[Shadowed] != 1 || sum.ShadowedFiles != 2 {
		t.Errorf("summary: %d shadowed, %d files hidden; want 1 and 2", sum.ByKind[Shadowed], sum.ShadowedFiles)
	}
	got, _ = run(true, func() ([]mountinfo.Mount, error) {
		return nil, errors.New("mountinfo: open /proc/self/mountinfo: no such file")
	})
	if len(got) == 0 || got[0] != "unreadable /proc/self/mountinfo (mountinfo): mountinfo: open /proc/self/mountinfo: no such file" {
		t.Errorf("without a mount list, findings = %q", got)
	}
	read = 0
	got, sum = run(false, mounts)
	if read != 0 || sum.ByKind[Shadowed] != 0 || len(got) != 0 {
		t.Errorf("nothing sealed: mount list read %d times, findings %q", read, got)
	}
}

// Recorded evidence is reported whatever the file is now: every event
// when auditing everything, the audited packages' when some are named,
// and a record that cannot be read always (it may hide an event).
func TestEvidenceFindings(t *testing.T) {
	root := t.TempDir()
	admin := filepath.Join(root, "var/lib/dpkg")
	os.MkdirAll(filepath.Join(admin, "info"), 0o755)
	os.WriteFile(filepath.Join(admin, "status"), []byte("Package: p\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n\n"+
		"Package: q\nStatus: install ok installed\nArchitecture: all\nVersion: 1\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/p.list"), []byte("/.\n"), 0o644)
	os.WriteFile(filepath.Join(admin, "info/q.list"), []byte("/.\n"), 0o644)
	db, err := dpkgdb.Open(admin)
	if err != nil {
		t.Fatal(err)
	}
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	evs := []evidence.Event{
		{ID: "1", Package: "p", Path: "/usr/bin/p", Type: "file", ExpectedMD5: "aa", ActualMD5: "bb", Copy: "1.copy", Run: "dpkg -i p.deb"},
		{ID: "2", Package: "q", Path: "/usr/bin/q", Type: "symlink", Link: "/etc/shadow", ExpectedSHA256: "cc", NoCopy: "not a regular file"},
	}
	bad := errors.New("evidence: x.json is corrupt")
	tests := []struct {
		name string
		only []string
		want []string
	}{
		{"everything", nil, []string{
			"tampered-before-upgrade p /usr/bin/p: expected md5 aa, found md5 bb (md5sums); found 0001-01-01T00:00:00Z before dpkg -i p.deb; evidence /var/lib/debseal/evidence/1.json, copy /var/lib/debseal/evidence/1.copy",
			"tampered-before-upgrade q /usr/bin/q: expected a regular file, found a symlink to /etc/shadow (manifest); found 0001-01-01T00:00:00Z; evidence /var/lib/debseal/evidence/2.json, no copy: not a regular file",
			"tampered-before-upgrade  /var/lib/debseal/evidence: evidence: x.json is corrupt",
		}},
		{"one package", []string{"q"}, []string{
			"tampered-before-upgrade q /usr/bin/q: expected a regular file, found a symlink to /etc/shadow (manifest); found 0001-01-01T00:00:00Z; evidence /var/lib/debseal/evidence/2.json, no copy: not a regular file",
			"tampered-before-upgrade  /var/lib/debseal/evidence: evidence: x.json is corrupt",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := &Auditor{DB: db, Policy: policy.Default(), FS: fsys, Opts: Options{Evidence: evs, EvidenceErrors: []error{bad}}}
			var pkgs []*dpkgdb.Package
			for _, n := range tt.only {
				pkgs = append(pkgs, db.Lookup(n)...)
			}
			var got []string
			sum, err := a.Run(context.Background(), pkgs, func(f Finding) {
				s := f.String()
				s = strings.Replace(s, " ["+f.Package+"]", "", 1)
				got = append(got, f.Kind.String()+" "+f.Package+" "+strings.TrimPrefix(s, f.Kind.String()+" "))
			})
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
			if sum.ByKind[TamperedBeforeUpgrade] != len(tt.want) || sum.Findings() != len(tt.want) {
				t.Errorf("summary counts %d tampered-before-upgrade, %d findings; want %d", sum.ByKind[TamperedBeforeUpgrade], sum.Findings(), len(tt.want))
			}
		})
	}
}
