// Package evidence keeps what debseal found wrong with a sealed file just
// before a dpkg run was to replace it: one event per file (what was
// expected, what was there, when, before which run) and, within bounds, a
// copy of the file, under ROOT/var/lib/debseal/evidence. The audit reports
// each event until an admin clears it.
//
// It does not decide what is tampered (pkg/seal does, before it unlocks
// anything), and it never opens a package file itself: the caller hands
// it a reader of the very inode it checked, opened without following
// symlinks. Everything it writes goes through pkg/confined, so a symlink
// planted at the evidence directory is an error, never followed.
package evidence

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"sort"
	"strings"
	"time"

	"github.com/debseal/debseal/pkg/confined"
)

// Dir is where events and copies are kept under a root: ID.json for an
// event, ID.copy for its copy.
const Dir = confined.Own + "/evidence"

// Event is one tampered file found before a dpkg run.
type Event struct {
	ID      string    `json:"-"` // the file name without .json
	Time    time.Time `json:"time"`
	Package string    `json:"package"`        // package ID, as dpkg names it
	Path    string    `json:"path"`           // as the package lists it
	Real    string    `json:"real,omitempty"` // on disk, when diverted
	Run     string    `json:"run,omitempty"`  // what dpkg was about to do
	// Type is what was found: "file", or "symlink", "fifo", "socket",
	// "character device", "block device", "directory".
	Type           string `json:"type"`
	Link           string `json:"link,omitempty"` // a symlink's target, as stored (never followed)
	Size           int64  `json:"size"`
	ExpectedMD5    string `json:"expected_md5,omitempty"` // hex, from dpkg's md5sums
	ActualMD5      string `json:"actual_md5,omitempty"`
	ExpectedSHA256 string `json:"expected_sha256,omitempty"` // hex, from debseal's manifest
	ActualSHA256   string `json:"actual_sha256,omitempty"`
	// Copy is the name of the copy in Dir, and CopySHA256 the SHA-256 of
	// what was written there; NoCopy says why there is none.
	Copy       string `json:"copy,omitempty"`
	CopySHA256 string `json:"copy_sha256,omitempty"`
	NoCopy     string `json:"no_copy,omitempty"`
}

// key identifies what was found, so that the same tampered file met by
// run after run (a refused upgrade retried) is recorded once.
func (e *Event) key() string {
	return strings.Join([]string{e.Package, e.Path, e.Type, e.Link, fmt.Sprint(e.Size), e.ActualMD5, e.ActualSHA256}, "\x00")
}

// Expected and Actual describe the event in the audit's terms: the
// digests or the type that differ.
func (e *Event) Expected() string {
	if e.Type != "file" {
		return "a regular file"
	}
	return digests(e.ExpectedMD5, e.ExpectedSHA256)
}

// Actual: see Expected.
func (e *Event) Actual() string {
	switch {
	case e.Type == "symlink":
		return "a symlink to " + e.Link
	case e.Type != "file":
		return "a " + e.Type
	}
	return digests(e.ActualMD5, e.ActualSHA256)
}

func digests(md5, sha string) string {
	var parts []string
	if md5 != "" {
		parts = append(parts, "md5 "+md5)
	}
	if sha != "" {
		parts = append(parts, "sha256 "+sha)
	}
	return strings.Join(parts, ", ")
}

// Source is where the expectation came from, as the audit names sources.
func (e *Event) Source() string {
	switch {
	case e.ExpectedMD5 != "" && e.ExpectedSHA256 != "":
		return "md5sums, manifest"
	case e.ExpectedSHA256 != "":
		return "manifest"
	}
	return "md5sums"
}

// Where says where the event and its copy are (paths within the root).
func (e *Event) Where() string {
	s := "/" + Dir + "/" + e.ID + ".json"
	if e.Copy != "" {
		return s + ", copy /" + Dir + "/" + e.Copy
	}
	return s + ", no copy: " + e.NoCopy
}

