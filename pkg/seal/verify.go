package seal

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"sync"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/debseal/debseal/pkg/verity"
)

// Mismatch is a target whose content differs from what its package's
// md5sums say.
type Mismatch struct {
	Target    *Target
	Owner     Owner // the owner whose md5sums entry disagrees
	Want, Got [16]byte
}

func (m Mismatch) String() string {
	return fmt.Sprintf("%s (package %s): md5 %x, md5sums says %x", m.Owner.Real, m.Owner.Pkg, m.Got, m.Want)
}

// VerifyResult splits targets by what their content says.
type VerifyResult struct {
	OK         []*Target  // content matches every owner's md5sums entry
	Unverified []*Target  // no owner has an md5sums entry for it
	Mismatches []Mismatch // content differs: never to be sealed silently
	Errors     []error    // could not be read, or bad md5sums lines
	// Digests holds what VerifyDigests read of each OK target, so that
	// the manifest recorded next need not read the files again.
	Digests Digests
}

// FileDigest is what one read of a regular file found: its digests, and
// the size and mtime it had (a later use checks they are unchanged).
type FileDigest struct {
	Size, Mtime int64
	MD5         [16]byte
	SHA256      [32]byte
	HasVerity   bool
	Verity      [32]byte // the fs-verity digest, when HasVerity
}

// Digests are file digests by inode.
type Digests map[fsattr.Ident]FileDigest

// Lookup returns the digest of an inode if it was read with this size and
// mtime.
func (d Digests) Lookup(id fsattr.Ident, size, mtime int64) (FileDigest, bool) {
	fd, ok := d[id]
	return fd, ok && fd.Size == size && fd.Mtime == mtime
}

// Verify hashes every target (in parallel, by directory) and compares the
// MD5 with the md5sums of each package that lists it.
func (pl *Planner) Verify(ctx context.Context, targets []*Target, prog progress.Meter) *VerifyResult {
	return pl.verify(ctx, targets, prog, false)
}

// VerifyDigests is Verify that also computes each file's SHA-256 in the
// same read and returns both digests of the files that matched.
func (pl *Planner) VerifyDigests(ctx context.Context, targets []*Target, prog progress.Meter) *VerifyResult {
	return pl.verify(ctx, targets, prog, true)
}

