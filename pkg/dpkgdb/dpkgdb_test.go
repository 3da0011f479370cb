package dpkgdb

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

func openFixture(t *testing.T) *DB {
	t.Helper()
	db, err := Open(testutil.Fixture(t, "dpkgdb/basic"))
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func TestOpenAppliesJournal(t *testing.T) {
	db := openFixture(t)
	var ids []string
	for _, p := range db.Packages {
		ids = append(ids, p.ID()+"="+p.State.String())
	}
	want := []string{"alpha=installed", "beta=triggers-pending", "delta=not-installed",
		"gamma=config-files", "libmulti:amd64=installed", "libmulti:i386=installed"}
	if !reflect.DeepEqual(ids, want) {
		t.Fatalf("packages = %q, want %q", ids, want)
	}
	beta := db.Lookup("beta")[0]
	if beta.Version != "1.1" || !reflect.DeepEqual(beta.TrigPending, []string{"ldconfig", "man-db"}) {
		t.Errorf("beta = %s %v, want the last journal entry (1.1, ldconfig man-db)", beta.Version, beta.TrigPending)
	}
	if !beta.Configured() || db.Lookup("gamma")[0].Configured() {
		t.Error("Configured() wrong for triggers-pending or config-files")
	}
}

func TestConffilesField(t *testing.T) {
	db := openFixture(t)
	got := db.Lookup("alpha")[0].Conffiles
	want := []Conffile{
		{Path: "/etc/alpha/alpha.conf", Hash: "0f343b0931126a20f133d67c2b018a3b"},
		{Path: "/etc/alpha/with space.conf", Hash: "5d41402abc4b2a76b9719d911017c592", Obsolete: true},
		{Path: "/etc/alpha/gone.conf", Hash: "newconffile", RemoveOnUpgrade: true},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Conffiles = %+v, want %+v", got, want)
	}
}

func TestLookupAndInfoPaths(t *testing.T) {
	db := openFixture(t)
	if n := len(db.Lookup("libmulti")); n != 2 {
		t.Errorf("Lookup(libmulti) = %d packages, want 2", n)
	}
	ps := db.Lookup("libmulti:i386")
	if len(ps) != 1 || ps[0].Arch != "i386" {
		t.Fatalf("Lookup(libmulti:i386) = %v", ps)
	}
	files, err := db.Files(ps[0])
	if err != nil {
		t.Fatal(err)
	}
	if files[3] != "/usr/lib/i386-linux-gnu/libmulti.so.2" {
		t.Errorf("Files(libmulti:i386) = %q: wrong info file", files)
	}
	if got := db.Lookup("nope"); got != nil {
		t.Errorf("Lookup(nope) = %v", got)
	}
	alpha := db.Lookup("alpha")[0]
	files, err = db.Files(alpha)
	if err != nil {
		t.Fatal(err)
	}
	if files[0] != "/" || files[len(files)-1] != "/usr/share/doc/alpha/a file with spaces" {
		t.Errorf("Files(alpha) = %q", files)
	}
	sums, bad, err := db.MD5Sums(alpha)
	if err != nil || len(sums) != 2 || len(bad) != 1 {
		t.Errorf("MD5Sums(alpha) = %d sums, bad %v, err %v; want 2 sums and 1 bad line", len(sums), bad, err)
	}
	if !strings.Contains(bad[0].Error(), "alpha.md5sums:3") {
		t.Errorf("bad line error %q does not name file and line", bad[0])
	}
	script, err := db.ReadInfo(db.Lookup("beta")[0], "postinst")
	if err != nil || !strings.HasPrefix(string(script), "#!/bin/sh") {
		t.Errorf("ReadInfo(beta, postinst) = %q, %v", script, err)
	}
	if s, err := db.ReadInfo(alpha, "postinst"); s != nil || err != nil {
		t.Errorf("ReadInfo of a missing script = %q, %v; want nil, nil", s, err)
	}
	if f, err := db.Files(db.Lookup("delta")[0]); f != nil || err != nil {
		t.Errorf("Files(not-installed) = %v, %v", f, err)
	}
}

func TestDiversions(t *testing.T) {
	db := openFixture(t)
	d, err := db.Diversions()
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ path, owner, want string }{
		{"/usr/bin/alpha", "alpha", "/usr/bin/alpha.distrib"}, // diverted by beta
		{"/usr/bin/alpha", "beta", "/usr/bin/alpha"},          // the diverter keeps its own
		{"/usr/share/local", "anyone", "/usr/share/local.orig"},
		{"/usr/bin/other", "alpha", "/usr/bin/other"},
	}
	for _, tt := range tests {
		if got := d.Resolve(tt.path, tt.owner); got != tt.want {
			t.Errorf("Resolve(%s, %s) = %s, want %s", tt.path, tt.owner, got, tt.want)
		}
	}
	if div, ok := d.ByTo("/usr/share/local.orig"); !ok || div.Package != "" {
		t.Errorf("ByTo(local) = %+v, %v", div, ok)
	}
}