// Store keeps events under one root, with copies bounded in size.
type Store struct {
	Root string
	// MaxFile is the biggest file copied; MaxTotal bounds every copy kept
	// together. 0 keeps no copy.
	MaxFile, MaxTotal int64
	Now               func() time.Time // nil: time.Now
}

// Keep records ev. When it is a regular file, open gives its content (the
// very inode that was checked: never a symlink, device or FIFO) and a copy
// is kept if it fits the bounds; otherwise the event says why there is
// none. An event already recorded for the same finding (same package,
// path and content) is returned as it is, with isNew false, and nothing
// is written. A failure to copy is not an error (the event records it);
// the error is about the event itself, which could not be written.
func (s *Store) Keep(ev Event, open func() (io.ReadCloser, error)) (kept Event, isNew bool, err error) {
	r, err := confined.Open(s.Root)
	if err != nil {
		return ev, false, fmt.Errorf("evidence: %w", err)
	}
	defer r.Close()
	// A corrupt event is only not compared; an unusable directory (a
	// symlink planted there) keeps nothing.
	old, copied, _, err := list(r)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return ev, false, err
	}
	for _, o := range old {
		if o.key() == ev.key() {
			return o, false, nil
		}
	}
	now := time.Now
	if s.Now != nil {
		now = s.Now
	}
	ev.Time = now().UTC()
	ev.ID = newID(ev.Time, ev.Package, ev.Path)
	ev.Copy, ev.CopySHA256, ev.NoCopy = "", "", ""
	if err := r.MkdirAll(Dir, 0o700); err != nil {
		return ev, false, fmt.Errorf("evidence: %w", err)
	}
	s.copy(r, &ev, copied, open)
	b, err := json.MarshalIndent(&ev, "", "  ")
	if err != nil {
		return ev, false, fmt.Errorf("evidence: %w", err)
	}
	if err := r.WriteFileAtomic(Dir+"/"+ev.ID+".json", append(b, '\n'), 0o600); err != nil {
		if ev.Copy != "" {
			r.Remove(Dir + "/" + ev.Copy) // a copy no event names would only take room
		}
		return ev, false, fmt.Errorf("evidence: recording %s: %w", ev.Path, err)
	}
	return ev, true, nil
}

// copy keeps a copy of ev's file within the bounds, or says in ev.NoCopy
// why not. copied is what the copies kept already take.
func (s *Store) copy(r *confined.Root, ev *Event, copied int64, open func() (io.ReadCloser, error)) {
	room := min(s.MaxFile, s.MaxTotal-copied)
	switch {
	case ev.Type != "file":
		ev.NoCopy = "not a regular file"
		return
	case open == nil:
		ev.NoCopy = "no content to copy"
		return
	case s.MaxFile <= 0:
		ev.NoCopy = "evidence-max-file is 0"
		return
	case ev.Size > s.MaxFile:
		ev.NoCopy = fmt.Sprintf("%d bytes, more than evidence-max-file (%d)", ev.Size, s.MaxFile)
		return
	case ev.Size > room:
		ev.NoCopy = fmt.Sprintf("%d bytes, and the copies kept take %d of evidence-max-total (%d)", ev.Size, copied, s.MaxTotal)
		return
	}
	f, err := open()
	if err != nil {
		ev.NoCopy = fmt.Sprintf("cannot open it: %v", err)
		return
	}
	defer f.Close()
	h := sha256.New()
	name := ev.ID + ".copy"
	// The bound holds even if the file grew since it was checked.
	if _, err := r.WriteFrom(Dir+"/"+name, io.TeeReader(f, h), room, 0o600); err != nil {
		ev.NoCopy = fmt.Sprintf("copy failed: %v", err)
		return
	}
	ev.Copy, ev.CopySHA256 = name, hex.EncodeToString(h.Sum(nil))
}

// newID names an event: when it was found (sortable), and a hash of what.
func newID(t time.Time, pkg, p string) string {
	h := sha256.Sum256([]byte(pkg + "\x00" + p + "\x00" + t.Format(time.RFC3339Nano)))
	return t.Format("20060102T150405.000000000Z") + "-" + hex.EncodeToString(h[:4])
}

