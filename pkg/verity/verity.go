// Package verity computes fs-verity file digests in userspace: the value
// the kernel's FS_IOC_MEASURE_VERITY returns (and `fsverity digest`
// prints) for a file on which fs-verity was enabled with SHA-256, 4096-byte
// Merkle tree blocks and no salt.
//
// debseal records the expected fs-verity digest of each packaged file in
// its manifests and compares it with what FS_IOC_MEASURE_VERITY reports
// for the installed file; this package is the first half of that. It only
// computes: it does not enable fs-verity, call ioctls or read files by
// name, and it supports no other hash algorithm, block size or salt.
//
// The digest is defined in the kernel's
// Documentation/filesystems/fsverity.rst ("File digest computation",
// "Merkle tree"): the file is cut into 4096-byte blocks, the last one
// zero-padded, and each block is hashed; the hashes, concatenated and
// zero-padded to whole blocks, form the next level, hashed in turn until a
// level fits in one block, whose hash is the root hash (all zero for an
// empty file). The file digest is the SHA-256 of a 256-byte
// fsverity_descriptor holding the root hash and the file size.
package verity

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"sync"
)

// BlockSize is the size of the data and Merkle tree blocks: 4096 bytes,
// what the kernel requires on the page-sized systems debseal targets.
const BlockSize = 4096

const (
	hashSize       = sha256.Size
	hashesPerBlock = BlockSize / hashSize // 128: the tree's fan-out
	logBlockSize   = 12                   // log2(BlockSize)
	hashAlgSHA256  = 1                    // FS_VERITY_HASH_ALG_SHA256
	descriptorSize = 256                  // sizeof(struct fsverity_descriptor)
)

// Digest is an fs-verity file digest (SHA-256).
type Digest [32]byte

// String returns the digest as 64 lowercase hex digits, the form
// `fsverity digest --compact` prints.
func (d Digest) String() string { return hex.EncodeToString(d[:]) }

// ParseDigest parses the 64 lowercase hex digits String returns. Upper
// case is refused so that a digest has a single spelling in a manifest.
func ParseDigest(s string) (Digest, error) {
	var d Digest
	if len(s) != 2*len(d) {
		return Digest{}, fmt.Errorf("verity: digest %q: %d characters, want %d hex digits", s, len(s), 2*len(d))
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return Digest{}, fmt.Errorf("verity: digest %q: %q at offset %d is not a lowercase hex digit", s, c, i)
		}
	}
	if _, err := hex.Decode(d[:], []byte(s)); err != nil {
		return Digest{}, fmt.Errorf("verity: digest %q: %w", s, err)
	}
	return d, nil
}

// level is the unfinished block of one level of the tree: level 0 holds
// file data, level k > 0 the hashes of level k-1's blocks.
type level struct {
	buf    [BlockSize]byte
	n      int   // bytes of buf filled; always < BlockSize between calls
	blocks int64 // full blocks of this level already hashed into level k+1
}

// Hasher computes the fs-verity digest of the bytes written to it, in one
// pass and without knowing their length in advance. A full block of any
// level is hashed as soon as it is complete, so a Hasher holds one
// unfinished block per level of the tree: 4 KiB for a file under 4 KiB,
// 12 KiB for one under 64 MiB, 36 KiB for the largest.
//
// The zero value is ready to use. A Hasher is not safe for concurrent use.
type Hasher struct {
	levels []*level // allocated as the tree grows; kept by Reset
	size   int64
}

// New returns a Hasher for an empty file.
func New() *Hasher { return &Hasher{} }

// Write adds p to the data. It never fails.
func (h *Hasher) Write(p []byte) (int, error) {
	n := len(p)
	if n == 0 {
		return 0, nil
	}
	h.size += int64(n)
	d := h.level(0)
	if d.n > 0 {
		c := copy(d.buf[d.n:], p)
		d.n += c
		p = p[c:]
		if d.n < BlockSize {
			return n, nil
		}
		d.n = 0
		h.push(0, sha256.Sum256(d.buf[:]))
	}
	// Whole blocks are hashed where they are, without a copy.
	for len(p) >= BlockSize {
		h.push(0, sha256.Sum256(p[:BlockSize]))
		p = p[BlockSize:]
	}
	d.n = copy(d.buf[:], p)
	return n, nil
}

// level returns level k, allocating it the first time the tree reaches it.
func (h *Hasher) level(k int) *level {
	if k == len(h.levels) {
		h.levels = append(h.levels, new(level))
	}
	return h.levels[k]
}

