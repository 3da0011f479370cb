package audit

import (
	"crypto/md5"
	"fmt"
	"math/rand"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/debseal/debseal/pkg/fsattr"
)

// The lanes must give exactly crypto/md5's digests, for sizes around every
// boundary that matters (the lane threshold, MD5's 64-byte blocks, the
// server's 32 KiB blocks, the worker's 128 KiB reads) and with many files
// in flight at once, as in an audit.
func TestMD5LanesMatchCryptoMD5(t *testing.T) {
	lanes := newMD5Lanes()
	if lanes == nil {
		t.Skip("no AVX2 (or DEBSEAL_AUDIT_SIMD=0): the audit uses crypto/md5 only")
	}
	defer lanes.Close()
	dir := t.TempDir()
	rng := rand.New(rand.NewSource(1))
	sizes := []int{0, 1, 63, 64, 65, simdMinSize - 1, simdMinSize, simdMinSize + 1, 32<<10 - 1, 32 << 10, 32<<10 + 55,
		128<<10 - 1, 128 << 10, 128<<10 + 1, 1<<20 + 7}
	for i := 0; i < 40; i++ {
		sizes = append(sizes, simdMinSize+rng.Intn(400<<10))
	}
	want := map[string][16]byte{}
	for i, n := range sizes {
		b := make([]byte, n)
		rng.Read(b)
		name := fmt.Sprintf("f%02d", i)
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
		want[name] = md5.Sum(b)
	}
	root, err := fsattr.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	sh := &shared{lanes: lanes}
	var wg sync.WaitGroup
	var mu sync.Mutex
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			wk := &worker{sh: sh, buf: make([]byte, 128<<10)}
			defer func() {
				if wk.lane != nil {
					wk.lane.Close()
				}
			}()
			d, err := root.OpenDir("/")
			if err != nil {
				t.Error(err)
				return
			}
			defer d.Close()
			for i := w; i < len(sizes); i += 16 {
				name := fmt.Sprintf("f%02d", i)
				// Half by name, half through an O_PATH handle, as the
				// audit does for files it expects to read.
				var pf *fsattr.PathFile
				var info fsattr.Info
				if i%2 == 0 {
					info, err = d.Lstat(name)
				} else if pf, err = d.OpenPath(name); err == nil {
					info = pf.Info
				}
				if err != nil {
					t.Error(err)
					continue
				}
				_, got, err := wk.read(d, pf, name, info, false, true)
				if pf != nil {
					pf.Close()
				}
				mu.Lock()
				if err != nil || got != want[name] {
					t.Errorf("%s (%d bytes): md5 %x, %v; want %x", name, sizes[i], got, err, want[name])
				}
				mu.Unlock()
			}
		}(w)
	}
	wg.Wait()
}
