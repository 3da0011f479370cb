package seal

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
)

// world is a fake system: a database and a filesystem that agree.
type world struct {
	fs *fakeFS
	db *dpkgdb.DB
	pl *Planner
}

func newWorld(t *testing.T, pkgs []fakePkg, diversions string, setup func(*fakeFS), pol *policy.Config) *world {
	t.Helper()
	dir := t.TempDir()
	if err := writeAdmindir(dir, pkgs, diversions); err != nil {
		t.Fatal(err)
	}
	db, err := dpkgdb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeFS()
	setup(f)
	if pol == nil {
		pol = policy.Default()
	}
	return &world{fs: f, db: db, pl: &Planner{DB: db, Policy: pol, FS: f, Workers: 3}}
}

func (w *world) plan(t *testing.T, names ...string) *Plan {
	t.Helper()
	var pkgs []*dpkgdb.Package
	if len(names) == 0 {
		pkgs = w.db.Packages
	} else {
		var unknown []string
		pkgs, unknown = Lookup(w.db, names)
		if len(unknown) > 0 {
			t.Fatalf("unknown packages %v", unknown)
		}
	}
	p, err := w.pl.Plan(context.Background(), pkgs)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func targetPaths(p *Plan) []string {
	var out []string
	for _, t := range p.Targets {
		var owners []string
		for _, o := range t.Owners {
			owners = append(owners, o.Pkg+":"+o.Path)
		}
		sort.Strings(owners)
		out = append(out, t.Path()+" <- "+strings.Join(owners, ","))
	}
	return out
}

func skipsOf(p *Plan) map[string]string {
	out := map[string]string{}
	for _, s := range p.Skips {
		out[s.Path] = s.Reason.String()
	}
	return out
}

func TestPlanDedupAndResolve(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/a-hardlink", "/lib/x86_64-linux-gnu/liba.so", "/usr/bin/diverted"}},
		{name: "b", files: []string{"/usr/lib/x86_64-linux-gnu/liba.so", "/usr/bin/shared"}},
		{name: "c", files: []string{"/usr/bin/shared"}},
		{name: "d", files: []string{"/usr/bin/diverted"}}, // d diverts a's file
	}, "/usr/bin/diverted\n/usr/bin/diverted.distrib\nd\n", func(f *fakeFS) {
		f.add("/usr", 0o040755, 1, "")
		f.add("/usr/bin", 0o040755, 1, "")
		f.file("/usr/bin/a", "a")
		f.link("/usr/bin/a-hardlink", "/usr/bin/a")
		f.file("/usr/lib/x86_64-linux-gnu/liba.so", "lib")
		f.dirLinks["/lib"] = "/usr/lib"
		f.file("/usr/bin/shared", "s")
		f.file("/usr/bin/diverted", "d's own")
		f.file("/usr/bin/diverted.distrib", "a's, moved aside")
	}, nil)
	p := w.plan(t)
	want := []string{
		"/lib/x86_64-linux-gnu/liba.so <- a:/lib/x86_64-linux-gnu/liba.so,b:/usr/lib/x86_64-linux-gnu/liba.so",
		"/usr/bin/a <- a:/usr/bin/a,a:/usr/bin/a-hardlink",
		"/usr/bin/diverted <- d:/usr/bin/diverted",
		"/usr/bin/diverted.distrib <- a:/usr/bin/diverted",
		"/usr/bin/shared <- b:/usr/bin/shared,c:/usr/bin/shared",
	}
	if got := targetPaths(p); !reflect.DeepEqual(got, want) {
		t.Errorf("targets:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if got := skipsOf(p); got["/usr/bin"] != "directory" || got["/usr"] != "directory" {
		t.Errorf("skips = %v, want directories skipped", got)
	}
}

