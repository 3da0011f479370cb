package verity

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"math/rand/v2"
	"testing"
)

// refTree is the Merkle tree built the plain way, one whole level at a
// time as fsverity.rst describes it: the root hash and the levels, data
// side first, each zero-padded to whole blocks.
func refTree(data []byte) (root [32]byte, levels [][]byte) {
	if len(data) == 0 {
		return root, nil
	}
	cur := padBlocks(data)
	for len(cur) > BlockSize {
		var next []byte
		for off := 0; off < len(cur); off += BlockSize {
			sum := sha256.Sum256(cur[off : off+BlockSize])
			next = append(next, sum[:]...)
		}
		cur = padBlocks(next)
		levels = append(levels, cur)
	}
	return sha256.Sum256(cur), levels
}

func padBlocks(b []byte) []byte {
	if r := len(b) % BlockSize; r != 0 {
		b = append(b[:len(b):len(b)], make([]byte, BlockSize-r)...)
	}
	return b
}

// refDescriptor mirrors struct fsverity_descriptor of linux/fsverity.h.
type refDescriptor struct {
	Version       uint8
	HashAlgorithm uint8
	LogBlocksize  uint8
	SaltSize      uint8
	Reserved0x04  uint32
	DataSize      uint64
	RootHash      [64]byte
	Salt          [32]byte
	Reserved      [144]byte
}

func refDigest(data []byte) (Digest, [][]byte) {
	root, levels := refTree(data)
	desc := refDescriptor{Version: 1, HashAlgorithm: 1, LogBlocksize: 12, DataSize: uint64(len(data))}
	copy(desc.RootHash[:], root[:])
	var buf bytes.Buffer
	if err := binary.Write(&buf, binary.LittleEndian, &desc); err != nil {
		panic(err)
	}
	if buf.Len() != 256 {
		panic("fsverity_descriptor is 256 bytes")
	}
	return sha256.Sum256(buf.Bytes()), levels
}

// maxExtra bounds the generated tail to 1.5 MiB, three first-level hash
// blocks: the fuzzer reaches trees with a second hash level, and each run
// stays fast. (Deeper trees need 64 MiB: TestMatchesFsverity and
// TestVectors have one.)
const maxExtra = 3 * hashesPerBlock * BlockSize

// FuzzHasher checks the streaming Hasher against the reference: the data
// is the fuzz input followed by extra%maxExtra bytes drawn from a
// generator seeded with it, written in chunks whose sizes come from cuts.
func FuzzHasher(f *testing.F) {
	for _, extra := range []uint32{0, 1, 4095, 4096, 4097, 4096 + 4000, 128 * 4096, 128*4096 + 1, 129 * 4096,
		130*4096 + 2000, 256*4096 + 1} {
		f.Add([]byte{}, extra, []byte{})
		f.Add([]byte("fs-verity"), extra, []byte{0, 1, 0x7f, 0x80, 0x81, 0xff})
	}
	f.Add(make([]byte, 4096), uint32(0), []byte{0x90})
	f.Fuzz(func(t *testing.T, head []byte, extra uint32, cuts []byte) {
		data := append(head[:len(head):len(head)], make([]byte, int(extra%maxExtra))...)
		rand.NewChaCha8(sha256.Sum256(head)).Read(data[len(head):])
		want, levels := refDigest(data)

		// (1) One Write equals the reference, and so does Sum.
		h := New()
		h.Write(data)
		if got := h.Sum(); got != want {
			t.Fatalf("Hasher of %d bytes in one Write = %s, reference %s", len(data), got, want)
		}
		if got, n, err := Sum(bytes.NewReader(data)); got != want || n != int64(len(data)) || err != nil {
			t.Fatalf("Sum of %d bytes = %s, %d, %v; reference %s", len(data), got, n, err, want)
		}

		// (2) Chunks of the sizes cuts gives (a byte under 0x80 is that
		// many bytes, above it that many times 4099: several blocks,
		// never aligned), cycling through cuts; the digest of each
		// prefix after the first chunk is checked too.
		h = New()
		written, pass := 0, 0
		for i := 0; written < len(data); i++ {
			k := len(data) - written
			if len(cuts) > 0 {
				if i%len(cuts) == 0 {
					if i > 0 && written == pass {
						break // a whole cycle of zero-sized chunks
					}
					pass = written
				}
				c := int(cuts[i%len(cuts)])
				if c >= 0x80 {
					c = (c - 0x80) * 4099
				}
				k = min(k, c)
			}
			h.Write(data[written : written+k])
			written += k
			// (3) Size counts every byte written.
			if h.Size() != int64(written) {
				t.Fatalf("Size after writing %d bytes = %d", written, h.Size())
			}
			if i == 0 {
				if prefix, _ := refDigest(data[:written]); h.Sum() != prefix {
					t.Fatalf("Sum after a first chunk of %d bytes = %s, reference %s", written, h.Sum(), prefix)
				}
			}
		}
		h.Write(data[written:])
		if got := h.Sum(); got != want || h.Size() != int64(len(data)) {
			t.Fatalf("Hasher of %d bytes in chunks from cuts %v = %s (size %d), reference %s", len(data), cuts, got, h.Size(), want)
		}

		var tree int64
		for _, l := range levels {
			tree += int64(len(l))
		}
		if got := TreeSize(int64(len(data))); got != tree {
			t.Fatalf("TreeSize(%d) = %d, reference tree has %d bytes in %d levels", len(data), got, tree, len(levels))
		}
	})
}