func TestListing(t *testing.T) {
	db := openFixture(t)
	got := db.Listing([]string{"/usr/bin/alpha", "/usr/share/doc/libmulti/copyright",
		"/etc/alpha/with space.conf", "/usr/sbin/beta", "/nowhere", "/usr"})
	ids := func(ps []*Package) string {
		var out []string
		for _, p := range ps {
			out = append(out, p.ID())
		}
		sort.Strings(out)
		return strings.Join(out, " ")
	}
	tests := []struct{ path, want string }{
		{"/usr/bin/alpha", "alpha"},
		{"/usr/share/doc/libmulti/copyright", "libmulti:amd64 libmulti:i386"}, // shared by M-A: same instances
		{"/etc/alpha/with space.conf", "alpha"},
		{"/usr/sbin/beta", "beta"},
		{"/nowhere", ""},
		{"/usr", "alpha libmulti:amd64 libmulti:i386"},
	}
	for _, tt := range tests {
		if g := ids(got[tt.path]); g != tt.want {
			t.Errorf("Listing()[%s] = %q, want %q", tt.path, g, tt.want)
		}
	}
	if len(db.Listing(nil)) != 0 {
		t.Error("Listing(nil) is not empty")
	}
	// Agrees with Files for every path of every package.
	var all []string
	for _, p := range db.Packages {
		fs, _ := db.Files(p)
		all = append(all, fs...)
	}
	listing := db.Listing(all)
	for _, p := range db.Packages {
		fs, _ := db.Files(p)
		for _, f := range fs {
			found := false
			for _, q := range listing[f] {
				found = found || q == p
			}
			if !found {
				t.Errorf("Listing()[%s] = %q lacks %s", f, ids(listing[f]), p.ID())
			}
		}
	}
}

func TestStatOverrides(t *testing.T) {
	db := openFixture(t)
	so, err := db.StatOverrides()
	if err != nil {
		t.Fatal(err)
	}
	o := so["/usr/share/doc/alpha/a file with spaces"]
	if o.User != "#0" || o.Group != "staff" || o.Mode.Perm() != 0o644 {
		t.Errorf("override = %+v", o)
	}
	if so["/usr/bin/alpha"].Mode&os.ModeSetuid == 0 {
		t.Error("setuid bit of 4755 lost")
	}
}

func TestBadInput(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) error
		in    string
		where string // file:line that the error must name
	}{
		{"status without Package", statusParse, "Package: a\nStatus: install ok installed\nVersion: 1\n\nVersion: 1\nStatus: install ok installed\n", "status:5"},
		{"status bad state", statusParse, "Package: a\nStatus: install ok sideways\n", "status:1"},
		{"status bad want", statusParse, "Package: a\nStatus: maybe ok installed\n", "status:1"},
		{"status no Status", statusParse, "Package: a\nVersion: 1\n", "status:1"},
		{"status truncated stanza", statusParse, "Package: a\nStatus: install ok installed\nConffiles:\n /etc/x\n", "status:1"},
		{"status garbled", statusParse, "Package: a\nStatus: install ok installed\n\x00garbage\n", "status:3"},
		{"list relative", listParse, "/.\n/usr\nusr/bin/x\n", "x.list:3"},
		{"list dotdot", listParse, "/.\n/usr/../etc/shadow\n", "x.list:2"},
		{"list empty line", listParse, "/.\n\n/usr\n", "x.list:2"},
		{"diversions missing line", divParse, "/a\n/a.real\npkg\n/b\n/b.real\n", "diversions:5"},
		{"diversions relative", divParse, "/a\na.real\npkg\n", "diversions:2"},
		{"diversions twice", divParse, "/a\n/a.1\np\n/a\n/a.2\nq\n", "diversions:4"},
		{"statoverride short", soParse, "root root 644\n", "statoverride:1"},
		{"statoverride bad mode", soParse, "root root 9x9 /usr/bin/x\n", "statoverride:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.parse(tt.in)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.Contains(err.Error(), tt.where) {
				t.Errorf("error %q does not name %s", err, tt.where)
			}
		})
	}
}

