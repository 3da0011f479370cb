package manifest

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io/fs"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

func sample() *Manifest {
	m := &Manifest{Package: "hello", Arch: "amd64", Version: "1:2.10-3", Provenance: AptVerified, Content: FromInstalled,
		Deb: "/var/cache/apt/archives/hello_2.10-3_amd64.deb", DebSHA256: strings.Repeat("ab", 32),
		Index: "SHA256:" + strings.Repeat("ab", 32) + " pool/main/h/hello.deb", Created: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Format: 2}
	m.Entries = []Entry{
		{Path: "/usr/bin/hello", Type: TypeFile, Mode: 0o4755, Size: 12, HasSHA256: true, SHA256: sha256.Sum256([]byte("x")), HasMD5: true,
			HasVerity: true, Verity: sha256.Sum256([]byte("v"))},
		{Path: "/usr/share/doc/hello", Type: TypeDir, Mode: 0o755, Size: -1, Uid: 0, Gid: 4},
		{Path: "/usr/share/hello/name with spaces%.txt", Type: TypeFile, Mode: 0o644, Size: 0},
		{Path: "/usr/bin/hi", Type: TypeSymlink, Mode: 0o777, Size: -1, Link: "hello world"},
		{Path: "/dev/x", Type: TypeChar, Mode: 0o600, Size: -1, Uid: 100, Gid: 100},
	}
	m.Sort()
	return m
}

func TestRoundTrip(t *testing.T) {
	m := sample()
	b := Marshal(m)
	got, err := Unmarshal(b, "test")
	if err != nil {
		t.Fatalf("Unmarshal(Marshal(m)) error: %v\n%s", err, b)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("Unmarshal(Marshal(m)) = %+v\nwant %+v", got, m)
	}
	if e, ok := got.Lookup("/usr/bin/hi"); !ok || e.Link != "hello world" {
		t.Errorf("Lookup(/usr/bin/hi) = %+v, %v", e, ok)
	}
	if _, ok := got.Lookup("/usr/bin/nope"); ok {
		t.Error("Lookup(/usr/bin/nope) found something")
	}
	if !bytes.Contains(b, []byte("name%20with%20spaces%25.txt")) {
		t.Errorf("paths with blanks and %% are not escaped:\n%s", b)
	}
	golden, err := os.ReadFile("testdata/hello_amd64.manifest")
	if err != nil || !bytes.Equal(golden, b) {
		if os.Getenv("UPDATE_GOLDEN") != "" {
			os.WriteFile("testdata/hello_amd64.manifest", b, 0o644)
			return
		}
		t.Errorf("Marshal(sample) differs from testdata/hello_amd64.manifest (UPDATE_GOLDEN=1 rewrites it):\n%s", b)
	}
}

