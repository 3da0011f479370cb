package audit

import (
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
	"syscall"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/policy"
)

const (
	sIFMT  = 0o170000
	sIFREG = 0o100000
	sIFDIR = 0o040000
	sIFLNK = 0o120000
	sIFCHR = 0o020000
	sIFBLK = 0o060000
	sIFIFO = 0o010000
)

func typeOf(mode uint32) manifest.Type {
	switch mode & sIFMT {
	case sIFREG:
		return manifest.TypeFile
	case sIFDIR:
		return manifest.TypeDir
	case sIFLNK:
		return manifest.TypeSymlink
	case sIFCHR:
		return manifest.TypeChar
	case sIFBLK:
		return manifest.TypeBlock
	case sIFIFO:
		return manifest.TypeFIFO
	}
	return manifest.Type('s') // a socket: no package ships one
}

func typeName(t manifest.Type) string {
	if t == 's' {
		return "socket"
	}
	return t.String()
}

// digests of one regular file, as far as they were needed.
type digests struct {
	md5            [16]byte
	sha256         [32]byte
	hasMD5, hasSHA bool
}

// check examines one listed path and returns its findings.
// info and err are the path's lstat (err: the directory's error when it
// could not be opened); pf, when not nil, is the path's O_PATH handle
// that info came from, for reading it.
func (w *worker) check(pj *pkgJob, f *fileJob, d *fsattr.Dir, pf *fsattr.PathFile, info fsattr.Info, err error) []Finding {
	a, p := w.a, pj.p
	conf, isConf := pj.conf[f.listed]
	_, anyConf := w.sh.confPaths[f.real]
	base := Finding{Package: p.ID(), Path: f.listed, Real: f.real, Conffile: anyConf}
	name := path.Base(f.real)
	if isConf && !a.Opts.Conffiles {
		// Skipped, as debsums skips conffiles; only its flags matter (an
		// immutable conffile is as suspicious as any other).
		if err == nil {
			w.lockState(pj, f, d, pf, name, info, true)
		}
		return nil
	}
	if err != nil {
		fd := base
		fd.Dpkg = "missing  "
		var errno syscall.Errno
		if !errors.As(err, &errno) || errno != syscall.ENOENT {
			fd.Err = err
		}
		switch {
		case errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR):
			fd.Kind = Missing
			if pj.filtered(f.listed) {
				fd.Kind = Excluded
			}
		default:
			fd.Kind = Unreadable
		}
		return []Finding{fd}
	}
	var out []Finding
	add := func(k Kind, expected, actual, source string, err error) {
		fd := base
		fd.Kind, fd.Expected, fd.Actual, fd.Source, fd.Err = k, expected, actual, source, err
		out = append(out, fd)
	}

	var me *manifest.Entry
	if pj.man != nil {
		me, _ = pj.man.Lookup(f.listed)
	}
	md5Want, inMD5 := pj.md5[f.listed]
	actual := typeOf(info.Mode)

	// Type: the manifest knows it; without one, a path with a digest must
	// be a regular file (dpkg's own heuristic).
	wantType, typeSrc := manifest.Type(0), ""
	switch {
	case me != nil:
		wantType, typeSrc = me.Type, "manifest"
	case inMD5:
		wantType, typeSrc = manifest.TypeFile, "md5sums"
	case isConf:
		wantType, typeSrc = manifest.TypeFile, "status"
	}
	if wantType != 0 && wantType != actual {
		add(FileType, typeName(wantType), typeName(actual), typeSrc, nil)
	}

	// Mode and owner: a statoverride wins over the package's own values.
	if actual != manifest.TypeSymlink {
		w.checkOwnership(f, me, wantType == actual, info, add)
	}
	if me != nil && me.Type == manifest.TypeSymlink && actual == manifest.TypeSymlink {
		var target string
		var err error
		if pf != nil {
			target, err = pf.Readlink()
		} else {
			target, err = d.Readlink(name)
		}
		switch {
		case err != nil:
			add(Unreadable, "", "", "", err)
		case target != me.Link:
			add(LinkTarget, me.Link, target, "manifest", nil)
		}
	}

	// Content.
	dpkgHash, hashKnown := "", false
	if s, ok := pj.md5[f.real]; ok {
		dpkgHash, hashKnown = hexs(s[:]), true
	} else if h, ok := w.sh.confPaths[f.real]; ok {
		dpkgHash, hashKnown = h, true
	}
	var confWant [16]byte
	confOK := isConf && decodeMD5(conf.Hash, &confWant)
	needSHA := me != nil && me.HasSHA256 && actual == manifest.TypeFile
	wantMD5 := inMD5 && !isConf || confOK || hashKnown && isMD5Hex(dpkgHash)
	digest, readErr := digests{}, error(nil)
	if actual == manifest.TypeFile && me != nil {
		var measured bool
		measured, digest = w.measure(d, pf, name, info, me, add)
		if measured && (!needSHA || digest.hasSHA) && (!wantMD5 || digest.hasMD5) {
			needSHA, wantMD5 = false, false // the kernel vouched for every byte
		}
	}
	if actual == manifest.TypeFile && (needSHA || wantMD5) {
		digest, readErr = w.digest(d, pf, name, info, me, needSHA, wantMD5)
		if readErr != nil {
			add(Unreadable, "", "", "", readErr)
		}
	}
	if readErr == nil && actual == manifest.TypeFile {
		if needSHA && digest.hasSHA && digest.sha256 != me.SHA256 {
			add(SHA256, hexs(me.SHA256[:]), hexs(digest.sha256[:]), "manifest", nil)
		}
		if inMD5 && !isConf && digest.hasMD5 && digest.md5 != md5Want {
			add(MD5, hexs(md5Want[:]), hexs(digest.md5[:]), "md5sums", nil)
		}
		if confOK && digest.hasMD5 && digest.md5 != confWant {
			add(Conffile, conf.Hash, hexs(digest.md5[:]), "status", nil)
		}
	}

	// What dpkg --verify says about this path (src/main/verify.c): with a
	// known digest, 'M' when it is not a regular file and '5' when the MD5
	// differs ('?' when it could not be read); nothing without one.
	dpkg := ""
	if hashKnown {
		mode, dig := byte('?'), byte('?') // dpkg never marks the mode check passed
		if actual != manifest.TypeFile {
			mode = 'M' // dpkg would also hash what a symlink points to; debseal never follows one
		} else if readErr == nil && digest.hasMD5 {
			dig = '5'
			if hexs(digest.md5[:]) == dpkgHash {
				dig = '.'
			}
		}
		if mode == 'M' || dig != '.' {
			dpkg = "?" + string(mode) + string(dig) + "??????"
			if len(out) == 0 {
				// dpkg's expectation is not one debseal holds itself (a
				// conffile hash of another package, "newconffile"): report
				// it all the same, so debseal never misses what dpkg sees.
				switch {
				case mode == 'M':
					add(FileType, typeName(manifest.TypeFile), typeName(actual), "md5sums", nil)
				case anyConf && !inMD5:
					add(Conffile, dpkgHash, hexs(digest.md5[:]), "status", nil)
				default:
					add(MD5, dpkgHash, hexs(digest.md5[:]), "md5sums", nil)
				}
			}
		}
	}
	for i := range out {
		out[i].Dpkg = dpkg
	}
	w.lockState(pj, f, d, pf, name, info, anyConf || isConf)
	return out
}

