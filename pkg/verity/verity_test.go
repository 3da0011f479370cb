package verity

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// content describes test data by kind and size, so that the large cases
// are generated, never stored.
type content struct {
	kind string // "zero", "random" (seeded by size), "pattern" (byte i%251), or "text"
	size int
	text string
}

func (c content) bytes() []byte {
	switch c.kind {
	case "text":
		return []byte(c.text)
	case "zero":
		return make([]byte, c.size)
	case "pattern":
		b := make([]byte, c.size)
		for i := range b {
			b[i] = byte(i % 251)
		}
		return b
	case "random":
		b := make([]byte, c.size)
		rand.NewChaCha8([32]byte{byte(c.size), byte(c.size >> 8), byte(c.size >> 16), byte(c.size >> 24)}).Read(b)
		return b
	}
	panic("unknown content kind " + c.kind)
}

// fsverityDigest runs fsverity-utils on a file: its digest, and the size
// of the Merkle tree it builds (--out-merkle-tree).
func fsverityDigest(t *testing.T, path string) (string, int64) {
	t.Helper()
	tree := path + ".tree"
	out, err := exec.Command("fsverity", "digest", "--compact", "--hash-alg=sha256", "--block-size=4096",
		"--out-merkle-tree="+tree, path).CombinedOutput()
	if err != nil {
		t.Fatalf("fsverity digest %s: %v\n%s", path, err, out)
	}
	fi, err := os.Stat(tree)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(out)), fi.Size()
}

// TestMatchesFsverity compares Sum and TreeSize with fsverity-utils'
// userspace implementation (no kernel support needed) around every
// boundary of the tree's shape.
func TestMatchesFsverity(t *testing.T) {
	testutil.RequireCommand(t, "fsverity")
	sizes := []int{
		0, 1, 31, 32, 4095, 4096, 4097, 2 * 4096,
		127 * 4096, 128*4096 - 1, 128 * 4096, 128*4096 + 1, 129 * 4096, 129*4096 + 1,
		128 * 128 * 4096, 128*128*4096 + 1,
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 6 {
		sizes = append(sizes, rng.IntN(4<<20))
	}
	dir := t.TempDir()
	for _, size := range sizes {
		for _, kind := range []string{"zero", "random"} {
			c := content{kind: kind, size: size}
			name := kind + "-" + strconv.Itoa(size)
			t.Run(name, func(t *testing.T) {
				data := c.bytes()
				path := filepath.Join(dir, name)
				if err := os.WriteFile(path, data, 0o644); err != nil {
					t.Fatal(err)
				}
				want, wantTree := fsverityDigest(t, path)
				f, err := os.Open(path)
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				got, n, err := Sum(f)
				if err != nil {
					t.Fatal(err)
				}
				if got.String() != want || n != int64(size) {
					t.Errorf("Sum(%d bytes of %s) = %s, %d; fsverity digest says %s, %d", size, kind, got, n, want, size)
				}
				if tree := TreeSize(int64(size)); tree != wantTree {
					t.Errorf("TreeSize(%d) = %d; fsverity --out-merkle-tree wrote %d bytes", size, tree, wantTree)
				}
				// The same data in writes that straddle blocks.
				h := New()
				for p := data; len(p) > 0; {
					k := min(len(p), 4097+len(p)%13)
					h.Write(p[:k])
					p = p[k:]
				}
				if got := h.Sum(); got.String() != want {
					t.Errorf("Hasher in 4097..4109-byte writes of %d bytes of %s = %s, want %s", size, kind, got, want)
				}
				os.Remove(path)
				os.Remove(path + ".tree")
			})
		}
	}
}

// emptyDigest is the empty file's digest (root hash all zero).
const emptyDigest = "3d248ca542a24fc62d1c43b916eae5016878e2533c88238480b26128a1f1af95"

// Fixed vectors, produced once with fsverity-utils 1.5 (Debian bookworm)
// as testdata/README.md says; they hold without the tool installed.
func TestVectors(t *testing.T) {
	for _, c := range []struct {
		name string
		data content
		want string
	}{
		{"empty", content{kind: "text"}, emptyDigest},
		{"abc", content{kind: "text", text: "abc"}, "700b6bd8510f0b4f9bac8b9cf0459151a1c4a99f467892bb4bd289a67df8e19c"},
		{"one zero block", content{kind: "zero", size: 4096}, "babc284ee4ffe7f449377fbf6692715b43aec7bc39c094a95878904d34bac97e"},
		{"one zero block and a byte", content{kind: "zero", size: 4097}, "093756e4ea9683329106d4a16982682ed182c14bf076463a9e7f97305cbac743"},
		// A long last data block and a short root block: padding
		// must not reuse the data block's tail.
		{"pattern, long last block", content{kind: "pattern", size: 100000}, "f582acdb8f0ae0d159b650c0b967c2770f2bc994a416f80db8780a70b256714b"},
		{"pattern, two levels", content{kind: "pattern", size: 128*4096 + 1}, "4dc6905041c9c4ee73e13b53f63f5d289c46da359b664a965ead7f8cc4d799d4"},
		{"zeros, three levels", content{kind: "zero", size: 128*128*4096 + 1}, "be5993679f703697692cc6ce69e480edc9721baff591795438ae8097275c0687"},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, err := ParseDigest(c.want)
			if err != nil {
				t.Fatal(err)
			}
			data := c.data.bytes()
			got, n, err := Sum(bytes.NewReader(data))
			if err != nil || got != want || n != int64(len(data)) {
				t.Errorf("Sum(%s) = %s, %d, %v; want %s, %d, nil", c.name, got, n, err, want, len(data))
			}
		})
	}
}

