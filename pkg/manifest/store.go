package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"strings"

	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/fsattr"
)

// storeDir is where the manifests are, within the root.
const storeDir = confined.Own + "/manifests"

// Store is the directory of manifests of one root:
// ROOT/var/lib/debseal/manifests, mode 0700, one file per package and
// architecture (NAME_ARCH.manifest, mode 0600, immutable). It is reached
// through the root (pkg/confined): a symlink where the directory or a
// manifest should be is an error naming it, so neither the chmod nor the
// immutable flag ever lands outside the root.
type Store struct {
	Dir  string // on the host, for messages
	root string
}

// StoreFor returns the store of a root.
func StoreFor(root string) *Store {
	return &Store{Dir: filepath.Join(root, storeDir), root: root}
}

// Path is the file of a package's manifest.
func (s *Store) Path(pkg, arch string) string {
	return filepath.Join(s.Dir, ID(pkg, arch)+".manifest")
}

func (s *Store) name(pkg, arch string) string {
	return path.Join(storeDir, ID(pkg, arch)+".manifest")
}

func (s *Store) open() (*confined.Root, error) {
	r, err := confined.Open(s.root)
	if err != nil {
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return r, nil
}

// Load reads a package's manifest. A missing manifest is an error matching
// fs.ErrNotExist; a damaged one wraps ErrCorrupt or ErrChecksum (see Read).
func (s *Store) Load(pkg, arch string) (*Manifest, error) {
	r, err := s.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(s.name(pkg, arch))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, s.Path(pkg, arch))
}

// maxHeader bounds what Header reads looking for the end of the header.
const maxHeader = 64 << 10

// Reader reads many manifests of a store through one open directory:
// Load resolves the store's directory for each manifest, which was a
// third of an audit's time at 10,000 packages (the audit reads one per
// package).
type Reader struct {
	s   *Store
	r   *confined.Root
	dir *fsattr.Dir
}

// Reader opens the store for reading. A store that does not exist yet is
// an error matching fs.ErrNotExist.
func (s *Store) Reader() (*Reader, error) {
	r, err := s.open()
	if err != nil {
		return nil, err
	}
	dir, err := r.OpenDir(storeDir)
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("manifest: %w", err)
	}
	return &Reader{s: s, r: r, dir: dir}, nil
}

// Load is Store.Load through the open directory.
func (rd *Reader) Load(pkg, arch string) (*Manifest, error) {
	b, err := rd.r.ReadFileIn(rd.dir, ID(pkg, arch)+".manifest", maxManifest+1)
	if err != nil {
		return nil, err
	}
	return parse(b, rd.s.Path(pkg, arch))
}

// Header is Store.Header through the open directory.
func (rd *Reader) Header(pkg, arch string) (*Manifest, error) {
	b, err := rd.r.ReadFileIn(rd.dir, ID(pkg, arch)+".manifest", maxHeader)
	if err != nil {
		return nil, err
	}
	return readHeader(bytes.NewReader(b), rd.s.Path(pkg, arch))
}

// Close releases the directory.
func (rd *Reader) Close() error {
	rd.dir.Close()
	return rd.r.Close()
}

// Header reads only the header of a package's manifest (package,
// architecture, version, provenance...), without its entries and without
// checking its checksum: enough to know whether a manifest describes the
// installed version, at a fraction of Load's cost (lock --all asks for
// every package). Whoever trusts the contents uses Load.
func (s *Store) Header(pkg, arch string) (*Manifest, error) {
	r, err := s.open()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	f, err := r.Open(s.name(pkg, arch))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHeader(io.LimitReader(f, maxHeader), s.Path(pkg, arch))
}

// Save writes m atomically and makes it immutable, so that changing a
// manifest takes the same deliberate step as changing a locked file. On a
// filesystem without inode flags the manifest is still written (the
// flag is best effort there, as for package files); any other failure to
// set the flag is returned after the manifest is in place.
func (s *Store) Save(m *Manifest) error { return s.SaveAll([]*Manifest{m})[0] }