func TestPlanNeverLocksConffilesOrTheirInodes(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "a", conffiles: []string{"/etc/a.conf 0f343b0931126a20f133d67c2b018a3b"},
			files: []string{"/etc/a.conf", "/usr/share/a/default.conf", "/usr/bin/a"}},
		{name: "b", files: []string{"/etc/a.conf"}}, // lists another package's conffile
	}, "", func(f *fakeFS) {
		f.file("/etc/a.conf", "conf")
		f.link("/usr/share/a/default.conf", "/etc/a.conf") // hard link to the conffile
		f.file("/usr/bin/a", "a")
	}, nil)
	p := w.plan(t)
	if got := targetPaths(p); !reflect.DeepEqual(got, []string{"/usr/bin/a <- a:/usr/bin/a"}) {
		t.Errorf("targets = %q", got)
	}
	s := skipsOf(p)
	if s["/etc/a.conf"] != "conffile" || s["/usr/share/a/default.conf"] != "conffile" {
		t.Errorf("skips = %v, want the conffile and its hard link skipped as conffile", s)
	}
}

func TestPlanPolicyAndTypes(t *testing.T) {
	pol, err := policy.Parse(strings.NewReader("exclude-path = /opt/*\n"), "conf")
	if err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/var/lib/a/data", "/usr/lib/a/data-link", "/opt/a/x", "/usr/bin/sym", "/usr/bin/gone", "/dev/a", "/usr/bin/fifo", "/usr/bin/ok"}},
	}, "", func(f *fakeFS) {
		f.file("/var/lib/a/data", "v")
		f.link("/usr/lib/a/data-link", "/var/lib/a/data") // hard link to an excluded path
		f.file("/opt/a/x", "o")
		f.add("/usr/bin/sym", 0o120777, 1, "")
		f.add("/dev/a", 0o020644, 1, "")
		f.add("/usr/bin/fifo", 0o010644, 1, "")
		f.file("/usr/bin/ok", "ok")
	}, pol)
	p := w.plan(t)
	if got := targetPaths(p); !reflect.DeepEqual(got, []string{"/usr/bin/ok <- a:/usr/bin/ok"}) {
		t.Errorf("targets = %q", got)
	}
	want := map[string]string{
		"/var/lib/a/data": "excluded", "/usr/lib/a/data-link": "excluded", "/opt/a/x": "excluded",
		"/usr/bin/sym": "symlink", "/usr/bin/gone": "missing", "/dev/a": "excluded", "/usr/bin/fifo": "special",
	}
	if got := skipsOf(p); !reflect.DeepEqual(got, want) {
		t.Errorf("skips = %v, want %v", got, want)
	}
}

func TestPlanPendingAndBadLists(t *testing.T) {
	dir := t.TempDir()
	if err := writeAdmindir(dir, []fakePkg{
		{name: "ok", files: []string{"/usr/bin/ok"}},
		{name: "unpacked", state: "unpacked", files: []string{"/usr/bin/u"}},
		{name: "bad", files: []string{"/usr/bin/b", "usr/bin/relative"}},
	}, ""); err != nil {
		t.Fatal(err)
	}
	db, err := dpkgdb.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	f := newFakeFS()
	f.file("/usr/bin/ok", "")
	f.file("/usr/bin/u", "")
	f.file("/usr/bin/b", "")
	pl := &Planner{DB: db, Policy: policy.Default(), FS: f}
	p, err := pl.Plan(context.Background(), db.Packages)
	if err != nil {
		t.Fatal(err)
	}
	if got := targetPaths(p); !reflect.DeepEqual(got, []string{"/usr/bin/ok <- ok:/usr/bin/ok"}) {
		t.Errorf("targets = %q: a bad list or an unconfigured package contributed", got)
	}
	if !reflect.DeepEqual(p.Pending, []string{"unpacked"}) {
		t.Errorf("pending = %v", p.Pending)
	}
	if err := p.Packages["bad"]; err == nil || !strings.Contains(err.Error(), "bad.list:3") {
		t.Errorf("Packages[bad] = %v, want an error naming bad.list:3", err)
	}
}

