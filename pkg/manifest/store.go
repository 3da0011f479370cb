package manifest

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/seal"
)

// Store is the directory of manifests of one root:
// ROOT/var/lib/debseal/manifests, mode 0700, one file per package and
// architecture (NAME_ARCH.manifest, mode 0600, immutable).
type Store struct{ Dir string }

// StoreFor returns the store of a root.
func StoreFor(root string) *Store {
	return &Store{Dir: filepath.Join(seal.StateDir(root), "manifests")}
}

// Path is the file of a package's manifest.
func (s *Store) Path(pkg, arch string) string {
	return filepath.Join(s.Dir, ID(pkg, arch)+".manifest")
}

// Load reads a package's manifest. A missing manifest is an error matching
// fs.ErrNotExist; a damaged one wraps ErrCorrupt or ErrChecksum (see Read).
func (s *Store) Load(pkg, arch string) (*Manifest, error) {
	p := s.Path(pkg, arch)
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Read(f, p)
}

// Header reads only the header of a package's manifest (package,
// architecture, version, provenance...), without its entries and without
// checking its checksum: enough to know whether a manifest describes the
// installed version, at a fraction of Load's cost (lock --all asks for
// every package). Whoever trusts the contents uses Load.
func (s *Store) Header(pkg, arch string) (*Manifest, error) {
	p := s.Path(pkg, arch)
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readHeader(io.LimitReader(f, 64<<10), p)
}

// Save writes m atomically and makes it immutable, so that changing a
// manifest takes the same deliberate step as changing a locked file. On a
// filesystem without inode flags the manifest is still written (the
// flag is best effort there, as for package files); any other failure to
// set the flag is returned after the manifest is in place.
func (s *Store) Save(m *Manifest) error {
	if err := os.MkdirAll(s.Dir, 0o700); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Chmod(s.Dir, 0o700); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	dir, done, err := s.openDir()
	if err != nil {
		return err
	}
	defer done()
	name := ID(m.Package, m.Arch) + ".manifest"
	if _, err := dir.Lstat(name); err == nil {
		if _, err := dir.Set(name, fsattr.Ident{}, fsattr.Immutable, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
			return fmt.Errorf("manifest: unlock the old manifest: %w", err)
		}
	}
	if err := seal.WriteFileAtomic(filepath.Join(s.Dir, name), Marshal(m), 0o600); err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	if _, err := dir.Set(name, fsattr.Ident{}, fsattr.Immutable, true); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
		return fmt.Errorf("manifest: lock %s: %w", name, err)
	}
	return nil
}

// Remove deletes a package's manifest (unlocking it first).
func (s *Store) Remove(pkg, arch string) error {
	dir, done, err := s.openDir()
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer done()
	name := ID(pkg, arch) + ".manifest"
	if _, err := dir.Set(name, fsattr.Ident{}, fsattr.Immutable, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	if err := os.Remove(filepath.Join(s.Dir, name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("manifest: %w", err)
	}
	return nil
}

// openDir opens the store's directory for flag changes that never follow
// a symlink out of it; done closes it.
func (s *Store) openDir() (*fsattr.Dir, func(), error) {
	root, err := fsattr.OpenRoot(s.Dir)
	if err != nil {
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	dir, err := root.OpenDir("/")
	if err != nil {
		root.Close()
		return nil, nil, fmt.Errorf("manifest: %w", err)
	}
	return dir, func() { dir.Close(); root.Close() }, nil
}