func statusParse(s string) error {
	_, err := ParseStatus(strings.NewReader(s), "status")
	return err
}

func listParse(s string) error {
	_, err := ParseList(strings.NewReader(s), "x.list")
	return err
}

func divParse(s string) error {
	_, err := ParseDiversions(strings.NewReader(s), "diversions")
	return err
}

func soParse(s string) error {
	_, err := ParseStatOverrides(strings.NewReader(s), "statoverride")
	return err
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "status"), []byte("Package: a\nStatus: install ok installed\nVersion: 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "updates"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "updates", "0000"), []byte("Status: install ok installed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir)
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "updates/0000:1") {
		t.Errorf("Open(bad journal) error = %v, want ErrCorrupt naming updates/0000:1", err)
	}
	// An unreadable list is an error for that package only.
	if err := os.Remove(filepath.Join(dir, "updates", "0000")); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Files(db.Lookup("a")[0]); err == nil || !strings.Contains(err.Error(), "a.list") {
		t.Errorf("Files(missing list) error = %v, want one naming a.list", err)
	}
}

func FuzzParseStatus(f *testing.F) {
	b, _ := os.ReadFile("../../testdata/dpkgdb/basic/status")
	f.Add(string(b))
	f.Add("Package: a\nStatus: install ok installed\nConffiles:\n /etc/x y z 0f343b0931126a20f133d67c2b018a3b obsolete\n")
	f.Fuzz(func(t *testing.T, in string) {
		pkgs, err := ParseStatus(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, p := range pkgs {
			if p.Name == "" {
				t.Fatal("package without name accepted")
			}
			for _, c := range p.Conffiles {
				if !strings.HasPrefix(c.Path, "/") {
					t.Fatalf("relative conffile %q accepted", c.Path)
				}
			}
		}
	})
}

func FuzzParseList(f *testing.F) {
	f.Add("/.\n/usr\n/usr/bin/x\n")
	f.Add("/a b\n/../x\n")
	f.Fuzz(func(t *testing.T, in string) {
		paths, err := ParseList(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, p := range paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
				t.Fatalf("unsafe path %q accepted", p)
			}
		}
	})
}

func FuzzParseDiversions(f *testing.F) {
	f.Add("/a\n/a.real\npkg\n/b\n/b.real\n:\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := ParseDiversions(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, div := range d.List {
			if d.Resolve(div.From, "someone-else") != div.To {
				t.Fatalf("Resolve(%s) is not %s", div.From, div.To)
			}
		}
	})
}

