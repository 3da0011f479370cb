package seal

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"sort"

	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
)

// stampsDir holds one record per sealed package instance (NAME_ARCH): the
// regular files of the package that a relock verified (against the
// md5sums, whose SHA-256 went into the manifest) and then locked, each as
// device, inode, size, mtime and ctime taken after the flag was set.
//
// It is how the check before an unlock (checkBeforeUnlock) tells, without
// reading a file, that it is still what debseal verified: the file is
// immutable now and its stamps are the recorded ones. While the flag is
// set nobody can write the file; clearing it, and every write, chmod,
// chown, rename or link, moves ctime, which no system call sets back. The
// trust model is the audit cache's (docs/audit.md): the clock, the
// kernel, the disk, and these files, which root can rewrite (0600,
// checksummed against corruption only).
//
// Records are per package so that a dpkg run reads those of the packages
// it unlocks, not the whole system's, and written without fsync: a lost
// or damaged record only means the files are read again.
const stampsDir = confined.Own + "/stamps"

// stamp is one verified and locked file.
type stamp struct {
	fsattr.Ident
	Size, Mtime, Ctime int64
}

// stampOf is what a record keeps of a file as lstat saw it.
func stampOf(info fsattr.Info) stamp {
	return stamp{Ident: info.Ident, Size: info.Size, Mtime: info.Mtime, Ctime: info.Ctime}
}

// matches reports whether info is a file the record vouches for: the
// same inode, immutable, with the stamps it had when it was recorded.
func (s stamp) matches(info fsattr.Info) bool {
	imm, known := info.Immutable()
	return known && imm && info.IsRegular() && stampOf(info) == s
}

// stamps are one package's records, by inode.
type stamps map[fsattr.Ident]stamp

const (
	stampsMagic   = "debseal-stamps 1\n"
	stampRecSize  = 8 * 5
	stampsSumSize = sha256.Size
)

func stampsName(p *dpkgdb.Package) string { return p.Name + "_" + p.Arch }

func encodeStamps(recs []stamp) []byte {
	sort.Slice(recs, func(i, j int) bool {
		a, b := recs[i], recs[j]
		return a.Dev < b.Dev || a.Dev == b.Dev && a.Ino < b.Ino
	})
	b := make([]byte, 0, len(stampsMagic)+len(recs)*stampRecSize+stampsSumSize)
	b = append(b, stampsMagic...)
	for _, r := range recs {
		b = binary.LittleEndian.AppendUint64(b, r.Dev)
		b = binary.LittleEndian.AppendUint64(b, r.Ino)
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Size))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Mtime))
		b = binary.LittleEndian.AppendUint64(b, uint64(r.Ctime))
	}
	sum := sha256.Sum256(b)
	return append(b, sum[:]...)
}

// errStampsCorrupt: a record that does not parse or fails its checksum;
// it is ignored (its files are read) and rewritten by the next relock.
var errStampsCorrupt = errors.New("seal: stamps record corrupt")

func decodeStamps(b []byte) (stamps, error) {
	body, ok := bytes.CutPrefix(b, []byte(stampsMagic))
	if !ok || len(body) < stampsSumSize || (len(body)-stampsSumSize)%stampRecSize != 0 {
		return nil, errStampsCorrupt
	}
	if sum := sha256.Sum256(b[:len(b)-stampsSumSize]); !bytes.Equal(sum[:], b[len(b)-stampsSumSize:]) {
		return nil, errStampsCorrupt
	}
	body = body[:len(body)-stampsSumSize]
	out := make(stamps, len(body)/stampRecSize)
	le := binary.LittleEndian
	for ; len(body) > 0; body = body[stampRecSize:] {
		s := stamp{Ident: fsattr.Ident{Dev: le.Uint64(body), Ino: le.Uint64(body[8:])},
			Size: int64(le.Uint64(body[16:])), Mtime: int64(le.Uint64(body[24:])), Ctime: int64(le.Uint64(body[32:]))}
		out[s.Ident] = s
	}
	return out, nil
}

// stampsReader reads the records of one root, the directory opened once.
type stampsReader struct {
	r    *confined.Root
	d    *fsattr.Dir // nil: no records at all
	seen map[string]stamps
}

func openStamps(root string) (*stampsReader, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	sr := &stampsReader{r: r, seen: map[string]stamps{}}
	d, err := r.OpenDir(stampsDir)
	switch {
	case err == nil:
		sr.d = d
	case !errors.Is(err, fs.ErrNotExist):
		r.Close()
		return nil, fmt.Errorf("seal: %w", err)
	}
	return sr, nil
}

