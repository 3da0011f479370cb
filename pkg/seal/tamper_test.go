package seal

import (
	"context"
	"crypto/md5"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/fsattr"
)

// kept is what System.Keep was given: the finding and the content read
// through the open function.
type kept struct {
	t       Tampered
	content string
	openErr error
}

// tamperWorld is a sealed system with one package p: /usr/bin/a and
// /usr/bin/b, with md5sums, relocked once by End (which records their
// stamps).
func tamperWorld(t *testing.T) (*world, *System, *[]kept) {
	t.Helper()
	sum := func(s string) string { return fmt.Sprintf("%x", md5.Sum([]byte(s))) }
	w := newWorld(t, []fakePkg{{name: "p", files: []string{"/usr", "/usr/bin", "/usr/bin/a", "/usr/bin/b"},
		md5sums: sum("a\n") + "  usr/bin/a\n" + sum("b\n") + "  usr/bin/b\n"}}, "", func(f *fakeFS) {
		f.file("/usr/bin/a", "a\n")
		f.file("/usr/bin/b", "b\n")
	}, nil)
	s := w.sealedSystem(t)
	var got []kept
	s.Keep = func(tp Tampered, open func() (io.ReadCloser, error)) (string, error) {
		k := kept{t: tp}
		if open != nil {
			f, err := open()
			if err == nil {
				b, _ := io.ReadAll(f)
				f.Close()
				k.content = string(b)
			}
			k.openErr = err
		}
		got = append(got, k)
		return "kept", nil
	}
	if err := AddPending(s.Root, []string{"p"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.End(context.Background(), nil); err != nil {
		t.Fatal(err)
	}
	if w.fs.nodes["/usr/bin/a"].flags&0x10 == 0 {
		t.Fatal("End did not lock /usr/bin/a")
	}
	return w, s, &got
}

// write changes a file as a root attacker would: clear the flag, write,
// set the flag again (ctime moves).
func (f *fakeFS) tamper(p, content string) {
	n := f.nodes[p]
	n.content = []byte(content)
	n.info.Size = int64(len(content))
	f.clock++
	n.info.Ctime, n.info.Mtime = f.clock, f.clock
}

// The check before an unlock: files the relock recorded and that stayed
// immutable are not read; a file whose ctime moved is read, and when it
// differs from its md5sums it is reported and handed to Keep with the
// content that was there; a symlink or FIFO where a file belongs is
// reported and never opened.
func TestCheckBeforeUnlock(t *testing.T) {
	tests := []struct {
		name     string
		change   func(w *world)
		read     int
		tampered string // the path reported, "" for none
		content  string // what Keep could read
		noOpen   bool
	}{
		{name: "untouched", change: func(*world) {}, read: 0},
		{name: "touched, same content", change: func(w *world) { w.fs.tamper("/usr/bin/a", "a\n") }, read: 1},
		{name: "tampered", change: func(w *world) { w.fs.tamper("/usr/bin/a", "evil\n") }, read: 1, tampered: "/usr/bin/a", content: "evil\n"},
		{name: "tampered, flag left off", change: func(w *world) {
			w.fs.tamper("/usr/bin/b", "evil\n")
			w.fs.nodes["/usr/bin/b"].flags = 0
		}, read: 1, tampered: "/usr/bin/b", content: "evil\n"},
		{name: "tampered, stamps forged but not ctime", change: func(w *world) {
			n := w.fs.nodes["/usr/bin/a"]
			size, mtime := n.info.Size, n.info.Mtime
			w.fs.tamper("/usr/bin/a", "e\n")
			n.info.Size, n.info.Mtime = size, mtime
		}, read: 1, tampered: "/usr/bin/a", content: "e\n"},
		{name: "a symlink to a host file", change: func(w *world) {
			w.fs.add("/usr/bin/a", 0o120777, 1, "/etc/shadow")
		}, read: 0, tampered: "/usr/bin/a", noOpen: true},
		{name: "a FIFO", change: func(w *world) {
			w.fs.add("/usr/bin/b", 0o010644, 1, "")
		}, read: 0, tampered: "/usr/bin/b", noOpen: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, s, got := tamperWorld(t)
			tt.change(w)
			rep, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"})
			if err != nil {
				t.Fatal(err)
			}
			if rep.Read != tt.read || rep.Checked != 2 {
				t.Errorf("Begin checked %d files and read %d, want 2 and %d", rep.Checked, rep.Read, tt.read)
			}
			if len(rep.CheckErrors) > 0 {
				t.Errorf("check errors: %v", rep.CheckErrors)
			}
			if tt.tampered == "" {
				if len(rep.Tampered) != 0 || len(*got) != 0 {
					t.Errorf("tampered %v, kept %v; want none", rep.Tampered, *got)
				}
				return
			}
			if len(rep.Tampered) != 1 || rep.Tampered[0].Owner.Real != tt.tampered || rep.Tampered[0].Evidence != "kept" {
				t.Fatalf("tampered %v, want %s with its evidence", rep.Tampered, tt.tampered)
			}
			if len(*got) != 1 {
				t.Fatalf("Keep called %d times, want once", len(*got))
			}
			k := (*got)[0]
			switch {
			case tt.noOpen && k.content != "":
				t.Errorf("Keep could read %q from a file that is not a regular one", k.content)
			case !tt.noOpen && (k.openErr != nil || k.content != tt.content):
				t.Errorf("Keep read %q (%v), want %q", k.content, k.openErr, tt.content)
			}
			if tt.name == "a symlink to a host file" && (k.t.Link != "/etc/shadow" || !strings.Contains(k.t.String(), "symlink to /etc/shadow")) {
				t.Errorf("symlink reported as %q (link %q)", k.t, k.t.Link)
			}
			// Not refused: the run goes on, and what was checked is unlocked.
			if rep.Journal == nil || rep.Unlocked == 0 {
				t.Errorf("Begin without refuse-tampered-upgrade unlocked %d files, journal %v", rep.Unlocked, rep.Journal)
			}
		})
	}
}

// With refuse-tampered-upgrade, a tampered file stops Begin before
// anything is unlocked or journaled, and the evidence is kept all the
// same.
func TestBeginRefusesTampered(t *testing.T) {
	w, s, got := tamperWorld(t)
	s.Policy.RefuseTampered = true
	w.fs.tamper("/usr/bin/a", "evil\n")
	sets := w.fs.sets
	rep, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"})
	var te *TamperedError
	if !errors.Is(err, ErrTampered) || !errors.As(err, &te) || len(te.Files) != 1 || !strings.Contains(err.Error(), "/usr/bin/a (package p)") {
		t.Fatalf("Begin = %v, want a TamperedError naming /usr/bin/a", err)
	}
	if w.fs.sets != sets || rep.Journal != nil {
		t.Errorf("a refused Begin changed %d flags, journal %v", w.fs.sets-sets, rep.Journal)
	}
	if js, _ := filepath.Glob(filepath.Join(s.Root, journalDir, "*")); len(js) != 0 {
		t.Errorf("a refused Begin left journals %v", js)
	}
	if len(*got) != 1 || (*got)[0].content != "evil\n" {
		t.Errorf("evidence kept %v, want the tampered content", *got)
	}
	// Untampered, the same policy lets the run go.
	w.fs.tamper("/usr/bin/a", "a\n")
	if _, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"}); err != nil {
		t.Errorf("Begin after the file was put back = %v", err)
	}
}

