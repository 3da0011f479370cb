package seal

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/confined"
)

// Process is the process a transaction belongs to: while it runs, the
// transaction is in progress; once it is gone, whatever it left unlocked
// is recovered.
type Process struct {
	Pid       int    `json:"pid"`
	StartTime uint64 `json:"start_time"` // /proc/<pid>/stat field 22: tells a recycled pid apart
	Comm      string `json:"comm,omitempty"`
	Via       string `json:"via"` // dpkg-hook, apt-hook, wrapper, command
}

func (o Process) key() string { return fmt.Sprintf("%s-%d-%d", o.Via, o.Pid, o.StartTime) }

// Listed is a non-directory path a package listed before the run.
type Listed struct {
	Pkg  string `json:"pkg"`
	Path string `json:"path"`
	Real string `json:"real,omitempty"` // when diverted
}

// Entry is an inode debseal unlocked, as it was before.
type Entry struct {
	Path  string   `json:"path"` // real path
	Dev   uint64   `json:"dev"`
	Ino   uint64   `json:"ino"`
	Size  int64    `json:"size"`
	Mtime int64    `json:"mtime"`
	Pkgs  []string `json:"pkgs,omitempty"` // the packages that listed it (relocked after the run wherever the file went)
	// Good: the check before the unlock found it to be what debseal
	// knows (its md5sums and manifest).
	Good bool `json:"good,omitempty"`
}

// Journal is the durable record of one transaction: written before any
// file is unlocked, removed after the relock. A journal whose owner is gone
// is stale and gets recovered by the next debseal run.
type Journal struct {
	Version     int       `json:"version"`
	Owner       Process   `json:"owner"`
	Created     time.Time `json:"created"`
	Request     Request   `json:"request"`
	All         bool      `json:"all,omitempty"`    // everything sealed was unlocked
	Reason      string    `json:"reason,omitempty"` // why the scope is everything
	Packages    []string  `json:"packages"`         // package IDs whose files were unlocked
	NewPackages []string  `json:"new_packages,omitempty"`
	Debs        []DebRef  `json:"debs,omitempty"`
	// Arches are the architectures of the packages and archives of the
	// run: a purge drops the package from dpkg's database, and End still
	// needs its architecture to forget its manifest.
	Arches     []string `json:"arches,omitempty"`
	Before     []Listed `json:"before,omitempty"` // old files of packages being replaced or removed
	Unlocked   []Entry  `json:"unlocked"`
	path       string   // on the host, for messages
	root, name string   // where it is stored: the root, the path within it
}

// DebRef names an archive of the transaction and its package.
type DebRef struct {
	Path    string `json:"path"`
	Package string `json:"package"`
	Arch    string `json:"arch,omitempty"`
}

// save writes the journal durably (fsync of file and directory) when sync
// is set: a transaction that unlocked nothing needs no durability.
func (j *Journal) save(root string, sync bool) error {
	b, err := json.Marshal(j)
	if err != nil {
		return fmt.Errorf("seal: journal: %w", err)
	}
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	name := journalDir + "/" + j.Owner.key() + ".json"
	j.path = r.Join(name)
	if err := r.MkdirAll(journalDir, 0o700); err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	if sync {
		err = r.WriteFileAtomic(name, append(b, '\n'), 0o600)
	} else {
		err = r.ReplaceFile(name, append(b, '\n'), 0o600)
	}
	if err != nil {
		return fmt.Errorf("seal: %w", err)
	}
	j.root, j.name = root, name
	return nil
}

// remove deletes the journal once its transaction is complete.
func (j *Journal) remove() error {
	if j.name == "" {
		return nil
	}
	r, err := openRoot(j.root)
	if err != nil {
		return err
	}
	defer r.Close()
	if err := r.Remove(j.name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("seal: %w", err)
	}
	return nil
}

