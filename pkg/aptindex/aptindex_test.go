package aptindex

import (
	"bytes"
	"compress/gzip"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pierrec/lz4/v4"
)

func parseAll(t *testing.T, data string) ([]Entry, error) {
	t.Helper()
	var out []Entry
	err := parse(strings.NewReader(data), "test", func(e Entry) error {
		out = append(out, e)
		return nil
	})
	return out, err
}

func TestParseStrongestHash(t *testing.T) {
	b, err := os.ReadFile("testdata/Packages")
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseAll(t, string(b))
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"both 1.0-1 amd64 SHA256:0d5f444f594e48c1e16a41d8fc628a09b24c658916a1274025c2330f2a802bed",
		"oldrepo 2:3.4 all SHA1:1111111111111111111111111111111111111111",
		"md5only 1 i386 MD5sum:eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee",
	}
	if len(got) != len(want) {
		t.Fatalf("Parse() = %d entries %v, want %d", len(got), got, len(want))
	}
	for i, e := range got {
		if s := e.Key() + " " + e.Hash.String(); s != want[i] {
			t.Errorf("entry %d = %q, want %q", i, s, want[i])
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, data string
	}{
		{"no colon", "Package: a\nVersion 1\n"},
		{"short sha256", "Package: a\nVersion: 1\nArchitecture: all\nSHA256: abcd\n"},
		{"not hex", "Package: a\nSHA1: zz23456789abcdef0123456789abcdef01234567\n"},
		{"orphan continuation", " continued\n"},
		{"blank in name", "Package: a b\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseAll(t, tt.data)
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("Parse(%q) = %v, want a syntax error", tt.data, err)
			}
		})
	}
}

// TestLoadCompressed builds a lists directory with the same index plain,
// gzip- and lz4-compressed (what apt keeps with Acquire::GzipIndexes) and
// checks the cache answers the same before and after it is written.
func TestLoadCompressed(t *testing.T) {
	raw, err := os.ReadFile("testdata/Packages")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	lists := filepath.Join(dir, "lists")
	os.Mkdir(lists, 0o755)
	os.WriteFile(filepath.Join(lists, "a_dists_x_main_binary-amd64_Packages"), raw, 0o644)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(strings.ReplaceAll(string(raw), "both", "gzpkg")))
	zw.Close()
	os.WriteFile(filepath.Join(lists, "b_dists_y_main_binary-amd64_Packages.gz"), gz.Bytes(), 0o644)
	var lz bytes.Buffer
	lw := lz4.NewWriter(&lz)
	lw.Write([]byte(strings.ReplaceAll(string(raw), "both", "lz4pkg")))
	lw.Close()
	os.WriteFile(filepath.Join(lists, "c_dists_z_main_binary-amd64_Packages.lz4"), lz.Bytes(), 0o644)
	os.WriteFile(filepath.Join(lists, "c_dists_z_InRelease"), []byte("not an index"), 0o644)

	cache := "cache" // within dir
	for _, wantRebuilt := range []bool{true, false} {
		ix, err := Load(lists, dir, cache)
		if err != nil {
			t.Fatal(err)
		}
		if ix.Rebuilt != wantRebuilt {
			t.Errorf("Load().Rebuilt = %v, want %v", ix.Rebuilt, wantRebuilt)
		}
		for _, name := range []string{"both", "gzpkg", "lz4pkg"} {
			es := ix.Lookup(name, "1.0-1", "amd64")
			if len(es) != 1 || hex.EncodeToString(es[0].Hash.Sum) != "0d5f444f594e48c1e16a41d8fc628a09b24c658916a1274025c2330f2a802bed" {
				t.Errorf("Lookup(%s) = %v", name, es)
			}
		}
		// oldrepo is in all three files with the same hash: deduplicated.
		if es := ix.Lookup("oldrepo", "2:3.4", "all"); len(es) != 1 {
			t.Errorf("Lookup(oldrepo) = %v, want one entry", es)
		}
		if es := ix.Lookup("both", "1.0", "amd64"); len(es) != 0 {
			t.Errorf("Lookup(both 1.0) = %v, want none (version must match exactly)", es)
		}
		if es := ix.Lookup("bot", "1.0-1", "amd64"); len(es) != 0 {
			t.Errorf("Lookup(bot) = %v, want none", es)
		}
		ix.Close()
	}
	// A changed index invalidates the cache.
	os.WriteFile(filepath.Join(lists, "a_dists_x_main_binary-amd64_Packages"), append(raw, "\nPackage: new\nVersion: 1\nArchitecture: all\nSHA256: "+strings.Repeat("ab", 32)+"\n"...), 0o644)
	ix, err := Load(lists, dir, cache)
	if err != nil {
		t.Fatal(err)
	}
	defer ix.Close()
	if !ix.Rebuilt || len(ix.Lookup("new", "1", "all")) != 1 {
		t.Errorf("after an index changed: Rebuilt = %v, new = %v", ix.Rebuilt, ix.Lookup("new", "1", "all"))
	}
}

func TestMatch(t *testing.T) {
	data := []byte("a .deb")
	sums, err := hashReader(bytes.NewReader(data), SHA256, MD5, SHA256)
	if err != nil {
		t.Fatal(err)
	}
	good := Entry{Package: "p", Hash: Hash{Algo: SHA256, Sum: sums[SHA256]}}
	bad := Entry{Package: "p", Hash: Hash{Algo: MD5, Sum: make([]byte, 16)}}
	if _, ok := Match([]Entry{bad, good}, sums); !ok {
		t.Error("Match() = false, want the SHA256 entry")
	}
	if _, ok := Match([]Entry{bad}, sums); ok {
		t.Error("Match(wrong md5) = true")
	}
	if _, ok := Match([]Entry{{Hash: Hash{Algo: SHA1, Sum: make([]byte, 20)}}}, sums); ok {
		t.Error("Match(sha1 not computed) = true")
	}
}

func FuzzParse(f *testing.F) {
	b, _ := os.ReadFile("testdata/Packages")
	f.Add(b)
	f.Add([]byte("Package: a\n\n\n SHA256:\n"))
	f.Add([]byte("Package: x\nVersion: 1\nArchitecture: all\nMD5sum: " + strings.Repeat("0", 32) + "\r\n"))
	// CI found this: a form feed inside Filename split the cache line.
	f.Add([]byte("Package: 0\nVersion: 0\nArchitecture: 0\nFilename: 0\f00\nSHA1: " + strings.Repeat("0", 40) + "\n"))
	f.Add([]byte("Package: 0\nVersion: 0\nArchitecture: 0\nFilename: \u00a0x\nSHA1: " + strings.Repeat("0", 40) + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		parse(bytes.NewReader(data), "fuzz", func(e Entry) error {
			if e.Package == "" || e.Version == "" || e.Arch == "" || len(e.Hash.Sum) != e.Hash.Algo.size() {
				t.Fatalf("bad entry %+v", e)
			}
			// What parse accepts, the cache must round-trip.
			got, err := parseCacheLine([]byte(strings.TrimSuffix(cacheLine(e), "\n")))
			if err != nil || got.Key() != e.Key() || !bytes.Equal(got.Hash.Sum, e.Hash.Sum) {
				t.Fatalf("cache line of %+v: %+v, %v", e, got, err)
			}
			return nil
		})
	})
}