func TestApplyIsIdempotentAndSkipsUnsupported(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/usr/bin/a", "/usr/bin/b", "/boot/efi/x", "/boot/efi/y"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/a", "")
		f.file("/usr/bin/b", "")
		f.add("/boot/efi/x", 0o100644, 9, "")
		f.add("/boot/efi/y", 0o100644, 9, "")
		f.unsupported[9] = true
	}, nil)
	ctx := context.Background()
	p := w.plan(t)
	s := Apply(ctx, w.fs, p.Targets, true, 1, nil)
	if s.Changed != 2 || s.Already != 0 || len(s.Errors) != 0 || s.UnsupportedCount() != 2 {
		t.Fatalf("first lock: changed %d already %d unsupported %d errors %v", s.Changed, s.Already, s.UnsupportedCount(), s.Errors)
	}
	if len(s.Unsupported["vfat"]) != 2 {
		t.Errorf("unsupported = %v, want 2 on vfat", s.Unsupported)
	}
	// Only one file on the vfat device was tried: the second was known
	// unsupported without another ioctl (1 worker, so deterministic).
	if w.fs.gets != 3 {
		t.Errorf("files opened = %d, want 3 (2 locked + 1 vfat probe)", w.fs.gets)
	}
	w.fs.sets, w.fs.gets = 0, 0
	p = w.plan(t)
	s = Apply(ctx, w.fs, p.Targets, true, 4, nil)
	if w.fs.sets != 0 || s.Changed != 0 || s.Already != 2 {
		t.Errorf("second lock: %d changing ioctls, changed %d, already %d; want 0, 0, 2", w.fs.sets, s.Changed, s.Already)
	}
	if w.fs.gets != 1 {
		t.Errorf("second lock opened %d files, want only the vfat probe", w.fs.gets)
	}
	p = w.plan(t)
	s = Apply(ctx, w.fs, p.Targets, false, 4, nil)
	if s.Changed != 2 {
		t.Errorf("unlock changed %d, want 2", s.Changed)
	}
}

// EOPNOTSUPP can be about one inode on a filesystem that has flags: it
// must not stop the rest of the device from being locked. A filesystem
// without the ioctls (ENOTTY) is skipped after one probe, and every file
// it holds is reported under its own name.
func TestApplyUnsupportedIsPerInodeUnlessENOTTY(t *testing.T) {
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/usr/bin/odd", "/usr/bin/b", "/usr/bin/c", "/boot/efi/x", "/boot/efi/y"}},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/odd", "")
		f.file("/usr/bin/b", "")
		f.file("/usr/bin/c", "")
		f.add("/boot/efi/x", 0o100644, 9, "")
		f.add("/boot/efi/y", 0o100644, 9, "")
		f.unsupported[9] = true
		f.fail["/usr/bin/odd"] = &fsattr.UnsupportedError{Path: "/usr/bin/odd", FS: "ext2/3/4", Err: syscall.EOPNOTSUPP}
	}, nil)
	s := Apply(context.Background(), w.fs, w.plan(t).Targets, true, 1, nil)
	if s.Changed != 2 || s.UnsupportedCount() != 3 {
		t.Errorf("changed %d, unsupported %d; want 2 locked (b, c) and 3 unsupported (odd, x, y)", s.Changed, s.UnsupportedCount())
	}
	var named []string
	for _, ts := range s.Unsupported {
		for _, tg := range ts {
			named = append(named, tg.Path())
		}
	}
	for _, o := range s.Outcomes {
		var ue *fsattr.UnsupportedError
		if errors.As(o.Err, &ue) && !strings.HasSuffix(ue.Path, o.Target.Path()) {
			t.Errorf("the error for %s names %s", o.Target.Path(), ue.Path)
		}
	}
	sort.Strings(named)
	if want := []string{"/boot/efi/x", "/boot/efi/y", "/usr/bin/odd"}; !reflect.DeepEqual(named, want) {
		t.Errorf("unsupported = %v, want %v", named, want)
	}
}

