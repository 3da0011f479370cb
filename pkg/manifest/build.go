package manifest

import (
	"bufio"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/debseal/debseal/pkg/aptindex"
	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/deb"
	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/verity"
)

// Builder builds and records manifests for the packages of one root.
type Builder struct {
	Root  string // the system's root directory ("/" or a --root)
	DB    *dpkgdb.DB
	FS    *fsattr.Root // the same root, for in-root resolution
	Store *Store
	// Lists is apt's lists directory (ROOT/var/lib/apt/lists) and
	// IndexCache the sorted cache of its indices, within Root
	// (/var/lib/debseal/aptindex.cache).
	Lists, IndexCache string
	// Archives is apt's cache of .debs (ROOT/var/cache/apt/archives).
	Archives string
	Now      func() time.Time
	// Known returns the digests of an installed file read moments ago
	// (by the relock's md5sums check) when it was read with this inode,
	// size and mtime; such a file is not read again. nil: none known.
	Known func(id fsattr.Ident, size, mtime int64) (Digests, bool)
	// Verified, when set, is called by FromInstalled for each regular
	// file (not a conffile) whose MD5 it found equal to the reference,
	// with what lstat said of it before the read: lock records the
	// stamps of what it so verified (pkg/seal). It must be safe for
	// concurrent use.
	Verified func(p *dpkgdb.Package, info fsattr.Info)

	ixOnce sync.Once
	ix     *aptindex.Index
	ixErr  error
	owners *Owners
}

// NewBuilder returns a Builder with the standard locations under root.
func NewBuilder(root string, db *dpkgdb.DB, fsys *fsattr.Root) *Builder {
	return &Builder{
		Root: root, DB: db, FS: fsys, Store: StoreFor(root),
		Lists:      filepath.Join(root, "var/lib/apt/lists"),
		IndexCache: "/" + confined.Own + "/aptindex.cache",
		Archives:   filepath.Join(root, "var/cache/apt/archives"),
		Now:        time.Now,
	}
}

// Close releases the index cache.
func (b *Builder) Close() {
	if b.ix != nil {
		b.ix.Close()
	}
}

func (b *Builder) index() (*aptindex.Index, error) {
	b.ixOnce.Do(func() {
		b.ix, b.ixErr = aptindex.Load(b.Lists, b.Root, b.IndexCache)
	})
	return b.ix, b.ixErr
}

// ErrOtherVersion: the .deb is not the installed version of the package
// (a run that failed or was interrupted before dpkg unpacked it).
var ErrOtherVersion = errors.New("manifest: not the installed version")

// DebCheck is what checking a .deb against a package and apt's indices
// found.
type DebCheck struct {
	Path       string
	Info       *deb.Info
	SHA256     string // hex
	Provenance Provenance
	Index      string // the matching index entry, for apt-verified
}

// CheckDeb reads a .deb's control member while hashing the whole file in
// the same pass, checks that it is the installed version of p, and looks
// its hash up in apt's indices. Reading the data member is not needed for
// this: the control member holds the md5sums of every regular file.
func (b *Builder) CheckDeb(debPath string, p *dpkgdb.Package) (*DebCheck, error) {
	ix, ixErr := b.index()
	entries := ix.Lookup(p.Name, p.Version, p.Arch)
	algos := append(aptindex.Algos(entries), aptindex.SHA256)
	f, err := os.Open(debPath)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	defer f.Close()
	hs := map[aptindex.Algo]hash.Hash{}
	var ws []io.Writer
	for _, a := range algos {
		if hs[a] == nil {
			hs[a] = a.New()
			ws = append(ws, hs[a])
		}
	}
	mw := io.MultiWriter(ws...)
	info, err := deb.ReadInfo(io.TeeReader(f, mw), debPath)
	if err != nil {
		return nil, err
	}
	if _, err := io.Copy(mw, f); err != nil {
		return nil, fmt.Errorf("manifest: read %s: %w", debPath, err)
	}
	if info.Package != p.Name || info.Version != p.Version || info.Architecture != p.Arch {
		return nil, fmt.Errorf("%w: %s is %s %s (%s), not the installed %s %s (%s)", ErrOtherVersion, debPath,
			info.Package, info.Version, info.Architecture, p.Name, p.Version, p.Arch)
	}
	sums := map[aptindex.Algo][]byte{}
	for a, h := range hs {
		sums[a] = h.Sum(nil)
	}
	c := &DebCheck{Path: debPath, Info: info, SHA256: hex.EncodeToString(sums[aptindex.SHA256]), Provenance: Local}
	if e, ok := aptindex.Match(entries, sums); ok {
		c.Provenance = AptVerified
		c.Index = e.Hash.String() + " " + e.Filename
	} else if ixErr != nil {
		return c, fmt.Errorf("manifest: apt's indices unreadable, %s recorded as local: %w", debPath, ixErr)
	}
	return c, nil
}

