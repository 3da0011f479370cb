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
	"time"

	"github.com/debseal/debseal/pkg/confined"
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

// newState is the state of a system nothing was sealed on.
func newState() *State {
	return &State{Except: map[string]bool{}, Pkgs: map[string]bool{}}
}

// Debseal's own files under a root (pkg/confined resolves them: no
// symlink below confined.Own is ever followed).
const (
	stateFile   = confined.Own + "/sealed"
	pendingFile = confined.Own + "/pending"
	syncFile    = confined.Own + "/synced"
	lockFile    = confined.Own + "/lock"
	journalDir  = confined.Own + "/journal"
)

// openRoot opens root for debseal's own files.
func openRoot(root string) (*confined.Root, error) {
	r, err := confined.Open(root)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return r, nil
}

// LoadState reads the state; a missing file means nothing is sealed.
func LoadState(root string) (*State, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	p := r.Join(stateFile)
	b, err := r.ReadFile(stateFile)
	if errors.Is(err, fs.ErrNotExist) {
		return newState(), nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	paras, err := deb822.ReadAll(bytes.NewReader(b), p)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	s := newState()
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
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if old, err := r.ReadFile(stateFile); err == nil && string(old) == b.String() {
		return nil // unchanged: a no-op lock writes nothing
	}
	if err := r.WriteFileAtomic(stateFile, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
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

// WriteFileAtomic writes data to path (a host path) through a temporary
// file in the same directory, fsyncs it, renames it into place and fsyncs
// the directory, so that after a crash the file is either the old or the
// new one. A symlink, FIFO or device at path is refused, never followed
// or opened. Files under a --root are written with confined.WriteFile
// (root, path within it) instead, which also resolves the directories
// inside the root.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if err := confined.WriteFile("/", abs, data, perm); err != nil {
		return fmt.Errorf("seal: %w", err)
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
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	var errs []error
	var walk func(dir string)
	walk = func(dir string) {
		ents, err := r.ReadDir(dir)
		if err != nil {
			if !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, fmt.Errorf("seal: %w", err))
			}
			return
		}
		d, err := r.OpenDir(dir)
		if err != nil {
			errs = append(errs, fmt.Errorf("seal: %w", err))
			return
		}
		defer d.Close()
		for _, e := range ents {
			if e.Info.IsDir() {
				walk(dir + "/" + e.Name)
			}
			if !e.Info.IsDir() && !e.Info.IsRegular() {
				continue
			}
			for _, fl := range []uint32{fsattr.Immutable, fsattr.AppendOnly} {
				if _, err := d.Set(e.Name, e.Info.Ident, fl, false); err != nil && !errors.Is(err, fsattr.ErrNotSupported) {
					errs = append(errs, err)
				}
			}
		}
	}
	walk(confined.Own)
	return errors.Join(errs...)
}

// Pending packages: sealed packages that were not configured when debseal
// last relocked, or whose relock failed. They are locked by the first End
// that finds them configured (and succeeds).

// Pending returns the sealed packages still to be locked.
func Pending(root string) ([]string, error) {
	m, err := loadPending(root)
	if err != nil {
		return nil, err
	}
	return sortedKeys(m), nil
}

func loadPending(root string) (map[string]bool, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.ReadFile(pendingFile)
	if errors.Is(err, fs.ErrNotExist) {
		return map[string]bool{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	m := map[string]bool{}
	for _, n := range strings.Fields(string(b)) {
		m[n] = true
	}
	return m, nil
}

func savePending(root string, old, now map[string]bool) error {
	if equalSets(old, now) {
		return nil
	}
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if len(now) == 0 {
		err = r.Remove(pendingFile)
		if errors.Is(err, fs.ErrNotExist) {
			err = nil
		}
	} else {
		err = r.WriteFileAtomic(pendingFile, []byte(strings.Join(sortedKeys(now), "\n")+"\n"), 0o644)
	}
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

func equalSets(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// The sync stamp: every package whose list dpkg rewrote after it is
// considered changed by the next End, so packages changed by a dpkg run
// debseal did not see (apt-hooks mode and a direct dpkg -i, a hook
// disabled for a while) are still relocked.

func (s *System) markSynced(t time.Time) error {
	r, err := openRoot(s.Root)
	if err != nil {
		return err
	}
	defer r.Close()
	err = r.Chtimes(syncFile, t, t)
	if errors.Is(err, fs.ErrNotExist) {
		if err = r.WriteFileAtomic(syncFile, nil, 0o644); err == nil {
			err = r.Chtimes(syncFile, t, t)
		}
	}
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

// MarkSynced records that every package is locked as it should be now
// (lock --all does).
func (s *System) MarkSynced() error { return s.markSynced(time.Now()) }

// changedSinceSync returns the names of packages whose list changed after
// the last sync (all sealed packages when there was none).
func (s *System) changedSinceSync() ([]string, error) {
	r, err := openRoot(s.Root)
	if err != nil {
		return nil, err
	}
	fi, err := r.Lstat(syncFile)
	r.Close()
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // never synced: lock --all has not run since sealing
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	if !fi.IsRegular() {
		return nil, fmt.Errorf("seal: %s: %w", r.Join(syncFile), confined.ErrNotRegular)
	}
	pkgs, err := s.DB.ListsChangedAfter(time.Unix(0, fi.Mtime))
	if err != nil {
		// No info directory: no list to compare, as when each list
		// cannot be examined (Plan reports the packages' lists).
		return nil, nil
	}
	out := make([]string, len(pkgs))
	for i, p := range pkgs {
		out[i] = p.Name
	}
	return out, nil
}