// SaveAll is Save for many manifests, durable with one flush for all of
// them instead of one each (confined.Root.WriteFiles): lock --all records
// a manifest per package. The errors are per manifest. Two manifests of
// one package in ms: the last wins.
func (s *Store) SaveAll(ms []*Manifest) []error {
	errs := make([]error, len(ms))
	if len(ms) == 0 {
		return errs
	}
	failAll := func(err error) []error {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	r, err := s.open()
	if err != nil {
		return failAll(err)
	}
	defer r.Close()
	if err := r.MkdirAll(storeDir, 0o700); err != nil {
		return failAll(fmt.Errorf("manifest: %w", err))
	}
	if err := r.Chmod(storeDir, 0o700); err != nil {
		return failAll(fmt.Errorf("manifest: %w", err))
	}
	dir, err := r.OpenDir(storeDir)
	if err != nil {
		return failAll(fmt.Errorf("manifest: %w", err))
	}
	defer dir.Close()
	var files []confined.FileData
	var idx []int // files[k] is ms[idx[k]]
	last := map[string]int{}
	for i, m := range ms {
		last[ID(m.Package, m.Arch)] = i
	}
	for i, m := range ms {
		name := ID(m.Package, m.Arch) + ".manifest"
		if last[ID(m.Package, m.Arch)] != i {
			continue // replaced by a later one in the same batch
		}
		if info, err := dir.Lstat(name); err == nil && info.IsRegular() {
			if _, err := dir.Set(name, info.Ident, fsattr.Immutable, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
				errs[i] = fmt.Errorf("manifest: unlock the old manifest: %w", err)
				continue
			}
		}
		files = append(files, confined.FileData{Name: name, Data: Marshal(m)})
		idx = append(idx, i)
	}
	for k, err := range r.WriteFiles(storeDir, files, 0o600) {
		i := idx[k]
		if err != nil {
			errs[i] = fmt.Errorf("manifest: %w", err)
			continue
		}
		if _, err := dir.Set(files[k].Name, fsattr.Ident{}, fsattr.Immutable, true); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
			errs[i] = fmt.Errorf("manifest: lock %s: %w", files[k].Name, err)
		}
	}
	return errs
}

// Remove deletes a package's manifest (unlocking it first).
func (s *Store) Remove(pkg, arch string) error {
	r, err := s.open()
	if err != nil {
		return err
	}
	defer r.Close()
	dir, err := r.OpenDir(storeDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	defer dir.Close()
	name := ID(pkg, arch) + ".manifest"
	if _, err := dir.Set(name, fsattr.Ident{}, fsattr.Immutable, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := r.Remove(s.name(pkg, arch)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// Prune deletes the manifests of packages that are no longer installed:
// keep says, for a package and architecture, whether its manifest stays.
// A name in the store that is not a manifest's is left alone. It returns
// the stems (NAME_ARCH) it removed; a manifest that cannot be removed is
// an error naming it, and the others are still pruned.
func (s *Store) Prune(keep func(pkg, arch string) bool) ([]string, []error) {
	r, err := s.open()
	if err != nil {
		return nil, []error{err}
	}
	ents, err := r.ReadDir(storeDir)
	r.Close()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("manifest: %w", err)}
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		pkg, arch, ok := splitName(e.Name)
		if !ok || keep(pkg, arch) {
			continue
		}
		if err := s.Remove(pkg, arch); err != nil {
			errs = append(errs, err)
			continue
		}
		removed = append(removed, ID(pkg, arch))
	}
	return removed, errs
}

// splitName parses a manifest's file name (NAME_ARCH.manifest, or
// NAME.manifest for a package without an architecture). Debian package
// and architecture names never hold "_", so the split is unambiguous.
func splitName(name string) (pkg, arch string, ok bool) {
	stem, ok := strings.CutSuffix(name, ".manifest")
	if !ok || stem == "" || strings.HasPrefix(stem, ".") {
		return "", "", false
	}
	pkg, arch, _ = strings.Cut(stem, "_")
	if pkg == "" || strings.Contains(arch, "_") {
		return "", "", false
	}
	return pkg, arch, true
}