// merge adds what an earlier journal of the same owner recorded, so that
// nothing it unlocked is forgotten.
func (j *Journal) merge(old *Journal) {
	j.All = j.All || old.All
	if j.Reason == "" {
		j.Reason = old.Reason
	}
	j.Packages = unionStrings(old.Packages, j.Packages)
	j.NewPackages = unionStrings(old.NewPackages, j.NewPackages)
	j.Arches = unionStrings(old.Arches, j.Arches)
	j.Debs = appendMissing(j.Debs, old.Debs, func(d DebRef) DebRef { return d })
	j.Before = appendMissing(j.Before, old.Before, func(l Listed) Listed { return l })
	j.Unlocked = appendMissing(j.Unlocked, old.Unlocked, func(e Entry) [2]uint64 { return [2]uint64{e.Dev, e.Ino} })
	if old.Created.Before(j.Created) {
		j.Created = old.Created
	}
}

// appendMissing appends the elements of more whose key is not in dst yet.
func appendMissing[T any, K comparable](dst, more []T, key func(T) K) []T {
	seen := make(map[K]bool, len(dst))
	for _, v := range dst {
		seen[key(v)] = true
	}
	for _, v := range more {
		if k := key(v); !seen[k] {
			seen[k] = true
			dst = append(dst, v)
		}
	}
	return dst
}

func unionStrings(a, b []string) []string {
	m := map[string]bool{}
	for _, s := range a {
		m[s] = true
	}
	for _, s := range b {
		m[s] = true
	}
	return sortedKeys(m)
}

// Path is where the journal is stored.
func (j *Journal) Path() string { return j.path }

// Journals reads every journal under root, oldest first. A journal that
// cannot be parsed is returned as an error naming it (and is kept: it
// needs a human).
func Journals(root string) ([]*Journal, []error) {
	return journalsOf(root, nil)
}

// journalsOf is Journals for the owners want accepts, as each journal's
// file name gives its owner: a journal of another owner is not even read
// (the relock after a big unpack skips its own journal, hundreds of
// kilobytes of JSON, that way). A name that gives no owner is read, and
// every journal read is checked again against its recorded owner.
func journalsOf(root string, want func(Process) bool) ([]*Journal, []error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, []error{err}
	}
	defer r.Close()
	ents, err := r.ReadDir(journalDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{fmt.Errorf("seal: %w", err)}
	}
	var out []*Journal
	var errs []error
	for _, e := range ents {
		if !strings.HasSuffix(e.Name, ".json") {
			continue
		}
		if o, ok := ownerFromName(e.Name); ok && want != nil && !want(o) {
			continue
		}
		j, err := readJournal(r, root, journalDir+"/"+e.Name)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if want != nil && !want(j.Owner) {
			continue
		}
		out = append(out, j)
	}
	sort.Slice(out, func(a, b int) bool { return out[a].Created.Before(out[b].Created) })
	return out, errs
}

// ownerFromName is the owner a journal's file name (Process.key plus
// ".json") stands for, without Comm.
func ownerFromName(name string) (Process, bool) {
	stem, ok := strings.CutSuffix(name, ".json")
	if !ok {
		return Process{}, false
	}
	i := strings.LastIndexByte(stem, '-')
	if i < 0 {
		return Process{}, false
	}
	start, err := strconv.ParseUint(stem[i+1:], 10, 64)
	if err != nil {
		return Process{}, false
	}
	stem = stem[:i]
	i = strings.LastIndexByte(stem, '-')
	if i <= 0 {
		return Process{}, false
	}
	pid, err := strconv.Atoi(stem[i+1:])
	if err != nil || pid <= 0 {
		return Process{}, false
	}
	return Process{Via: stem[:i], Pid: pid, StartTime: start}, true
}

// readJournal reads and parses one journal (name within the root).
func readJournal(r *confined.Root, root, name string) (*Journal, error) {
	p := r.Join(name)
	b, err := r.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	j := &Journal{}
	if err := json.Unmarshal(b, j); err != nil || j.Version != journalVersion {
		if err == nil {
			err = fmt.Errorf("version %d, want %d", j.Version, journalVersion)
		}
		return nil, fmt.Errorf("seal: journal %s is corrupt (%v): check what it names, run debseal lock --all, then remove it", p, err)
	}
	j.path, j.root, j.name = p, root, name
	return j, nil
}

// findJournal returns the journal of owner, or nil.
func findJournal(root string, owner Process) (*Journal, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	j, err := readJournal(r, root, journalDir+"/"+owner.key()+".json")
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return j, err
}

const journalVersion = 1