// A format 1 manifest (written before entries had a verity field) reads
// as the same manifest without verity digests.
func TestReadFormat1(t *testing.T) {
	b, err := os.ReadFile("testdata/hello_amd64.v1.manifest")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Unmarshal(b, "v1")
	if err != nil {
		t.Fatalf("format 1: %v", err)
	}
	want := sample()
	want.Format = 1
	for i := range want.Entries {
		want.Entries[i].HasVerity, want.Entries[i].Verity = false, [32]byte{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("format 1 = %+v\nwant %+v", got, want)
	}
	// A format 1 line with a verity field is one field too many, and a
	// format 2 line without it one too few.
	for _, c := range []struct{ magic, entry string }{
		{Magic1, "f 0644 0 0 1 - - - /a"},
		{Magic, "f 0644 0 0 1 - - /a"},
		{Magic, "l 0777 0 0 - - - /a b"},
		{Magic, "f 0644 0 0 1 - - 0123 /a"},
		{Magic, "d 0755 0 0 - - - " + strings.Repeat("0", 64) + " /a"},
	} {
		in := resum(c.magic + "\nPackage: a\nVersion: 1\nProvenance: local\n\n" + c.entry + "\nchecksum sha256 " + strings.Repeat("0", 64) + "\n")
		if _, err := Unmarshal([]byte(in), "x"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("%s with %q: error %v, want ErrCorrupt", c.magic, c.entry, err)
		}
	}
}

// resum replaces a manifest's checksum line with the right one.
func resum(s string) string {
	i := strings.LastIndex(strings.TrimSuffix(s, "\n"), "\n")
	body := s[:i+1]
	return body + "checksum sha256 " + hexSum(body) + "\n"
}

func TestReadErrors(t *testing.T) {
	good := string(Marshal(sample()))
	tests := []struct {
		name string
		data string
		want error
	}{
		{"empty", "", ErrCorrupt},
		{"no checksum", strings.Join(strings.Split(good, "\n")[:12], "\n") + "\n", ErrCorrupt},
		{"tampered entry", strings.Replace(good, "4755", "0755", 1), ErrChecksum},
		{"tampered and resummed is accepted", resum(strings.Replace(good, "4755", "0755", 1)), nil},
		{"bad magic", resum(strings.Replace(good, Magic, "debseal-manifest 9", 1)), ErrCorrupt},
		{"bad type", resum(strings.Replace(good, "\nd 0755", "\nq 0755", 1)), ErrCorrupt},
		{"bad mode", resum(strings.Replace(good, "\nd 0755", "\nd 0999", 1)), ErrCorrupt},
		{"unsorted", resum(strings.Replace(good, "/usr/bin/hello", "/zzz", 1)), ErrCorrupt},
		{"bad provenance", resum(strings.Replace(good, "apt-verified", "trust-me", 1)), ErrCorrupt},
		{"digest on a directory", resum(strings.Replace(good, "d 0755 0 4 - -", "d 0755 0 4 - "+strings.Repeat("0", 64), 1)), ErrCorrupt},
		{"verity digest on a directory", resum(strings.Replace(good, "d 0755 0 4 - - - -", "d 0755 0 4 - - - "+strings.Repeat("0", 64), 1)), ErrCorrupt},
		{"bad verity digest", resum(strings.Replace(good, hex.EncodeToString(sample().Entries[1].Verity[:]), "zz", 1)), ErrCorrupt},
		{"truncated escape", resum(strings.Replace(good, "spaces%25", "spaces%2", 1)), ErrCorrupt},
		{"no final newline", strings.TrimSuffix(good, "\n"), ErrCorrupt},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Unmarshal([]byte(tt.data), "m")
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("Unmarshal() = %v, want %v", err, tt.want)
			}
		})
	}
}

func hexSum(s string) string {
	sum := sha256.Sum256([]byte(s))
	const hx = "0123456789abcdef"
	var b strings.Builder
	for _, c := range sum {
		b.WriteByte(hx[c>>4])
		b.WriteByte(hx[c&15])
	}
	return b.String()
}

func FuzzRead(f *testing.F) {
	f.Add(Marshal(sample()))
	f.Add([]byte(Magic + "\nPackage: a\nVersion: 1\nProvenance: local\n\nf 0644 0 0 1 - - - /a\nchecksum sha256 " + strings.Repeat("0", 64) + "\n"))
	f.Add([]byte(resum(Magic1 + "\nPackage: a\nVersion: 1\nProvenance: local\n\nf 0644 0 0 1 - - /a\nl 0777 0 0 - - - /b a\nchecksum sha256 \n")))
	f.Add([]byte("checksum sha256 \n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := Unmarshal(data, "fuzz")
		if err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrChecksum) {
			t.Fatalf("error %v matches neither ErrCorrupt nor ErrChecksum", err)
		}
		if err != nil {
			return
		}
		// What parses must survive a round trip unchanged (written in
		// format 2, whatever format it was read in).
		m.Format = 2
		again, err := Unmarshal(Marshal(m), "again")
		if err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip: %v\n%+v\n%+v", err, m, again)
		}
	})
}

// Store.Header reads what the full parse reads of the header, and refuses
// what is not a manifest header.
func TestReadHeader(t *testing.T) {
	m := sample()
	h, err := readHeader(bytes.NewReader(Marshal(m)), "test")
	if err != nil {
		t.Fatal(err)
	}
	m.Entries = nil
	if !reflect.DeepEqual(h, m) {
		t.Errorf("readHeader = %+v\nwant %+v", h, m)
	}
	for _, in := range []string{"", "not a manifest\n\n", Magic + "\nPackage: x\n", Magic + "\nVersion: 1\n\n", Magic + "\nbad line\n\n"} {
		if _, err := readHeader(strings.NewReader(in), "test"); !errors.Is(err, ErrCorrupt) {
			t.Errorf("readHeader(%q) error = %v, want ErrCorrupt", in, err)
		}
	}
}