func (w *worker) checkOwnership(f *fileJob, me *manifest.Entry, sameType bool, info fsattr.Info, add func(Kind, string, string, string, error)) {
	src := ""
	var wantMode, wantUid, wantGid uint32
	haveUid, haveGid := false, false
	if o, ok := w.sh.overrides[f.real]; ok {
		src = "statoverride"
		wantMode = debfmt.UnixMode(o.Mode)
		wantUid, haveUid = w.a.Owners.UserID(o.User)
		wantGid, haveGid = w.a.Owners.GroupID(o.Group)
	} else if me != nil && sameType {
		src = "manifest"
		wantMode, wantUid, wantGid, haveUid, haveGid = me.Mode, me.Uid, me.Gid, true, true
	}
	if src == "" {
		return
	}
	if got := info.Mode & 0o7777; got != wantMode {
		add(Mode, fmt.Sprintf("%04o", wantMode), fmt.Sprintf("%04o", got), src, nil)
	}
	if haveUid && info.Uid != wantUid {
		add(Owner, fmt.Sprint(wantUid), fmt.Sprint(info.Uid), src, nil)
	}
	if haveGid && info.Gid != wantGid {
		add(Group, fmt.Sprint(wantGid), fmt.Sprint(info.Gid), src, nil)
	}
}