func (pl *Planner) verify(ctx context.Context, targets []*Target, prog progress.Meter, withSHA bool) *VerifyResult {
	if prog == nil {
		prog = progress.None
	}
	res := &VerifyResult{}
	sums := map[string]map[string][16]byte{}
	for _, t := range targets {
		for _, o := range t.Owners {
			if _, ok := sums[o.Pkg]; ok {
				continue
			}
			sums[o.Pkg] = map[string][16]byte{}
			for _, p := range pl.DB.Lookup(o.Pkg) {
				if p.ID() != o.Pkg {
					continue
				}
				m, bad, err := pl.DB.MD5Sums(p)
				res.Errors = append(res.Errors, bad...)
				if err != nil {
					res.Errors = append(res.Errors, err)
				}
				sums[o.Pkg] = m
			}
		}
	}
	type verdict struct {
		ok, covered bool
		mismatch    Mismatch
		err         error
		sha         [32]byte
		verity      [32]byte
	}
	verdicts := make([]verdict, len(targets))
	groups := map[string][]int{}
	var dirs []string
	hashed := 0 // the files read: the progress total
	for i, t := range targets {
		covered := false
		for _, o := range t.Owners {
			if _, ok := sums[o.Pkg][o.Path]; ok {
				covered = true
			}
		}
		verdicts[i].covered = covered
		if !covered || !t.Info.IsRegular() {
			continue
		}
		if _, ok := groups[t.Dir]; !ok {
			dirs = append(dirs, t.Dir)
		}
		groups[t.Dir] = append(groups[t.Dir], i)
		hashed++
	}
	prog.Start("verifying", progress.Files, hashed)
	forEachDir(ctx, pl.FS, dirs, pl.workers(), func(dir string, d Dir, derr error) {
		for _, i := range groups[dir] {
			v := &verdicts[i]
			t := targets[i]
			if derr != nil {
				v.err = derr
				continue
			}
			got, sha, ver, err := hashFile(d, t, withSHA, withSHA)
			if err != nil {
				v.err = err
				continue
			}
			v.sha, v.verity = sha, ver
			v.ok = true
			for _, o := range t.Owners {
				if want, ok := sums[o.Pkg][o.Path]; ok && want != got {
					v.ok = false
					v.mismatch = Mismatch{Target: t, Owner: o, Want: want, Got: got}
					break
				}
			}
		}
		prog.Add(len(groups[dir]))
	})
	prog.Done()
	for i, t := range targets {
		v := verdicts[i]
		switch {
		case !v.covered || !t.Info.IsRegular():
			res.Unverified = append(res.Unverified, t)
		case v.err != nil:
			res.Errors = append(res.Errors, v.err)
		case !v.ok:
			res.Mismatches = append(res.Mismatches, v.mismatch)
		default:
			res.OK = append(res.OK, t)
			if withSHA {
				if res.Digests == nil {
					res.Digests = Digests{}
				}
				// Every owner agreed with this MD5, so any one's will do.
				md := sums[t.Owners[0].Pkg][t.Owners[0].Path]
				for _, o := range t.Owners {
					if m, ok := sums[o.Pkg][o.Path]; ok {
						md = m
						break
					}
				}
				res.Digests[t.Info.Ident] = FileDigest{Size: t.Info.Size, Mtime: t.Info.Mtime, MD5: md, SHA256: v.sha,
					HasVerity: true, Verity: v.verity}
			}
		}
	}
	return res
}

// hashFile reads a target once for its MD5 and, with withSHA, its SHA-256,
// with withVerity its fs-verity digest (pkg/verity),
// through a pooled buffer: io.Copy from an *os.File allocated 32 KB per
// file, and a relock hashes every file dpkg wrote (the allocations and
// their zeroing were a tenth of a release upgrade's hook CPU).
func hashFile(d Dir, t *Target, withSHA, withVerity bool) (md [16]byte, sha [32]byte, ver [32]byte, err error) {
	f, err := d.Open(t.Name, t.Info.Ident)
	if err != nil {
		return md, sha, ver, err
	}
	defer f.Close()
	hm := md5.New()
	var hs hash.Hash
	if withSHA {
		hs = sha256.New()
	}
	var hv *verity.Hasher
	if withVerity {
		hv = verity.Get()
		defer verity.Put(hv)
	}
	bp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bp)
	buf := *bp
	for {
		n, err := f.Read(buf)
		if n > 0 {
			hm.Write(buf[:n])
			if hs != nil {
				hs.Write(buf[:n])
			}
			if hv != nil {
				hv.Write(buf[:n])
			}
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return md, sha, ver, fmt.Errorf("seal: read %s: %w", t.Path(), err)
		}
	}
	hm.Sum(md[:0])
	if hs != nil {
		hs.Sum(sha[:0])
	}
	if hv != nil {
		ver = hv.Sum()
	}
	return md, sha, ver, nil
}

// hashBufs are hashFile's read buffers: 64 KB, few read calls per file
// and few fresh pages per worker.
var hashBufs = sync.Pool{New: func() any {
	b := make([]byte, 64<<10)
	return &b
}}

// Lookup returns the database packages for IDs, in order, and the IDs that
// name no package.
func Lookup(db *dpkgdb.DB, ids []string) (pkgs []*dpkgdb.Package, unknown []string) {
	for _, id := range ids {
		ps := db.Lookup(id)
		if len(ps) == 0 {
			unknown = append(unknown, id)
		}
		pkgs = append(pkgs, ps...)
	}
	return pkgs, unknown
}