// After a run that left a verified file alone, End records it again with
// its new stamps: the next check does not read it. A file dpkg wrote is
// verified by End and recorded too.
func TestEndRecordsStamps(t *testing.T) {
	w, s, _ := tamperWorld(t)
	ctx := context.Background()
	owner := Process{Pid: 1, StartTime: 1, Via: "wrapper"}
	for round := 0; round < 2; round++ {
		rep, err := s.Begin(ctx, Request{Remove: []string{"p"}}, owner)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Read != 0 {
			t.Errorf("round %d: the check read %d files, want 0", round, rep.Read)
		}
		// dpkg's run: b is replaced by a new inode with the same content.
		w.fs.file("/usr/bin/b", "b\n")
		if _, err := s.End(ctx, rep.Journal); err != nil {
			t.Fatal(err)
		}
	}
	// A record that does not parse is ignored: the files are read.
	if err := writeRaw(s.Root, stampsDir+"/p_amd64", []byte("junk")); err != nil {
		t.Fatal(err)
	}
	rep, err := s.Begin(ctx, Request{Remove: []string{"p"}}, owner)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Read != 2 || len(rep.Tampered) != 0 || len(rep.CheckErrors) != 0 {
		t.Errorf("with a damaged record: read %d, tampered %v, errors %v; want 2, none, none", rep.Read, rep.Tampered, rep.CheckErrors)
	}
}