// TestStoreReader: SaveAll writes every manifest (the last of one package
// wins), and a Reader reads back what Store.Load and Store.Header read,
// with the same error for a missing one.
func TestStoreReader(t *testing.T) {
	testutil.RequireRoot(t) // the manifests are made immutable
	root := testutil.TempRoot(t)
	s := StoreFor(root)
	a, b, old := sample(), sample(), sample()
	b.Package, b.Arch = "other", "all"
	old.Version = "0.1"
	for i, err := range s.SaveAll([]*Manifest{old, a, b}) {
		if err != nil {
			t.Fatalf("SaveAll: manifest %d: %v", i, err)
		}
	}
	rd, err := s.Reader()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	for _, m := range []*Manifest{a, b} {
		want, err := s.Load(m.Package, m.Arch)
		if err != nil || want.Version != m.Version {
			t.Fatalf("Store.Load(%s) = %v, %v", m.Package, want, err)
		}
		if got, err := rd.Load(m.Package, m.Arch); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("Reader.Load(%s) = %+v, %v; want %+v", m.Package, got, err, want)
		}
		wantH, _ := s.Header(m.Package, m.Arch)
		if got, err := rd.Header(m.Package, m.Arch); err != nil || !reflect.DeepEqual(got, wantH) {
			t.Errorf("Reader.Header(%s) = %+v, %v; want %+v", m.Package, got, err, wantH)
		}
	}
	if _, err := rd.Load("missing", "all"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reader.Load(missing) error = %v, want fs.ErrNotExist", err)
	}
}

// TestStorePrune: only the manifests keep rejects go, whatever else the
// store directory holds (a stray file, a name with no manifest suffix).
func TestStorePrune(t *testing.T) {
	testutil.RequireRoot(t) // the manifests are made immutable
	root := testutil.TempRoot(t)
	s := StoreFor(root)
	var ms []*Manifest
	for _, id := range []struct{ pkg, arch string }{{"hello", "amd64"}, {"libc6", "i386"}, {"libc6", "amd64"}, {"gone", "all"}, {"noarch", ""}} {
		m := sample()
		m.Package, m.Arch = id.pkg, id.arch
		ms = append(ms, m)
	}
	for i, err := range s.SaveAll(ms) {
		if err != nil {
			t.Fatalf("SaveAll: manifest %d: %v", i, err)
		}
	}
	stray := s.Dir + "/notes.txt"
	if err := os.WriteFile(stray, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	installed := map[string]bool{"hello_amd64": true, "libc6_amd64": true}
	removed, errs := s.Prune(func(pkg, arch string) bool { return installed[ID(pkg, arch)] })
	if len(errs) > 0 {
		t.Fatalf("Prune: %v", errs)
	}
	if want := []string{"gone_all", "libc6_i386", "noarch"}; !reflect.DeepEqual(removed, want) {
		t.Errorf("Prune removed %v, want %v", removed, want)
	}
	for _, m := range ms {
		_, err := s.Load(m.Package, m.Arch)
		if installed[ID(m.Package, m.Arch)] != (err == nil) {
			t.Errorf("after Prune, Load(%s) error = %v", ID(m.Package, m.Arch), err)
		}
	}
	if _, err := os.Stat(stray); err != nil {
		t.Errorf("Prune touched a file that is not a manifest: %v", err)
	}
	// Nothing left to prune, and a store that does not exist: no error.
	if removed, errs := s.Prune(func(string, string) bool { return true }); len(removed)+len(errs) > 0 {
		t.Errorf("second Prune = %v, %v", removed, errs)
	}
	if removed, errs := StoreFor(testutil.TempRoot(t)).Prune(func(string, string) bool { return false }); len(removed)+len(errs) > 0 {
		t.Errorf("Prune of an empty root = %v, %v", removed, errs)
	}
}

func TestSplitName(t *testing.T) {
	for _, c := range []struct {
		name, pkg, arch string
		ok              bool
	}{
		{"hello_amd64.manifest", "hello", "amd64", true},
		{"g++-12_amd64.manifest", "g++-12", "amd64", true},
		{"noarch.manifest", "noarch", "", true},
		{".tmp123.manifest", "", "", false},
		{"a_b_c.manifest", "", "", false},
		{"_amd64.manifest", "", "", false},
		{"hello_amd64", "", "", false},
		{".manifest", "", "", false},
	} {
		pkg, arch, ok := splitName(c.name)
		if pkg != c.pkg || arch != c.arch || ok != c.ok {
			t.Errorf("splitName(%q) = %q, %q, %v; want %q, %q, %v", c.name, pkg, arch, ok, c.pkg, c.arch, c.ok)
		}
	}
}