func FuzzParseStatOverrides(f *testing.F) {
	f.Add("root root 4755 /usr/bin/x\n#0 #0 0644 /a b\n")
	f.Fuzz(func(t *testing.T, in string) {
		so, err := ParseStatOverrides(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for p, o := range so {
			if p != o.Path || !strings.HasPrefix(p, "/") {
				t.Fatalf("bad override %+v", o)
			}
		}
	})
}

func TestTriggersAndRelations(t *testing.T) {
	dir := testutil.Fixture(t, "dpkgdb/basic")
	if err := os.MkdirAll(filepath.Join(dir, "triggers"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string]string{
		"File":     "/usr/share/man man-db/noawait\n/usr/share/icons/hicolor/ hicolor-icon-theme\n",
		"ldconfig": "libc-bin\n",
		"update-x": "x-noawait/noawait\n",
		"Unincorp": "ldconfig alpha\n",
		"Lock":     "",
	} {
		if err := os.WriteFile(filepath.Join(dir, "triggers", name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	in, err := db.Triggers()
	if err != nil {
		t.Fatal(err)
	}
	// Only an interest without -noawait can make an activator wait.
	if want := map[string]bool{"hicolor-icon-theme": true, "libc-bin": true}; !reflect.DeepEqual(in.Awaiting, want) {
		t.Errorf("Awaiting = %v, want %v", in.Awaiting, want)
	}
	if got := in.Interested("/usr/share/man/man1/hello.1.gz"); !reflect.DeepEqual(got, []string{"man-db"}) {
		t.Errorf("Interested(man page) = %v", got)
	}
	if got := in.Interested("/usr/share/icons/hicolor"); !reflect.DeepEqual(got, []string{"hicolor-icon-theme"}) {
		t.Errorf("Interested(hicolor) = %v", got)
	}
	if got := in.Interested("/usr/share/manual"); got != nil {
		t.Errorf("Interested(/usr/share/manual) = %v: prefix must end at a component", got)
	}
	if !reflect.DeepEqual(in.Explicit, map[string][]string{"ldconfig": {"libc-bin"}, "update-x": {"x-noawait"}}) {
		t.Errorf("Explicit = %v", in.Explicit)
	}
	if got := RelationNames("a (>= 1), b | c:any, d [amd64], e:amd64 (<< 2)"); !reflect.DeepEqual(got, []string{"a", "b", "c", "d", "e"}) {
		t.Errorf("RelationNames = %q", got)
	}
}

// A package whose unpack was cut short before dpkg wrote its list (dpkg
// killed in the preinst) is half-installed without a list: like dpkg, the
// reader says it has no files instead of failing (a failing hook would
// keep dpkg from ever reinstalling it).
func TestHalfInstalledWithoutList(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	status := "Package: cut\nStatus: install reinstreq half-installed\nArchitecture: all\nVersion: 1.0\n\n" +
		"Package: gone\nStatus: install ok installed\nArchitecture: all\nVersion: 1.0\n\n"
	if err := os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644); err != nil {
		t.Fatal(err)
	}
	db, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if files, err := db.Files(db.Lookup("cut")[0]); err != nil || files != nil {
		t.Errorf("Files(half-installed, no list) = %v, %v; want none, nil", files, err)
	}
	// An installed package without its list is damage: reported.
	if _, err := db.Files(db.Lookup("gone")[0]); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Files(installed, no list) error = %v, want ErrNotExist", err)
	}
}

// TestListsChangedAfter: the packages whose list is newer than the time
// given, in database order; a package without a list is not one.
func TestListsChangedAfter(t *testing.T) {
	db := openFixture(t)
	t0 := time.Now()
	old, fresh := t0.Add(-time.Hour), t0.Add(time.Hour)
	for _, p := range db.Packages {
		os.Chtimes(db.InfoPath(p, "list"), old, old)
	}
	for _, id := range []string{"libmulti:i386", "beta"} {
		for _, p := range db.Lookup(id) {
			if err := os.Chtimes(db.InfoPath(p, "list"), fresh, fresh); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name  string
		after time.Time
		want  string
	}{
		{"some changed", t0, "beta libmulti:i386"},
		{"none changed", fresh, ""},
		{"every list", old.Add(-time.Second), "alpha beta gamma libmulti:amd64 libmulti:i386"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pkgs, err := db.ListsChangedAfter(tt.after)
			var ids []string
			for _, p := range pkgs {
				ids = append(ids, p.ID())
			}
			if got := strings.Join(ids, " "); err != nil || got != tt.want {
				t.Errorf("ListsChangedAfter = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestStatusFieldIndexes: the field index constants name the fields of
// statusFields, in any case.
func TestStatusFieldIndexes(t *testing.T) {
	if len(statusFields) != numStatusFields {
		t.Fatalf("%d status fields, %d indexes", len(statusFields), numStatusFields)
	}
	for i, name := range statusFields {
		for _, n := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if got := statusField(n); got != i {
				t.Errorf("statusField(%q) = %d, want %d", n, got, i)
			}
		}
	}
	if got := statusField("Description"); got != -1 {
		t.Errorf("statusField(Description) = %d, want -1", got)
	}
}