func writeRaw(root, name string, b []byte) error {
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.WriteFileAtomic(name, b, 0o600)
}

func TestStampsRoundTrip(t *testing.T) {
	recs := []stamp{{Size: 3, Mtime: 4, Ctime: 5}, {Size: 1 << 40, Mtime: -1, Ctime: 1 << 62}}
	recs[0].Dev, recs[0].Ino, recs[1].Dev, recs[1].Ino = 9, 8, 1, 2
	b := encodeStamps(append([]stamp(nil), recs...))
	got, err := decodeStamps(b)
	if err != nil || len(got) != 2 || got[recs[0].Ident] != recs[0] || got[recs[1].Ident] != recs[1] {
		t.Fatalf("decode(encode()) = %v, %v", got, err)
	}
	for _, bad := range [][]byte{nil, b[:len(b)-1], append(append([]byte{}, b[:20]...), b[21:]...), append([]byte("debseal-stamps 2\n"), b[17:]...)} {
		if _, err := decodeStamps(bad); !errors.Is(err, errStampsCorrupt) {
			t.Errorf("decode(%d damaged bytes) = %v, want errStampsCorrupt", len(bad), err)
		}
	}
	b[len(stampsMagic)] ^= 1
	if _, err := decodeStamps(b); !errors.Is(err, errStampsCorrupt) {
		t.Errorf("decode(a flipped bit) = %v, want errStampsCorrupt", err)
	}
}

// Without a relock's record, digests read earlier (the audit's cache)
// vouch for a file that matches its expectations; one whose cached
// digests differ is read all the same, and reported with what it holds
// now.
func TestCheckUsesCachedDigests(t *testing.T) {
	sum := func(s string) Known {
		return Known{MD5: md5.Sum([]byte(s)), HasMD5: true}
	}
	tests := []struct {
		name     string
		cached   map[string]Known // by path
		bytes    bool             // the lookup is offered at all
		read     int
		tampered bool
	}{
		{name: "no cache", bytes: false, read: 2},
		{name: "both cached", bytes: true, cached: map[string]Known{"/usr/bin/a": sum("a\n"), "/usr/bin/b": sum("b\n")}, read: 0},
		{name: "one cached", bytes: true, cached: map[string]Known{"/usr/bin/a": sum("a\n")}, read: 1},
		{name: "cached but differs", bytes: true, cached: map[string]Known{"/usr/bin/a": sum("x\n"), "/usr/bin/b": sum("b\n")}, read: 1},
		{name: "cached without the digest expected", bytes: true, cached: map[string]Known{"/usr/bin/a": {}, "/usr/bin/b": sum("b\n")}, read: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, s, _ := tamperWorld(t)
			if err := writeRaw(s.Root, stampsDir+"/p_amd64", nil); err != nil { // no record vouches
				t.Fatal(err)
			}
			var asked int64
			s.Cached = func(bytes int64) func(fsattr.Info) (Known, bool) {
				asked = bytes
				if !tt.bytes {
					return nil
				}
				return func(info fsattr.Info) (Known, bool) {
					for p, n := range w.fs.nodes {
						if n.info.Ident == info.Ident {
							k, ok := tt.cached[p]
							return k, ok
						}
					}
					return Known{}, false
				}
			}
			rep, err := s.Begin(context.Background(), Request{Remove: []string{"p"}}, Process{Pid: 1, StartTime: 1, Via: "wrapper"})
			if err != nil {
				t.Fatal(err)
			}
			if asked != 4+2*4096 {
				t.Errorf("Cached was offered %d bytes to read, want the files' 4 and a page each", asked)
			}
			if rep.Read != tt.read || len(rep.Tampered) != 0 {
				t.Errorf("read %d files, tampered %v; want %d read, none tampered", rep.Read, rep.Tampered, tt.read)
			}
		})
	}
}