func TestTreeSize(t *testing.T) {
	const b = BlockSize
	for _, c := range []struct {
		name string
		n    int64
		want int64 // in blocks
	}{
		{"negative", -1, 0},
		{"empty", 0, 0},
		{"one byte", 1, 0},
		{"one block", b, 0},
		{"two blocks, one hash block", b + 1, 1},
		{"a full hash block", 128 * b, 1},
		{"two hash blocks and a root block", 128*b + 1, 3},
		{"129 blocks", 129 * b, 3},
		{"a full second level", 128 * 128 * b, 128 + 1},
		{"three levels", 128*128*b + 1, 129 + 2 + 1},
		// 2^51 data blocks: 2^44 + 2^37 + ... + 2^9 + 4 + 1 tree blocks.
		{"largest", 1<<63 - 1, 1<<44 + 1<<37 + 1<<30 + 1<<23 + 1<<16 + 1<<9 + 4 + 1},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := TreeSize(c.n); got != c.want*b {
				t.Errorf("TreeSize(%d) = %d, want %d", c.n, got, c.want*b)
			}
		})
	}
}

func TestParseDigest(t *testing.T) {
	const hex = emptyDigest
	for _, c := range []struct {
		name, in string
		err      string // part of the error; "" : none
	}{
		{"valid", hex, ""},
		{"empty", "", `verity: digest "": 0 characters, want 64`},
		{"short", hex[:63], "63 characters"},
		{"long", hex + "0", "65 characters"},
		{"upper case", strings.ToUpper(hex), `'D' at offset 1 is not a lowercase hex digit`},
		{"not hex", "g" + hex[1:], `'g' at offset 0`},
		{"prefixed", "sha256:" + hex[7:], `'s' at offset 0`},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, err := ParseDigest(c.in)
			if c.err == "" {
				if err != nil || d.String() != c.in {
					t.Errorf("ParseDigest(%q) = %s, %v; want it back, nil", c.in, d, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.err) || !strings.Contains(err.Error(), c.in) {
				t.Errorf("ParseDigest(%q) error = %v, want one containing %q and the input", c.in, err, c.err)
			}
			if d != (Digest{}) {
				t.Errorf("ParseDigest(%q) = %s with an error, want the zero digest", c.in, d)
			}
		})
	}
}

// TestSumKeepsState: Sum may be called mid-stream, and Reset starts over.
func TestSumKeepsState(t *testing.T) {
	data := content{kind: "random", size: 300 * 4096}.bytes()
	want, _, _ := Sum(bytes.NewReader(data))
	for _, cut := range []int{0, 1, 4096, 4097, 128 * 4096, 128*4096 + 5, len(data)} {
		h := New()
		h.Write(data[:cut])
		prefix, _, _ := Sum(bytes.NewReader(data[:cut]))
		if got := h.Sum(); got != prefix {
			t.Errorf("Sum after %d bytes = %s, want %s", cut, got, prefix)
		}
		if got := h.Sum(); got != prefix {
			t.Errorf("second Sum after %d bytes = %s, want %s", cut, got, prefix)
		}
		h.Write(data[cut:])
		if got := h.Sum(); got != want || h.Size() != int64(len(data)) {
			t.Errorf("Sum after %d bytes, Sum, then the rest = %s (size %d), want %s (%d)", cut, got, h.Size(), want, len(data))
		}
		h.Reset()
		if got := h.Sum(); got.String() != emptyDigest || h.Size() != 0 {
			t.Errorf("Sum after Reset = %s (size %d), want the empty file's %s (0)", got, h.Size(), emptyDigest)
		}
		h.Write(data)
		if got := h.Sum(); got != want {
			t.Errorf("Sum after Reset and the whole data = %s, want %s", got, want)
		}
	}
}

type failingReader struct{ n int }

var errDisk = errors.New("disk on fire")

func (r *failingReader) Read(p []byte) (int, error) {
	if r.n == 0 {
		return 0, errDisk
	}
	k := min(len(p), r.n)
	clear(p[:k])
	r.n -= k
	return k, nil
}

func TestSumReadError(t *testing.T) {
	d, n, err := Sum(&failingReader{n: 5000})
	if !errors.Is(err, errDisk) || !strings.HasPrefix(err.Error(), "verity: read: ") || n != 5000 || d != (Digest{}) {
		t.Errorf("Sum(a reader failing after 5000 bytes) = %s, %d, %v; want zero, 5000, a wrapped %v", d, n, err, errDisk)
	}
}

// TestWriteAllocs: Write allocates nothing once the tree's levels exist,
// whatever the alignment of the writes.
func TestWriteAllocs(t *testing.T) {
	h := New()
	buf := make([]byte, 3*BlockSize+7)
	h.Write(make([]byte, 129*128*BlockSize)) // levels 0 to 3
	if allocs := testing.AllocsPerRun(100, func() { h.Write(buf) }); allocs != 0 {
		t.Errorf("Write allocates %v times a call, want 0", allocs)
	}
	if allocs := testing.AllocsPerRun(100, func() { h.Sum() }); allocs != 0 {
		t.Errorf("Sum allocates %v times a call, want 0", allocs)
	}
}

var _ io.Writer = (*Hasher)(nil)

// A Hasher from Get is reset, also when the one Put back had data.
func TestGetIsReset(t *testing.T) {
	empty := New().Sum()
	for i := 0; i < 3; i++ {
		h := Get()
		if h.Size() != 0 || h.Sum() != empty {
			t.Fatalf("Get #%d: size %d, digest %s; want a reset Hasher", i, h.Size(), h.Sum())
		}
		h.Write(make([]byte, 5000))
		Put(h)
	}
}