// List returns the events recorded under root, oldest first. An event
// file that cannot be read or parsed is an error naming it (the others
// are still returned); no evidence directory means no events.
func List(root string) ([]Event, []error) {
	r, err := confined.Open(root)
	if err != nil {
		return nil, []error{fmt.Errorf("evidence: %w", err)}
	}
	defer r.Close()
	evs, _, bad, err := list(r)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, []error{err}
	}
	return evs, bad
}

// list reads every event and adds up the size of the copies; err is the
// directory's, bad the events that cannot be read.
func list(r *confined.Root) (evs []Event, copied int64, bad []error, err error) {
	ents, err := r.ReadDir(Dir)
	if err != nil {
		return nil, 0, nil, fmt.Errorf("evidence: %w", err)
	}
	for _, e := range ents {
		switch {
		case strings.HasSuffix(e.Name, ".copy") && e.Info.IsRegular():
			copied += e.Info.Size
		case strings.HasSuffix(e.Name, ".json") && !strings.HasPrefix(e.Name, "."):
			ev, err := read(r, e.Name)
			if err != nil {
				bad = append(bad, err)
				continue
			}
			evs = append(evs, ev)
		}
	}
	sort.Slice(evs, func(i, j int) bool { return evs[i].ID < evs[j].ID })
	return evs, copied, bad, nil
}

func read(r *confined.Root, name string) (Event, error) {
	var ev Event
	b, err := r.ReadFile(Dir + "/" + name)
	if err != nil {
		return ev, fmt.Errorf("evidence: %w", err)
	}
	if err := json.Unmarshal(b, &ev); err != nil || ev.Package == "" || ev.Path == "" {
		if err == nil {
			err = errors.New("no package or path")
		}
		return ev, fmt.Errorf("evidence: %s is corrupt (%v): read it, then remove it", r.Join(Dir+"/"+name), err)
	}
	ev.ID = strings.TrimSuffix(name, ".json")
	return ev, nil
}

// ErrUnknown: Clear was given an ID that names no event.
var ErrUnknown = errors.New("evidence: no such event")

// Clear removes the events ids and their copies; with no ids, every
// event, every copy and whatever else is in the directory (an orphan
// copy, a corrupt event). It returns what it removed (events by ID).
func Clear(root string, ids []string) ([]string, error) {
	r, err := confined.Open(root)
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	defer r.Close()
	ents, err := r.ReadDir(Dir)
	if errors.Is(err, fs.ErrNotExist) {
		if len(ids) > 0 {
			return nil, fmt.Errorf("%w: %s", ErrUnknown, ids[0])
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("evidence: %w", err)
	}
	want := map[string]bool{}
	for _, id := range ids {
		if id == "" || strings.ContainsAny(id, "/\x00") || id == "." || id == ".." {
			return nil, fmt.Errorf("%w: %q", ErrUnknown, id)
		}
		want[id] = true
	}
	present := map[string]bool{}
	for _, e := range ents {
		if id, ok := strings.CutSuffix(e.Name, ".json"); ok {
			present[id] = true
		}
	}
	for id := range want {
		if !present[id] {
			return nil, fmt.Errorf("%w: %s (debseal evidence list shows them)", ErrUnknown, id)
		}
	}
	var removed []string
	var errs []error
	for _, e := range ents {
		if e.Info.IsDir() {
			continue
		}
		stem := strings.TrimSuffix(strings.TrimSuffix(e.Name, ".json"), ".copy")
		if len(want) > 0 && !want[stem] {
			continue
		}
		if err := r.Remove(path.Join(Dir, e.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, fmt.Errorf("evidence: %w", err))
			continue
		}
		if strings.HasSuffix(e.Name, ".json") {
			removed = append(removed, stem)
		}
	}
	return removed, errors.Join(errs...)
}
