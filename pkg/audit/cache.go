package audit

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sort"
	"sync"

	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/fsattr"
)

// Cache is the incremental audit's memory: for every regular file it read
// while the file was immutable, the file's identity and change stamps and
// its digests. A later audit trusts a digest instead of reading the file
// again only when the file is still immutable and its device, inode, size,
// mtime and ctime are all unchanged.
//
// Why that is sound: while the immutable flag is set nobody can write the
// file, and clearing the flag (or any write, chmod, chown, rename or link
// count change) moves ctime, which no system call can set back. What it
// trusts: the clock (ctime comes from it; setting the clock back to the
// old stamp before writing would forge it), the kernel, the disk (raw
// writes to the block device bypass ctime), and the cache file itself,
// which root can rewrite like any file (it is 0600 and checksummed against
// corruption, not against root). --full reads everything again.
type Cache struct {
	old   []byte // records from the file, sorted by (dev, ino)
	mu    sync.Mutex
	fresh []CacheEntry
}

// CacheEntry is one remembered file.
type CacheEntry struct {
	Dev, Ino           uint64
	Size, Mtime, Ctime int64
	HasMD5, HasSHA256  bool
	MD5                [16]byte
	SHA256             [32]byte
}

const (
	cacheMagic = "debseal-audit-cache 1\n"
	recSize    = 8*5 + 4 + 16 + 32 // dev ino size mtime ctime flags md5 sha256
)

// ErrCacheCorrupt: the cache file is damaged; it is ignored (a full audit
// follows) and rewritten.
var ErrCacheCorrupt = errors.New("audit: cache corrupt")

// CacheFile is where the cache is kept under a root.
const CacheFile = confined.Own + "/audit.cache"

// LoadCache reads the cache of a root (CacheFile, reached through the
// root: pkg/confined). A missing file gives an empty cache and no error; a
// damaged one an empty cache and an error wrapping ErrCacheCorrupt.
func LoadCache(root string) (*Cache, error) {
	c := &Cache{}
	r, err := confined.Open(root)
	if err != nil {
		return c, fmt.Errorf("audit: %w", err)
	}
	defer r.Close()
	path := r.Join(CacheFile)
	b, err := r.ReadFile(CacheFile)
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("audit: %w", err)
	}
	body, ok := bytes.CutPrefix(b, []byte(cacheMagic))
	if !ok || len(body) < 32 || (len(body)-32)%recSize != 0 {
		return c, fmt.Errorf("%w: %s: bad header or size", ErrCacheCorrupt, path)
	}
	recs, sum := body[:len(body)-32], body[len(body)-32:]
	if got := sha256.Sum256(b[:len(b)-32]); !bytes.Equal(got[:], sum) {
		return c, fmt.Errorf("%w: %s: checksum mismatch", ErrCacheCorrupt, path)
	}
	c.old = recs
	c.fresh = make([]CacheEntry, 0, c.Len()+c.Len()/8)
	return c, nil
}

func decode(r []byte) CacheEntry {
	le := binary.LittleEndian
	e := CacheEntry{Dev: le.Uint64(r), Ino: le.Uint64(r[8:]), Size: int64(le.Uint64(r[16:])),
		Mtime: int64(le.Uint64(r[24:])), Ctime: int64(le.Uint64(r[32:]))}
	fl := le.Uint32(r[40:])
	e.HasMD5, e.HasSHA256 = fl&1 != 0, fl&2 != 0
	copy(e.MD5[:], r[44:60])
	copy(e.SHA256[:], r[60:92])
	return e
}

func encode(dst []byte, e *CacheEntry) {
	le := binary.LittleEndian
	le.PutUint64(dst, e.Dev)
	le.PutUint64(dst[8:], e.Ino)
	le.PutUint64(dst[16:], uint64(e.Size))
	le.PutUint64(dst[24:], uint64(e.Mtime))
	le.PutUint64(dst[32:], uint64(e.Ctime))
	var fl uint32
	if e.HasMD5 {
		fl |= 1
	}
	if e.HasSHA256 {
		fl |= 2
	}
	le.PutUint32(dst[40:], fl)
	copy(dst[44:60], e.MD5[:])
	copy(dst[60:92], e.SHA256[:])
}