// push records sum, the hash of a full block of level k, in level k+1,
// hashing that level's block in turn when it fills up.
func (h *Hasher) push(k int, sum [hashSize]byte) {
	for {
		h.levels[k].blocks++
		next := h.level(k + 1)
		copy(next.buf[next.n:], sum[:])
		next.n += hashSize
		if next.n < BlockSize {
			return
		}
		next.n = 0
		sum = sha256.Sum256(next.buf[:])
		k++
	}
}

// Size returns the number of bytes written since New or Reset.
func (h *Hasher) Size() int64 { return h.size }

// Reset makes h a Hasher for an empty file again, keeping its buffers.
func (h *Hasher) Reset() {
	for _, l := range h.levels {
		l.n, l.blocks = 0, 0
	}
	h.size = 0
}

// Sum returns the fs-verity digest of the bytes written so far. It does
// not change h: more may be written afterwards, and a later Sum covers
// everything written since New or Reset.
func (h *Hasher) Sum() Digest {
	root := h.rootHash()
	// struct fsverity_descriptor: version, hash_algorithm, log_blocksize,
	// salt_size, 4 reserved bytes (sig_size, left zero), le64 data_size,
	// root_hash[64], salt[32], 144 reserved bytes.
	var desc [descriptorSize]byte
	desc[0] = 1
	desc[1] = hashAlgSHA256
	desc[2] = logBlockSize
	binary.LittleEndian.PutUint64(desc[8:16], uint64(h.size))
	copy(desc[16:16+64], root[:])
	return sha256.Sum256(desc[:])
}

// rootHash finishes the tree on copies of the unfinished blocks: each
// level's last block, zero-padded, is hashed into a copy of the next
// level's, until the level that has a single block.
func (h *Hasher) rootHash() [hashSize]byte {
	if h.size == 0 {
		return [hashSize]byte{}
	}
	var block [BlockSize]byte
	var carry [hashSize]byte // hash of level k-1's last block
	hasCarry := false
	for k := 0; ; k++ {
		l := h.levels[k]
		n := copy(block[:], l.buf[:l.n])
		if hasCarry {
			// A hash level's unfinished block has room for one more
			// hash: it is hashed as soon as it is full.
			n += copy(block[n:], carry[:])
		}
		blocks := l.blocks
		if n > 0 {
			blocks++
		}
		if blocks == 1 {
			if n == 0 {
				// The level's only block is already hashed: its hash
				// is the only one in the level above.
				return [hashSize]byte(h.levels[k+1].buf[:hashSize])
			}
			clear(block[n:])
			return sha256.Sum256(block[:])
		}
		// More than one block here, so level k+1 exists (it holds the
		// hashes of the blocks already full).
		hasCarry = n > 0
		if hasCarry {
			clear(block[n:])
			carry = sha256.Sum256(block[:])
		}
	}
}

// TreeSize returns the size of the Merkle tree fs-verity stores for a
// file of n bytes: every level, each a whole number of blocks; 0 for a
// file of at most one block, whose root hash is its block's hash. It does
// not count the descriptor or the filesystem's own alignment of the tree.
func TreeSize(n int64) int64 {
	if n <= BlockSize {
		return 0
	}
	blocks := (n-1)/BlockSize + 1
	var total int64
	for blocks > 1 {
		blocks = (blocks-1)/hashesPerBlock + 1
		total += blocks
	}
	return total * BlockSize
}

// summer is what Sum needs for one reader. Sum runs once per packaged
// file, mostly small ones: allocating a Hasher's blocks and a read buffer
// for each costs more CPU than hashing them (see BenchmarkSum), so they
// are reused.
type summer struct {
	h   Hasher
	buf [64 << 10]byte
}

var summers = sync.Pool{New: func() any { return new(summer) }}

// Sum returns the fs-verity digest of everything r yields, and its size.
func Sum(r io.Reader) (Digest, int64, error) {
	s := summers.Get().(*summer)
	defer summers.Put(s)
	s.h.Reset()
	// A read loop rather than io.Copy, which would allocate its own
	// buffer for each *os.File.
	for {
		n, err := r.Read(s.buf[:])
		s.h.Write(s.buf[:n])
		if err == io.EOF {
			return s.h.Sum(), s.h.Size(), nil
		}
		if err != nil {
			return Digest{}, s.h.Size(), fmt.Errorf("verity: read: %w", err)
		}
	}
}

// hashers keep Hashers for Get: a fresh one allocates a block per level,
// which for small files costs more than hashing them.
var hashers = sync.Pool{New: func() any { return New() }}

// Get returns a reset Hasher from a pool; Put gives it back. Callers that
// hash many files (one per package file) use these instead of New.
func Get() *Hasher {
	h := hashers.Get().(*Hasher)
	h.Reset()
	return h
}

// Put returns h to Get's pool; h must not be used afterwards.
func Put(h *Hasher) { hashers.Put(h) }