// measure checks a file with fs-verity against its manifest without
// reading it: the kernel keeps the digest of the file's Merkle tree and
// checks every page read against it, so a digest equal to the manifest's
// proves the content is the manifest's, and with it the manifest's
// SHA-256 and MD5 (recorded from the same bytes). It reports whether it
// did, with those digests. A different digest is a Verity finding (the
// content is then read and reported as well); a file without fs-verity,
// a manifest without the digest, --full, or an error measuring leave the
// file to be read as before.
func (w *worker) measure(d *fsattr.Dir, pf *fsattr.PathFile, name string, info fsattr.Info, me *manifest.Entry, add func(Kind, string, string, string, error)) (bool, digests) {
	if set, _ := info.Verity(); !set || !me.HasVerity || w.a.Opts.Full {
		return false, digests{}
	}
	var got [32]byte
	var err error
	if pf != nil {
		got, err = pf.MeasureVerity()
	} else {
		got, err = d.MeasureVerity(name, info.Ident)
	}
	if err != nil {
		return false, digests{}
	}
	if got != me.Verity {
		add(Verity, hexs(me.Verity[:]), hexs(got[:]), "manifest", nil)
		return false, digests{}
	}
	w.sh.verityN.Add(1)
	return true, digests{sha256: me.SHA256, hasSHA: me.HasSHA256, md5: me.MD5, hasMD5: me.HasMD5}
}

// digest returns the digests the checks need, from the cache when the file
// is immutable and unchanged since it was read, else by reading it. With a
// manifest that holds the MD5 too, only SHA-256 is computed: when it
// matches, the MD5 is the manifest's; when it does not, the file is read
// again for its MD5 (tampered files are rare, and cheap to read twice).
func (w *worker) digest(d *fsattr.Dir, pf *fsattr.PathFile, name string, info fsattr.Info, me *manifest.Entry, needSHA, needMD5 bool) (digests, error) {
	var dg digests
	imm, known := info.Immutable()
	trusted := known && imm
	c := w.a.Opts.Cache
	if trusted && c != nil && !w.a.Opts.Full {
		if e, ok := c.Vouch(info); ok {
			dg.md5, dg.hasMD5, dg.sha256, dg.hasSHA = e.MD5, e.HasMD5, e.SHA256, e.HasSHA256
			if needMD5 && !dg.hasMD5 && dg.hasSHA && me != nil && me.HasMD5 && me.HasSHA256 && dg.sha256 == me.SHA256 {
				dg.md5, dg.hasMD5 = me.MD5, true
			}
			if (!needSHA || dg.hasSHA) && (!needMD5 || dg.hasMD5) {
				w.sh.cachedN.Add(1)
				c.Put(e)
				return dg, nil
			}
		}
	}
	inferMD5 := needSHA && needMD5 && me != nil && me.HasMD5
	var err error
	switch {
	case needSHA && (!needMD5 || inferMD5):
		dg.sha256, _, err = w.read(d, pf, name, info, true, false)
		dg.hasSHA = err == nil
		if err == nil && needMD5 {
			if dg.sha256 == me.SHA256 {
				dg.md5, dg.hasMD5 = me.MD5, true
			} else {
				_, dg.md5, err = w.read(d, pf, name, info, false, true)
				dg.hasMD5 = err == nil
			}
		}
	default:
		dg.sha256, dg.md5, err = w.read(d, pf, name, info, needSHA, needMD5)
		dg.hasSHA, dg.hasMD5 = needSHA && err == nil, needMD5 && err == nil
	}
	if err != nil {
		return dg, err
	}
	if trusted && c != nil {
		c.Put(CacheEntry{Dev: info.Dev, Ino: info.Ino, Size: info.Size, Mtime: info.Mtime, Ctime: info.Ctime,
			HasMD5: dg.hasMD5, MD5: dg.md5, HasSHA256: dg.hasSHA, SHA256: dg.sha256})
	}
	return dg, nil
}