func TestApplyReportsReplacedInode(t *testing.T) {
	w := newWorld(t, []fakePkg{{name: "a", files: []string{"/usr/bin/a"}}}, "", func(f *fakeFS) {
		f.file("/usr/bin/a", "old")
	}, nil)
	p := w.plan(t)
	w.fs.file("/usr/bin/a", "new") // replaced between plan and apply
	s := Apply(context.Background(), w.fs, p.Targets, true, 1, nil)
	if len(s.Errors) != 1 || w.fs.sets != 0 {
		t.Errorf("errors %v, sets %d; want one error and nothing locked", s.Errors, w.fs.sets)
	}
}

func TestVerify(t *testing.T) {
	sum := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	w := newWorld(t, []fakePkg{
		{name: "a", files: []string{"/usr/bin/good", "/usr/bin/bad", "/usr/bin/nosum"},
			md5sums: sum("good") + "  usr/bin/good\n" + sum("original") + "  usr/bin/bad\n"},
	}, "", func(f *fakeFS) {
		f.file("/usr/bin/good", "good")
		f.file("/usr/bin/bad", "tampered")
		f.file("/usr/bin/nosum", "x")
	}, nil)
	p := w.plan(t)
	res := w.pl.Verify(context.Background(), p.Targets, nil)
	if len(res.OK) != 1 || res.OK[0].Name != "good" {
		t.Errorf("OK = %v", res.OK)
	}
	if len(res.Mismatches) != 1 || res.Mismatches[0].Target.Name != "bad" || !strings.Contains(res.Mismatches[0].String(), "/usr/bin/bad") {
		t.Errorf("Mismatches = %v", res.Mismatches)
	}
	if len(res.Unverified) != 1 || res.Unverified[0].Name != "nosum" {
		t.Errorf("Unverified = %v", res.Unverified)
	}
	if res.Digests != nil {
		t.Errorf("Verify returned digests: %v", res.Digests)
	}
	// VerifyDigests: the same verdicts, and both digests of what matched
	// (only that), from the same read.
	res = w.pl.VerifyDigests(context.Background(), p.Targets, nil)
	if len(res.OK) != 1 || len(res.Mismatches) != 1 || len(res.Digests) != 1 {
		t.Fatalf("VerifyDigests: %d OK, %d mismatches, %d digests; want 1 each", len(res.OK), len(res.Mismatches), len(res.Digests))
	}
	good := res.OK[0].Info
	d, ok := res.Digests.Lookup(good.Ident, good.Size, good.Mtime)
	if !ok || d.MD5 != md5.Sum([]byte("good")) || d.SHA256 != sha256.Sum256([]byte("good")) {
		t.Errorf("digest of good = %+v, %v", d, ok)
	}
	if _, ok := res.Digests.Lookup(good.Ident, good.Size+1, good.Mtime); ok {
		t.Error("a digest matched a file of another size")
	}
}

func TestStateRoundTrip(t *testing.T) {
	root := t.TempDir()
	s, err := LoadState(root)
	if err != nil || s.Any() {
		t.Fatalf("LoadState(fresh) = %+v, %v", s, err)
	}
	s.Lock([]string{"b", "a"}, false)
	if err := s.Save(root); err != nil {
		t.Fatal(err)
	}
	s, _ = LoadState(root)
	if !s.Sealed("a") || !s.Sealed("b") || s.Sealed("c") {
		t.Errorf("packages state wrong: %+v", s)
	}
	s.Lock(nil, true)
	s.Unlock([]string{"c"}, false)
	if err := s.Save(root); err != nil {
		t.Fatal(err)
	}
	s, _ = LoadState(root)
	if !s.Sealed("a") || s.Sealed("c") || !s.All {
		t.Errorf("all-except state wrong: %+v", s)
	}
	s.Lock([]string{"c"}, false)
	if !s.Sealed("c") {
		t.Error("lock c after unlock c")
	}
	s.Unlock(nil, true)
	if err := s.Save(root); err != nil {
		t.Fatal(err)
	}
	s, _ = LoadState(root)
	if s.Any() {
		t.Errorf("unlock --all left %+v", s)
	}
}

