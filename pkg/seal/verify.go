package seal

import (
	"context"
	"crypto/md5"
	"fmt"
	"io"

	"github.com/debseal/debseal/pkg/dpkgdb"
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
}

// Verify hashes every target (in parallel, by directory) and compares the
// MD5 with the md5sums of each package that lists it.
func (pl *Planner) Verify(ctx context.Context, targets []*Target, prog Progress) *VerifyResult {
	if prog == nil {
		prog = NoProgress
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
	}
	verdicts := make([]verdict, len(targets))
	groups := map[string][]int{}
	var dirs []string
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
	}
	prog.Start("verifying", len(targets))
	forEachDir(ctx, pl.FS, dirs, pl.workers(), func(dir string, d Dir, derr error) {
		for _, i := range groups[dir] {
			v := &verdicts[i]
			t := targets[i]
			if derr != nil {
				v.err = derr
				continue
			}
			got, err := hashMD5(d, t)
			if err != nil {
				v.err = err
				continue
			}
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
		}
	}
	return res
}

func hashMD5(d Dir, t *Target) ([16]byte, error) {
	var sum [16]byte
	f, err := d.Open(t.Name, t.Info.Ident)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := md5.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("seal: read %s: %w", t.Path(), err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

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