// read hashes a regular file (the inode lstat saw, never a symlink or a
// device swapped in) with SHA-256 and/or MD5 in one pass; through pf when
// the file was stat'ed through its handle.
func (w *worker) read(d *fsattr.Dir, pf *fsattr.PathFile, name string, info fsattr.Info, sha, md bool) (s [32]byte, m [16]byte, err error) {
	var fh *fsattr.RawFile
	if pf != nil {
		fh, err = pf.OpenRaw()
	} else {
		fh, err = d.OpenRaw(name, info.Ident)
	}
	if err != nil {
		return s, m, err
	}
	defer fh.Close()
	var hs, hm hash.Hash
	var dst io.Writer
	switch {
	case sha && md:
		hs, hm = sha256.New(), md5.New()
		dst = io.MultiWriter(hs, hm)
	case sha:
		hs = sha256.New()
		dst = hs
	default:
		if w.sh.lanes != nil && fh.Info.Size >= simdMinSize {
			if w.lane == nil {
				w.lane = w.sh.lanes.hasher()
			}
			w.lane.Reset()
			hm = w.lane
		} else {
			hm = md5.New()
		}
		dst = hm
	}
	// Read exactly the size fstat reported: for the many small files that
	// saves the read(2) that would only say EOF. A file that shrank meanwhile
	// ends early; one that grew is hashed up to its old size (it was not
	// immutable then, so it is not cached either, and it will differ).
	var n int64
	for n < fh.Info.Size {
		b := w.buf
		if rest := fh.Info.Size - n; rest < int64(len(b)) {
			b = b[:rest]
		}
		k, err := fh.Read(b)
		if k > 0 {
			dst.Write(b[:k])
			n += int64(k)
		}
		if err == io.EOF {
			break
		}
		if err != nil {
			return s, m, err
		}
	}
	w.sh.hashedN.Add(1)
	w.sh.bytesN.Add(n)
	if hs != nil {
		copy(s[:], hs.Sum(nil))
	}
	if hm != nil {
		copy(m[:], hm.Sum(nil))
	}
	return s, m, nil
}

func decodeMD5(h string, dst *[16]byte) bool {
	if !isMD5Hex(h) {
		return false
	}
	for i := 0; i < 16; i++ {
		dst[i] = unhex(h[2*i])<<4 | unhex(h[2*i+1])
	}
	return true
}