// A hard link no package path accounts for (dpkg 1.21 extracting "../x"
// under --root, or an ln inside the root) may be a file outside the root:
// its inode is never a target, whichever packages are planned.
func TestPlanForeignLinks(t *testing.T) {
	pkgs := []fakePkg{
		{name: "a", files: []string{"/usr/bin/a", "/usr/bin/a2", "/usr/bin/lone", "/bin/m", "/usr/bin/m"}},
		{name: "b", files: []string{"/usr/bin/b"}},
		{name: "c", files: []string{"/usr/lib/c-link-of-b"}}, // another package names b's second link
	}
	setup := func(f *fakeFS) {
		f.file("/usr/bin/a", "a")
		f.link("/usr/bin/a2", "/usr/bin/a")
		f.nodes["/usr/bin/a"].info.Nlink = 2        // both links listed: a target
		f.file("/usr/bin/lone", "x").info.Nlink = 2 // one link nobody lists
		f.file("/usr/bin/m", "m")                   // merged /usr: two paths, one dentry, nlink 1
		f.dirLinks["/bin"] = "/usr/bin"
		f.file("/usr/bin/b", "b").info.Nlink = 2
		f.link("/usr/lib/c-link-of-b", "/usr/bin/b")
	}
	tests := []struct {
		name    string
		pkgs    []string
		targets []string
		foreign []string
		detail  string
	}{
		{name: "all", targets: []string{"/bin/m", "/usr/bin/a", "/usr/bin/b"}, foreign: []string{"/usr/bin/lone"}},
		{name: "one package", pkgs: []string{"a"}, targets: []string{"/bin/m", "/usr/bin/a"}, foreign: []string{"/usr/bin/lone"}},
		{name: "the other link is another package's", pkgs: []string{"b"}, targets: []string{"/usr/bin/b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, pkgs, "", setup, nil)
			p := w.plan(t, tc.pkgs...)
			var got []string
			for _, tg := range p.Targets {
				got = append(got, tg.Path())
			}
			if !reflect.DeepEqual(got, tc.targets) {
				t.Errorf("targets = %q, want %q", got, tc.targets)
			}
			var foreign []string
			for _, s := range p.Skips {
				if s.Reason == SkipForeignLink {
					foreign = append(foreign, s.Real)
					if !strings.Contains(s.Detail, "2 links, 1 reached by package paths") {
						t.Errorf("detail = %q", s.Detail)
					}
				}
			}
			if !reflect.DeepEqual(foreign, tc.foreign) {
				t.Errorf("foreign-link skips = %q, want %q", foreign, tc.foreign)
			}
			sum := Apply(context.Background(), w.fs, p.Targets, true, 0, nil)
			if len(sum.Errors) > 0 {
				t.Fatal(sum.Errors)
			}
			if fl := w.fs.nodes["/usr/bin/lone"].flags; fl != 0 {
				t.Errorf("the foreign-linked inode got flags %#x", fl)
			}
		})
	}
}

// unlock --all with Conffiles plans conffiles too (it only makes files
// more mutable); a lock never does.
func TestPlanUnlockConffiles(t *testing.T) {
	pkgs := []fakePkg{{name: "a", conffiles: []string{"/etc/a.conf 0f343b0931126a20f133d67c2b018a3b"}, files: []string{"/etc/a.conf", "/usr/bin/a"}}}
	setup := func(f *fakeFS) {
		f.file("/etc/a.conf", "conf")
		f.file("/usr/bin/a", "a")
	}
	for _, tc := range []struct {
		name                 string
		forUnlock, conffiles bool
		want                 []string
	}{
		{"lock", false, true, []string{"/usr/bin/a"}},
		{"unlock", true, false, []string{"/usr/bin/a"}},
		{"unlock with conffiles", true, true, []string{"/etc/a.conf", "/usr/bin/a"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := newWorld(t, pkgs, "", setup, nil)
			w.pl.ForUnlock, w.pl.Conffiles = tc.forUnlock, tc.conffiles
			var got []string
			for _, tg := range w.plan(t).Targets {
				got = append(got, tg.Path())
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("targets = %q, want %q", got, tc.want)
			}
		})
	}
}
