package seal

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/debseal/debseal/pkg/deb822"
	"github.com/debseal/debseal/pkg/fsattr"
)

// StateDir is where debseal keeps its own state under a root.
func StateDir(root string) string { return filepath.Join(root, "var/lib/debseal") }

// State records which packages the admin wants sealed, so that after dpkg
// changes a package debseal relocks exactly what was locked before, and
// leaves alone what the admin unlocked on purpose.
type State struct {
	All    bool            // every package, except those in Except
	Except map[string]bool // package names unlocked on purpose (with All)
	Pkgs   map[string]bool // package names sealed one by one (without All)
}

// NewState is the state of a system nothing was sealed on.
func NewState() *State {
	return &State{Except: map[string]bool{}, Pkgs: map[string]bool{}}
}

func statePath(root string) string { return filepath.Join(StateDir(root), "sealed") }

// LoadState reads the state; a missing file means nothing is sealed.
func LoadState(root string) (*State, error) {
	p := statePath(root)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return NewState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	paras, err := deb822.ReadAll(bytes.NewReader(b), p)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	s := NewState()
	if len(paras) != 1 {
		return nil, fmt.Errorf("seal: %s: want one paragraph, found %d", p, len(paras))
	}
	para := paras[0]
	switch v := para.Value("Sealed"); v {
	case "all":
		s.All = true
		for _, n := range strings.Fields(para.Value("Except")) {
			s.Except[n] = true
		}
	case "packages":
		for _, n := range strings.Fields(para.Value("Packages")) {
			s.Pkgs[n] = true
		}
	case "none":
	default:
		return nil, fmt.Errorf("seal: %s:%d: Sealed: %q is not all, packages or none", p, para.Line, v)
	}
	return s, nil
}

// Save writes the state atomically and durably.
func (s *State) Save(root string) error {
	// Plain deb822 (which has no comments), read back with pkg/deb822.
	var b strings.Builder
	switch {
	case s.All:
		b.WriteString("Sealed: all\n")
		if len(s.Except) > 0 {
			b.WriteString("Except: " + strings.Join(sortedKeys(s.Except), " ") + "\n")
		}
	case len(s.Pkgs) > 0:
		b.WriteString("Sealed: packages\nPackages: " + strings.Join(sortedKeys(s.Pkgs), " ") + "\n")
	default:
		b.WriteString("Sealed: none\n")
	}
	if old, err := os.ReadFile(statePath(root)); err == nil && string(old) == b.String() {
		return nil // unchanged: a no-op lock writes nothing
	}
	return WriteFileAtomic(statePath(root), []byte(b.String()), 0o644)
}

// Sealed reports whether the package named name is to be kept locked.
func (s *State) Sealed(name string) bool {
	if s.All {
		return !s.Except[name]
	}
	return s.Pkgs[name]
}

// Any reports whether anything is sealed at all.
func (s *State) Any() bool { return s.All || len(s.Pkgs) > 0 }

// Lock records that names (or all packages) are to be kept locked.
func (s *State) Lock(names []string, all bool) {
	if all {
		s.All, s.Except, s.Pkgs = true, map[string]bool{}, map[string]bool{}
		return
	}
	for _, n := range names {
		if s.All {
			delete(s.Except, n)
		} else {
			s.Pkgs[n] = true
		}
	}
}

// Unlock records that names (or all packages) are unlocked on purpose.
func (s *State) Unlock(names []string, all bool) {
	if all {
		s.All, s.Except, s.Pkgs = false, map[string]bool{}, map[string]bool{}
		return
	}
	for _, n := range names {
		if s.All {
			s.Except[n] = true
		} else {
			delete(s.Pkgs, n)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// WriteFileAtomic writes data to path through a temporary file in the same
// directory, fsyncs it, renames it into place and fsyncs the directory, so
// that after a crash the file is either the old or the new one.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	tmp := f.Name()
	ok := false
	defer func() {
		if !ok {
			os.Remove(tmp)
		}
	}()
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("seal: write %s: %w", tmp, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("seal: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("seal: sync %s: %w", tmp, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	ok = true
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("seal: sync %s: %w", dir, err)
	}
	return nil
}

// AddPending records sealed packages that are not configured yet, so the
// first End that finds them configured locks them.
func AddPending(root string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	old, err := loadPending(root)
	if err != nil {
		return err
	}
	now := map[string]bool{}
	for n := range old {
		now[n] = true
	}
	for _, n := range names {
		now[n] = true
	}
	return savePending(root, old, now)
}

// UnlockStateDir clears the immutable and append-only flags of every file
// under debseal's own state directory (debseal locks its manifests), so
// that a purge can delete it.
func UnlockStateDir(root string) error {
	r, err := fsattr.OpenRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	var walk func(dir string)
	walk = func(dir string) {
		d, err := r.OpenDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
			return
		}
		defer d.Close()
		ents, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			errs = append(errs, err)
			return
		}
		for _, e := range ents {
			if e.IsDir() {
				walk(filepath.Join(dir, e.Name()))
			}
			if !e.IsDir() && !e.Type().IsRegular() {
				continue
			}
			for _, fl := range []uint32{fsattr.Immutable, fsattr.AppendOnly} {
				if _, err := d.Set(e.Name(), fsattr.Ident{}, fl, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
					errs = append(errs, err)
				}
			}
		}
	}
	walk("/var/lib/debseal")
	return errors.Join(errs...)
}