func isMD5Hex(h string) bool {
	if len(h) != 32 {
		return false
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	if c >= 'a' {
		return c - 'a' + 10
	}
	return c - '0'
}

// lockState records the flags of a regular file or directory in the lock
// table; the verdict waits until every package that lists the inode was
// seen.
func (w *worker) lockState(pj *pkgJob, f *fileJob, d *fsattr.Dir, pf *fsattr.PathFile, name string, info fsattr.Info, conffile bool) {
	if !info.IsRegular() && !info.IsDir() {
		return
	}
	imm, known := info.Immutable()
	app, _ := info.AppendOnly()
	unsupported := false
	if !known {
		var fl uint32
		var err error
		if pf != nil {
			fl, err = pf.Flags()
		} else {
			fl, err = d.Flags(name, info.Ident)
		}
		switch {
		case errors.Is(err, fsattr.ErrNotSupported):
			unsupported = true
		case err != nil:
			unsupported = true // cannot tell: no verdict rather than a false one
		default:
			imm, app = fl&fsattr.Immutable != 0, fl&fsattr.AppendOnly != 0
		}
	}
	locked, _ := w.a.Policy.PathLocked(f.real)
	kindOK := info.IsRegular() || info.IsDir() && w.a.Policy.LockDirectories
	var fl lockFlags
	set := func(f lockFlags, on bool) {
		if on {
			fl |= f
		}
	}
	set(lockExpect, pj.sealed && !conffile && locked && kindOK)
	set(lockProtect, conffile || !locked)
	set(lockImm, imm)
	set(lockApp, app)
	set(lockUnsupported, unsupported)
	set(lockConffile, conffile)
	set(lockNoVerity, w.lacksVerity(info))
	multi := info.Nlink > 1 && info.IsRegular()
	if fl&^lockConffile == 0 && !multi {
		// Nothing expected, forbidden or flagged: this owner adds
		// nothing to the inode's verdict (the first owner that does
		// is the one reported), so the table does not keep it. A
		// directory, or any file of a system that is not sealed,
		// mostly ends here: the table holds what can become a finding.
		return
	}
	e := lockEnt{flags: fl, nlink: info.Nlink, pkg: pj.p, listed: f.listed, real: f.real}
	var de dentry
	if multi {
		// Only an inode with several links can have one no package
		// path accounts for (see ForeignLink).
		de = w.dentry(f.real)
	}
	w.sh.locks.add(info.Ident, e, de)
}

// lacksVerity: a regular file the lock would have given fs-verity (the
// policy wants it, and locks found its device takes it) that has none.
func (w *worker) lacksVerity(info fsattr.Info) bool {
	if !info.IsRegular() || !w.a.Policy.Verity.Enabled() || !w.a.VerityDevices[info.Dev] {
		return false
	}
	set, known := info.Verity()
	return known && !set
}

// dentry names one directory entry: the directory's inode and a name, so
// that a merged-/usr alias and its target count once.
type dentry struct {
	dir     fsattr.Ident
	dirPath string // when the directory's inode is unknown
	name    string
}

func (w *worker) dentry(real string) dentry {
	if w.dir != nil {
		if !w.dirIDOK {
			w.dirID, _ = w.dir.Ident()
			w.dirIDOK = true
		}
		if !w.dirID.IsZero() {
			return dentry{dir: w.dirID, name: path.Base(real)}
		}
	}
	return dentry{dirPath: path.Dir(real), name: path.Base(real)}
}

// lockEnt is what the lock table keeps of one inode until the end of the
// audit: a few bits and the owner to report it under. There is one per
// package file of the whole system, so it is small and holds no pointer
// of its own but the strings (the collector scans them all).
type lockEnt struct {
	flags        lockFlags
	nlink        uint32
	pkg          *dpkgdb.Package
	listed, real string
}

// lockFlags are an inode's verdict inputs: expected locked by some owner,
// forbidden by some owner, and its flags as the first owner saw them.
type lockFlags uint8

const (
	lockExpect      lockFlags = 1 << iota // some owner expects it locked
	lockProtect                           // some owner forbids it (a conffile, a path policy excludes)
	lockImm                               // immutable
	lockApp                               // append-only
	lockUnsupported                       // no inode flags there: no verdict
	lockConffile                          // the reported owner lists it as a conffile
	lockNoVerity                          // a regular file without fs-verity on a device locks give it
)

// dentries are the distinct package dentries that reach one inode with
// several links (see ForeignLink).
type dentries struct {
	d0   dentry
	more map[dentry]bool
}

// links is how many distinct package dentries reach the inode.
func (e *dentries) links() int {
	if e == nil || e.d0 == (dentry{}) {
		return 1
	}
	return 1 + len(e.more)
}

func (e *dentries) add(d dentry) {
	switch {
	case d == (dentry{}) || d == e.d0:
	case e.d0 == (dentry{}):
		e.d0 = d
	default:
		if e.more == nil {
			e.more = map[dentry]bool{}
		}
		e.more[d] = true
	}
}

// lockTable gathers, per inode, whether any owner expects it locked and
// whether any owner forbids it (a conffile, a path policy excludes), as
// pkg/seal's planner decides for lock --all. Entries live in one slice
// indexed by the map, without a pointer each.
type lockTable struct {
	mu   sync.Mutex
	idx  map[fsattr.Ident]int32
	ents []lockEnt
	dent map[fsattr.Ident]*dentries // inodes with several links only
}

func newLockTable() *lockTable {
	return &lockTable{idx: map[fsattr.Ident]int32{}, dent: map[fsattr.Ident]*dentries{}}
}

// add records one owner's view of an inode; d is its dentry when the
// inode has several links.
func (t *lockTable) add(id fsattr.Ident, e lockEnt, d dentry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d != (dentry{}) {
		ds := t.dent[id]
		if ds == nil {
			ds = &dentries{}
			t.dent[id] = ds
		}
		ds.add(d)
	}
	i, ok := t.idx[id]
	if !ok {
		t.idx[id] = int32(len(t.ents))
		t.ents = append(t.ents, e)
		return
	}
	cur := &t.ents[i]
	if e.flags&lockExpect != 0 && cur.flags&lockExpect == 0 {
		// Report under an owner that expects the lock.
		cur.pkg, cur.listed, cur.real = e.pkg, e.listed, e.real
		cur.flags = cur.flags&^lockConffile | e.flags&lockConffile
	}
	cur.flags |= e.flags & (lockExpect | lockProtect)
}

// suspects are the inodes expected locked with more links than package
// dentries seen so far.
func (t *lockTable) suspects() map[fsattr.Ident]bool {
	out := map[fsattr.Ident]bool{}
	for id, i := range t.idx {
		e := &t.ents[i]
		if e.flags&(lockExpect|lockProtect) == lockExpect && int(e.nlink) > t.dent[id].links() {
			out[id] = true
		}
	}
	return out
}

// addDentry adds a dentry of an inode the table has (countOtherLinks).
func (t *lockTable) addDentry(id fsattr.Ident, d dentry) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, ok := t.idx[id]; !ok {
		return
	}
	ds := t.dent[id]
	if ds == nil {
		ds = &dentries{}
		t.dent[id] = ds
	}
	ds.add(d)
}