// CachedDeb returns the path of the package's .deb in apt's archive cache,
// if it is there (NAME_VERSION_ARCH.deb, the epoch's ':' as "%3a").
func (b *Builder) CachedDeb(p *dpkgdb.Package) (string, bool) {
	v := strings.ReplaceAll(p.Version, ":", "%3a")
	pth := filepath.Join(b.Archives, p.Name+"_"+v+"_"+p.Arch+".deb")
	if st, err := os.Stat(pth); err == nil && st.Mode().IsRegular() {
		return pth, true
	}
	return "", false
}

// FromDeb builds a manifest from a checked .deb's data member: every field
// of every entry comes from the archive (owners by name through the root's
// passwd and group files, as dpkg maps them; the numeric ids when a name
// is unknown there).
func (b *Builder) FromDeb(ctx context.Context, c *DebCheck) (*Manifest, error) {
	m := b.newManifest(c.Info.Package, c.Info.Architecture, c.Info.Version, FromDebData)
	m.Provenance, m.Deb, m.DebSHA256, m.Index = c.Provenance, c.Path, c.SHA256, c.Index
	own := b.ownerMap()
	files := map[string]int{} // path → entry index, for hard links
	err := deb.WalkDataFile(c.Path, deb.Options{Hashes: true}, func(de *deb.Entry) error {
		if err := ctx.Err(); err != nil {
			return err
		}
		if de.Path == "/" {
			return nil
		}
		e := Entry{Path: de.Path, Mode: debfmt.UnixMode(de.Mode), Size: -1,
			Uid: own.uid(de.Uname, de.Uid), Gid: own.gid(de.Gname, de.Gid)}
		switch de.Type {
		case deb.TypeFile:
			e.Type, e.Size = TypeFile, de.Size
			e.HasSHA256, e.SHA256, e.HasMD5, e.MD5 = de.Hashed, de.SHA256, de.Hashed, de.MD5
			e.HasVerity, e.Verity = de.Hashed, de.Verity
			files[de.Path] = len(m.Entries)
		case deb.TypeHardlink:
			i, ok := files[de.Linkname]
			if !ok {
				return fmt.Errorf("manifest: %s: hard link %s to %s, which is not an earlier file", c.Path, de.Path, de.Linkname)
			}
			t := m.Entries[i]
			e.Type, e.Size, e.HasSHA256, e.SHA256, e.HasMD5, e.MD5 = TypeFile, t.Size, t.HasSHA256, t.SHA256, t.HasMD5, t.MD5
			e.HasVerity, e.Verity = t.HasVerity, t.Verity
		case deb.TypeDir:
			e.Type = TypeDir
		case deb.TypeSymlink:
			e.Type, e.Link = TypeSymlink, de.Linkname
		default:
			switch de.Typeflag {
			case '3':
				e.Type = TypeChar
			case '4':
				e.Type = TypeBlock
			default:
				e.Type = TypeFIFO
			}
		}
		m.Entries = append(m.Entries, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	m.Sort()
	return m, nil
}

func (b *Builder) newManifest(pkg, arch, version string, content Content) *Manifest {
	now := time.Now
	if b.Now != nil {
		now = b.Now
	}
	return &Manifest{Package: pkg, Arch: arch, Version: version, Provenance: Local, Content: content, Created: now().UTC().Truncate(time.Second)}
}

// Mismatch is an installed file whose MD5 differs from the reference: it
// is left out of the manifest (a baseline must not bless a changed file).
type Mismatch struct {
	Pkg, Path, Real string
	Want, Got       [16]byte
}

func (m Mismatch) Error() string {
	return fmt.Sprintf("manifest: %s (package %s): md5 %x, expected %x: not recorded", m.Real, m.Pkg, m.Got, m.Want)
}

// FromInstalled builds a manifest from the files on disk: each listed path
// at its real location (diversions resolved), each regular file hashed and
// checked against ref (MD5 by listed path) or, for conffiles, the status
// Conffiles hash. Files whose MD5 differs are left out and returned as
// *Mismatch errors (an edited conffile is recorded without digests: admins
// edit them); files with no reference are recorded without digests;
// absent files (dpkg path-exclude) are not recorded.
func (b *Builder) FromInstalled(ctx context.Context, p *dpkgdb.Package, ref map[string][16]byte) (*Manifest, []error, error) {
	files, err := b.DB.Files(p)
	if err != nil {
		return nil, nil, err
	}
	div, err := b.DB.Diversions()
	if err != nil {
		return nil, nil, err
	}
	conf := map[string][16]byte{}
	for _, c := range p.Conffiles {
		var sum [16]byte
		if _, err := hex.Decode(sum[:], []byte(c.Hash)); err == nil && len(c.Hash) == 32 {
			conf[c.Path] = sum
		}
	}
	m := b.newManifest(p.Name, p.Arch, p.Version, FromInstalled)
	var problems []error
	var cur *fsattr.Dir
	curName := ""
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	bufp := hashBufs.Get().(*[]byte)
	defer hashBufs.Put(bufp)
	buf := *bufp
	for _, listed := range files {
		if err := ctx.Err(); err != nil {
			return nil, problems, err
		}
		if listed == "/" || listed == "/." {
			continue
		}
		real := div.Resolve(listed, p.Name)
		dir, name := path.Split(real)
		if dir != curName {
			if cur != nil {
				cur.Close()
				cur = nil
			}
			curName = dir
			if cur, err = b.FS.OpenDir(dir); err != nil {
				cur = nil
			}
		}
		if cur == nil {
			continue // parent missing: path-excluded or removed; nothing to record
		}
		info, err := cur.Lstat(name)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				problems = append(problems, err)
			}
			continue
		}
		e := Entry{Path: listed, Mode: info.Mode & 0o7777, Uid: info.Uid, Gid: info.Gid, Size: -1}
		switch info.Mode & 0o170000 {
		case 0o100000:
			e.Type, e.Size = TypeFile, info.Size
			want, hasRef := ref[listed]
			c, isConf := conf[listed]
			if isConf {
				want, hasRef = c, true
			}
			var dg Digests
			known := false
			if b.Known != nil {
				dg, known = b.Known(info.Ident, info.Size, info.Mtime)
			}
			if !known {
				if dg, err = hashFile(cur, name, info.Ident, buf); err != nil {
					problems = append(problems, err)
					continue
				}
			}
			md := dg.MD5
			if hasRef && md != want {
				if isConf {
					// Admins edit conffiles: record it, without digests.
					hasRef = false
				} else {
					problems = append(problems, &Mismatch{Pkg: p.ID(), Path: listed, Real: real, Want: want, Got: md})
					continue
				}
			}
			if hasRef {
				e.HasSHA256, e.SHA256, e.HasMD5, e.MD5 = true, dg.SHA256, true, md
				e.HasVerity, e.Verity = dg.HasVerity, dg.Verity
				if b.Verified != nil && !isConf {
					b.Verified(p, info)
				}
			}
		case 0o040000:
			e.Type = TypeDir
		case 0o120000:
			e.Type = TypeSymlink
			if e.Link, err = cur.Readlink(name); err != nil {
				problems = append(problems, err)
				continue
			}
		case 0o020000:
			e.Type = TypeChar
		case 0o060000:
			e.Type = TypeBlock
		case 0o010000:
			e.Type = TypeFIFO
		default:
			continue // a socket: nothing dpkg would install
		}
		m.Entries = append(m.Entries, e)
	}
	m.Sort()
	return m, problems, nil
}

// Digests are what one read of a file gives: SHA-256, MD5 and, when
// HasVerity, the fs-verity digest.
type Digests struct {
	SHA256    [32]byte
	MD5       [16]byte
	HasVerity bool
	Verity    [32]byte
}

// hashFile computes SHA-256, MD5 and the fs-verity digest of a regular
// file in one read.
// hashBufs are the read buffers of FromInstalled, one per package being
// built at a time rather than one allocated per package (lock --all
// builds a manifest for every package).
var hashBufs = sync.Pool{New: func() any { b := make([]byte, 256<<10); return &b }}

func hashFile(d *fsattr.Dir, name string, id fsattr.Ident, buf []byte) (dg Digests, err error) {
	f, err := d.Open(name, id)
	if err != nil {
		return dg, err
	}
	defer f.Close()
	hs, hm, hv := sha256.New(), md5.New(), verity.Get()
	defer verity.Put(hv)
	// Only Read: *os.File's WriteTo would ignore buf and allocate 32 KB.
	if _, err := io.CopyBuffer(io.MultiWriter(hs, hm, hv), struct{ io.Reader }{f}, buf); err != nil {
		return dg, fmt.Errorf("manifest: read %s: %w", f.Name(), err)
	}
	hs.Sum(dg.SHA256[:0])
	hm.Sum(dg.MD5[:0])
	dg.Verity, dg.HasVerity = hv.Sum(), true
	return dg, nil
}

// Build makes the best manifest available for p: from its .deb (debPath,
// or the copy in apt's cache when debPath is empty) when useData is set,
// else from the installed files checked against the .deb's md5sums; and
// from the installed files checked against dpkg's md5sums when there is no
// usable .deb. Problems that do not stop the manifest (a file that differs
// and is left out, a .deb that is not the installed version) are returned
// in problems.
func (b *Builder) Build(ctx context.Context, p *dpkgdb.Package, debPath string, useData bool) (m *Manifest, problems []error, err error) {
	if debPath == "" {
		debPath, _ = b.CachedDeb(p)
	}
	var c *DebCheck
	if debPath != "" {
		var cerr error
		c, cerr = b.CheckDeb(debPath, p)
		if cerr != nil {
			problems = append(problems, cerr)
		}
	}
	return b.build(ctx, p, c, useData, problems)
}

// build is Build with the .deb already checked (c nil: none).
func (b *Builder) build(ctx context.Context, p *dpkgdb.Package, c *DebCheck, useData bool, problems []error) (m *Manifest, _ []error, err error) {
	if c != nil && useData {
		m, err := b.FromDeb(ctx, c)
		if err == nil {
			return m, problems, nil
		}
		problems = append(problems, err)
	}
	var ref map[string][16]byte
	if c != nil && c.Info.MD5Sums != nil {
		ref = make(map[string][16]byte, len(c.Info.MD5Sums))
		for _, s := range c.Info.MD5Sums {
			ref[s.Path] = s.MD5
		}
	} else {
		c = nil
		var bad []error
		ref, bad, err = b.DB.MD5Sums(p)
		if err != nil {
			return nil, problems, err
		}
		problems = append(problems, bad...)
	}
	m, perr, err := b.FromInstalled(ctx, p, ref)
	problems = append(problems, perr...)
	if err != nil {
		return nil, problems, err
	}
	if c != nil {
		m.Provenance, m.Deb, m.DebSHA256, m.Index = c.Provenance, c.Path, c.SHA256, c.Index
	}
	return m, problems, nil
}

// Deb is an archive a dpkg run unpacked, and the package it holds (Arch
// empty: any architecture).
type Deb struct{ Path, Package, Arch string }

// Record is what seal.System.Record calls: after a dpkg run it records a
// manifest for every package just relocked, from the installed files checked
// against the md5sums of the run's .deb for that package (authenticated
// through apt's indices when they list it), or against dpkg's md5sums
// when the run had no .deb for it (a configure, a trigger). Problems are
// joined into the returned error; the other manifests are still written.
func (b *Builder) Record(ctx context.Context, pkgs []*dpkgdb.Package, debs []Deb) error {
	var errs []error
	var save []*Manifest
	for _, p := range pkgs {
		debPath := ""
		for _, d := range debs {
			if d.Package == p.Name && (d.Arch == "" || d.Arch == p.Arch) {
				debPath = d.Path
			}
		}
		if debPath == "" {
			// Nothing new was unpacked for it: keep a manifest that still
			// describes this version (it may be apt-verified).
			if old, err := b.Store.Header(p.Name, p.Arch); err == nil && old.Version == p.Version {
				continue
			}
		}
		var c *DebCheck
		var problems []error
		if debPath != "" {
			var err error
			c, err = b.CheckDeb(debPath, p)
			switch {
			case errors.Is(err, ErrOtherVersion) || errors.Is(err, fs.ErrNotExist):
				// dpkg did not install it (the run failed or was cut
				// short), or apt already cleaned it away (a recovery
				// later): keep what describes the installed version.
				if old, err := b.Store.Header(p.Name, p.Arch); err == nil && old.Version == p.Version {
					continue
				}
				c = nil
			case err != nil:
				problems = append(problems, err)
			}
		}
		m, problems, err := b.build(ctx, p, c, false, problems)
		errs = append(errs, problems...)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		save = append(save, m)
	}
	// One durable batch for the run's manifests (Store.SaveAll).
	for _, err := range b.Store.SaveAll(save) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Owners maps user and group names to ids through a root's passwd and
// group files (as dpkg maps a .deb's owner names, and statoverride's).
type Owners struct{ users, groups map[string]uint32 }

// LoadOwners reads ROOT/etc/passwd and ROOT/etc/group; missing files give
// an empty map.
func LoadOwners(root string) *Owners {
	return &Owners{users: readIDs(filepath.Join(root, "etc/passwd")), groups: readIDs(filepath.Join(root, "etc/group"))}
}

func (b *Builder) ownerMap() *Owners {
	if b.owners == nil {
		b.owners = LoadOwners(b.Root)
	}
	return b.owners
}

func readIDs(file string) map[string]uint32 {
	out := map[string]uint32{}
	f, err := os.Open(file)
	if err != nil {
		return out
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Split(sc.Text(), ":")
		if len(fl) < 3 {
			continue
		}
		if id, err := strconv.ParseUint(fl[2], 10, 32); err == nil {
			if _, dup := out[fl[0]]; !dup {
				out[fl[0]] = uint32(id)
			}
		}
	}
	return out
}

// UserID resolves a user name ("#123" is an id), ok false if unknown.
func (o *Owners) UserID(name string) (uint32, bool) { return lookupID(o.users, name) }

// GroupID resolves a group name ("#123" is an id), ok false if unknown.
func (o *Owners) GroupID(name string) (uint32, bool) { return lookupID(o.groups, name) }

func lookupID(m map[string]uint32, name string) (uint32, bool) {
	if id, ok := strings.CutPrefix(name, "#"); ok {
		v, err := strconv.ParseUint(id, 10, 32)
		return uint32(v), err == nil
	}
	v, ok := m[name]
	return v, ok
}

func (o *Owners) uid(name string, id int) uint32 {
	if v, ok := o.users[name]; ok && name != "" {
		return v
	}
	return uint32(id)
}

func (o *Owners) gid(name string, id int) uint32 {
	if v, ok := o.groups[name]; ok && name != "" {
		return v
	}
	return uint32(id)
}