func (sr *stampsReader) Close() {
	if sr.d != nil {
		sr.d.Close()
	}
	sr.r.Close()
}

// of returns p's record: empty when there is none or it is damaged (its
// files are then read: never a reason to fail).
func (sr *stampsReader) of(p *dpkgdb.Package) stamps {
	name := stampsName(p)
	if st, ok := sr.seen[name]; ok {
		return st
	}
	var st stamps
	if sr.d != nil {
		if b, err := sr.r.ReadFileIn(sr.d, name, 0); err == nil {
			st, _ = decodeStamps(b)
		}
	}
	sr.seen[name] = st
	return st
}

// saveStamps replaces the records of the packages in recs (an empty list
// leaves an empty record: nothing of the package is vouched for).
func saveStamps(root string, recs map[*dpkgdb.Package][]stamp) error {
	if len(recs) == 0 {
		return nil
	}
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.MkdirAll(stampsDir, 0o700); err != nil {
		return fmt.Errorf("seal: recording what was verified: %w", err)
	}
	var errs []error
	for p, rs := range recs {
		if err := r.ReplaceFile(stampsDir+"/"+stampsName(p), encodeStamps(rs), 0o600); err != nil {
			errs = append(errs, fmt.Errorf("seal: recording what was verified of %s: %w", p.ID(), err))
		}
	}
	return errors.Join(errs...)
}

// removeStamps deletes the records of package instances that are gone.
func removeStamps(root string, gone []PkgArch) error {
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	for _, k := range gone {
		err := r.Remove(stampsDir + "/" + k.Name + "_" + k.Arch)
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("seal: %w", err))
		}
	}
	return errors.Join(errs...)
}

// recordStamps replaces the record of each package End relocked (and
// could plan) with the files it vouches for now: those verified (by End,
// or by the check before the unlock when dpkg left them unchanged) and
// locked by this End, with their stamps after the lock; and those that
// were locked already, when their old record still matches them.
func (s *System) recordStamps(ctx context.Context, lock []*dpkgdb.Package, plan *Plan, sum *Summary, good map[*Target]bool) error {
	if len(lock) == 0 {
		return nil
	}
	sr, err := openStamps(s.Root)
	if err != nil {
		return err
	}
	defer sr.Close()
	byID := map[string]*dpkgdb.Package{}
	for _, p := range lock {
		if plan.Packages[p.ID()] == nil {
			byID[p.ID()] = p
		}
	}
	recs := map[*Target]stamp{}
	var fresh []*Target
	for _, o := range sum.Outcomes {
		t := o.Target
		switch {
		case o.Err != nil || !t.Info.IsRegular():
		case o.Changed:
			if good[t] {
				fresh = append(fresh, t) // its ctime moved with the flag: stat it again
			}
		default: // locked before this End: its record may still hold
			for _, ow := range t.Owners {
				if p := byID[ow.Pkg]; p != nil {
					if st, ok := sr.of(p)[t.Info.Ident]; ok && st.matches(t.Info) {
						recs[t] = st
						break
					}
				}
			}
		}
	}
	paths := make([]string, len(fresh))
	for i, t := range fresh {
		paths[i] = t.Path()
	}
	infos, errs := s.planner(false).statAll(ctx, paths)
	for i, t := range fresh {
		if info := infos[i]; errs[i] == nil && info.Ident == t.Info.Ident {
			if imm, known := info.Immutable(); known && imm {
				recs[t] = stampOf(info)
			}
		}
	}
	out := make(map[*dpkgdb.Package][]stamp, len(byID))
	for _, p := range byID {
		out[p] = nil
	}
	for t, st := range recs {
		added := map[*dpkgdb.Package]bool{} // a hard link within one package: one record
		for _, ow := range t.Owners {
			if p := byID[ow.Pkg]; p != nil && !added[p] {
				added[p] = true
				out[p] = append(out[p], st)
			}
		}
	}
	return saveStamps(s.Root, out)
}

// RecordVerified replaces the records of packages with the files that
// were just verified against their md5sums, as lstat saw them before the
// read (lock does this while it records the manifests it reads every
// file for). Only files that were immutable then are recorded: nobody
// could change them between that lstat and the read without moving
// their ctime.
func RecordVerified(root string, files map[*dpkgdb.Package][]fsattr.Info) error {
	recs := make(map[*dpkgdb.Package][]stamp, len(files))
	for p, infos := range files {
		var rs []stamp
		for _, info := range infos {
			if imm, known := info.Immutable(); known && imm && info.IsRegular() {
				rs = append(rs, stampOf(info))
			}
		}
		recs[p] = rs
	}
	return saveStamps(root, recs)
}