func (t *lockTable) findings(v *lockVerdict) []Finding {
	var out []Finding
	for id, i := range t.idx {
		e := &t.ents[i]
		if e.flags&lockUnsupported != 0 {
			continue
		}
		base := Finding{Package: e.pkg.ID(), Path: e.listed, Real: e.real, Conffile: e.flags&lockConffile != 0, Source: "policy"}
		want := e.flags&(lockExpect|lockProtect) == lockExpect
		imm := e.flags&lockImm != 0
		if links := t.dent[id].links(); want && int(e.nlink) > links {
			// Never locked (pkg/seal's planner): the extra link may be a
			// file outside the root.
			f := base
			f.Kind, f.Expected = ForeignLink, fmt.Sprintf("link count %d (the package paths that reach it)", links)
			f.Actual = fmt.Sprintf("%d (a hard link no package owns, maybe outside the root: never locked)", e.nlink)
			if imm {
				f.Actual += ", immutable"
			}
			out = append(out, f)
			want = false
			imm = false // reported here, not again as unexpected-immutable
		}
		if e.flags&lockApp != 0 {
			f := base
			f.Kind, f.Expected, f.Actual, f.Source = AppendOnly, "no append-only flag", "append-only", "debseal never sets it"
			out = append(out, f)
		}
		noVerity := want && e.flags&lockNoVerity != 0
		switch {
		case want && !imm:
			if f, ok := v.unlocked(id, e.pkg.ID(), base); ok {
				out = append(out, f)
				// Not a file dpkg is writing or an interrupted run
				// left: one replaced outside dpkg.
				noVerity = noVerity && !v.named(id)
			} else {
				noVerity = false
			}
		case want && imm:
			v.locked(id)
		case !want && imm:
			f := base
			f.Kind, f.Expected, f.Actual = UnexpectedImmutable, "mutable", "immutable"
			out = append(out, f)
		}
		if noVerity {
			f := base
			f.Kind, f.Expected, f.Actual = VerityLost, "fs-verity", "no fs-verity"
			f.Source = "lock (its filesystem takes fs-verity)"
			out = append(out, f)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Real != out[j].Real {
			return out[i].Real < out[j].Real
		}
		return out[i].Kind < out[j].Kind
	})
	return out
}

// pathExcluded applies dpkg's path filters in order: the last matching
// one decides (src/main/filters.c filter_should_skip).
func pathExcluded(filters []string, p string) bool {
	excluded := false
	for _, f := range filters {
		if len(f) < 2 {
			continue
		}
		if policy.Glob(f[1:], p) {
			excluded = f[0] == '-'
		}
	}
	return excluded
}

// fsStat returns a file's size.
func fsStat(p string) (int64, error) {
	st, err := os.Stat(p)
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// Strerror renders an errno the way C's strerror does (capitalised), as
// dpkg prints it.
func Strerror(e syscall.Errno) string {
	s := e.Error()
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