// Len is the number of remembered files.
func (c *Cache) Len() int { return len(c.old) / recSize }

// Lookup finds the entry of an inode.
func (c *Cache) Lookup(dev, ino uint64) (CacheEntry, bool) {
	if c == nil {
		return CacheEntry{}, false
	}
	n := len(c.old) / recSize
	le := binary.LittleEndian
	i := sort.Search(n, func(i int) bool {
		r := c.old[i*recSize:]
		d, in := le.Uint64(r), le.Uint64(r[8:])
		return d > dev || d == dev && in >= ino
	})
	if i < n {
		if e := decode(c.old[i*recSize:]); e.Dev == dev && e.Ino == ino {
			return e, true
		}
	}
	return CacheEntry{}, false
}

// Vouch returns the entry of a file when the cache vouches for its
// digests: it is immutable now, and its device, inode, size, mtime and
// ctime are those it had when it was read (see Cache). The check before
// an upgrade (pkg/seal) asks this too.
func (c *Cache) Vouch(info fsattr.Info) (CacheEntry, bool) {
	if imm, known := info.Immutable(); !known || !imm {
		return CacheEntry{}, false
	}
	e, ok := c.Lookup(info.Dev, info.Ino)
	if !ok || e.Size != info.Size || e.Mtime != info.Mtime || e.Ctime != info.Ctime {
		return CacheEntry{}, false
	}
	return e, true
}

// CacheSize is the size of a root's cache file: what loading it costs.
func CacheSize(root string) (int64, error) {
	r, err := confined.Open(root)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	defer r.Close()
	info, err := r.Lstat(CacheFile)
	if err != nil {
		return 0, fmt.Errorf("audit: %w", err)
	}
	return info.Size, nil
}

// Put remembers a file for the next run.
func (c *Cache) Put(e CacheEntry) {
	if c == nil {
		return
	}
	c.mu.Lock()
	c.fresh = append(c.fresh, e)
	c.mu.Unlock()
}

// Save writes what this run remembered to the root's CacheFile atomically
// and durably, mode 0600. After a
// full audit only this run's files are kept (a file no longer installed or
// no longer immutable drops out); after a partial one (keepOthers: some
// packages only) the records of every other file are kept as they were,
// so that auditing one package does not make the next full audit read
// everything again. A kept record can only ever match its own inode with
// the same ctime, so keeping one too many costs nothing but bytes.
func (c *Cache) Save(root string, keepOthers bool) error {
	if keepOthers {
		seen := make(map[[2]uint64]bool, len(c.fresh))
		for _, e := range c.fresh {
			seen[[2]uint64{e.Dev, e.Ino}] = true
		}
		for i := 0; i < c.Len(); i++ {
			if e := decode(c.old[i*recSize:]); !seen[[2]uint64{e.Dev, e.Ino}] {
				c.fresh = append(c.fresh, e)
			}
		}
	}
	sort.Slice(c.fresh, func(i, j int) bool {
		a, b := c.fresh[i], c.fresh[j]
		return a.Dev < b.Dev || a.Dev == b.Dev && a.Ino < b.Ino
	})
	buf := make([]byte, 0, len(cacheMagic)+len(c.fresh)*recSize+32)
	buf = append(buf, cacheMagic...)
	var rec [recSize]byte
	for i := range c.fresh {
		if i > 0 && c.fresh[i].Dev == c.fresh[i-1].Dev && c.fresh[i].Ino == c.fresh[i-1].Ino {
			continue // hard links and aliases: one inode, one record
		}
		encode(rec[:], &c.fresh[i])
		buf = append(buf, rec[:]...)
	}
	sum := sha256.Sum256(buf)
	buf = append(buf, sum[:]...)
	r, err := confined.Open(root)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer r.Close()
	if err := r.WriteFileAtomic(CacheFile, buf, 0o600); err != nil {
		return fmt.Errorf("audit: write cache: %w", err)
	}
	return nil
}
