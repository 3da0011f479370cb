package seen

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func batches(t *testing.T, root string) []string {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(root, Dir))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	return out
}

func TestLatestRecordWins(t *testing.T) {
	tests := []struct {
		name    string
		batches [][]Record
		ino     uint64
		want    Record
		found   bool
	}{
		{"one sighting", [][]Record{{{Dev: 1, Ino: 5, Time: 10, Event: Lock}}}, 5, Record{1, 5, 10, Lock}, true},
		{"a later sighting", [][]Record{{{1, 5, 10, Lock}}, {{1, 5, 20, Relock}}}, 5, Record{1, 5, 20, Relock}, true},
		{"batches read out of order", [][]Record{{{1, 5, 20, Relock}}, {{1, 5, 10, Lock}}}, 5, Record{1, 5, 20, Relock}, true},
		{"gone after the sighting", [][]Record{{{1, 5, 10, Lock}}, {{1, 5, 11, Gone}}}, 5, Record{1, 5, 11, Gone}, true},
		{"sighting after gone", [][]Record{{{1, 5, 11, Gone}}, {{1, 5, 12, Audit}}}, 5, Record{1, 5, 12, Audit}, true},
		{"gone wins a tie", [][]Record{{{1, 5, 10, Audit}}, {{1, 5, 10, Gone}}}, 5, Record{1, 5, 10, Gone}, true},
		{"one batch, two records", [][]Record{{{1, 5, 10, Lock}, {1, 5, 9, Gone}}}, 5, Record{1, 5, 10, Lock}, true},
		{"another device", [][]Record{{{2, 5, 10, Lock}}}, 5, Record{}, false},
		{"unknown", [][]Record{{{1, 6, 10, Lock}, {1, 4, 10, Lock}}}, 5, Record{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			for _, b := range tt.batches {
				if err := Write(root, b); err != nil {
					t.Fatal(err)
				}
			}
			l, errs := Load(root)
			if len(errs) > 0 {
				t.Fatal(errs)
			}
			got, ok := l.Lookup(1, tt.ino)
			if got != tt.want || ok != tt.found {
				t.Errorf("Lookup(1, %d) = %+v, %v; want %+v, %v", tt.ino, got, ok, tt.want, tt.found)
			}
		})
	}
}

func TestWriteNothingMakesNoBatch(t *testing.T) {
	root := t.TempDir()
	if err := Write(root, nil); err != nil {
		t.Fatal(err)
	}
	if b := batches(t, root); len(b) != 0 {
		t.Errorf("Write(nil) left %v", b)
	}
	if l, errs := Load(root); l.Len() != 0 || len(errs) != 0 {
		t.Errorf("Load of nothing = %d records, %v", l.Len(), errs)
	}
}

func TestCorruptBatchIsSkipped(t *testing.T) {
	tests := []struct {
		name   string
		mangle func([]byte) []byte
	}{
		{"flipped bit", func(b []byte) []byte { b[len(magic)+3] ^= 1; return b }},
		{"truncated", func(b []byte) []byte { return b[:len(b)-1] }},
		{"empty (a crash before the data reached the disk)", func([]byte) []byte { return nil }},
		{"another format", func(b []byte) []byte { return append([]byte("debseal-seen 9\n"), b[len(magic):]...) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			if err := Write(root, []Record{{1, 5, 10, Lock}}); err != nil {
				t.Fatal(err)
			}
			bad := filepath.Join(root, Dir, batches(t, root)[0])
			b, err := os.ReadFile(bad)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(bad, tt.mangle(b), 0o600); err != nil {
				t.Fatal(err)
			}
			if err := Write(root, []Record{{1, 6, 10, Relock}}); err != nil {
				t.Fatal(err)
			}
			l, errs := Load(root)
			if len(errs) != 1 || !errors.Is(errs[0], ErrCorrupt) || !strings.Contains(errs[0].Error(), bad) {
				t.Errorf("Load errors = %v, want one ErrCorrupt naming %s", errs, bad)
			}
			if _, ok := l.Lookup(1, 5); ok {
				t.Error("a record of the damaged batch was used")
			}
			if _, ok := l.Lookup(1, 6); !ok {
				t.Error("the good batch was not read")
			}
			// A full audit's fold removes the damaged batch with the rest.
			l.Add(Record{1, 6, 20, Audit})
			if err := l.Save(root, true); err != nil {
				t.Fatal(err)
			}
			if b := batches(t, root); len(b) != 1 {
				t.Fatalf("after the fold: %v, want one batch", b)
			}
			l, errs = Load(root)
			if r, ok := l.Lookup(1, 6); len(errs) > 0 || !ok || r.Event != Audit {
				t.Errorf("after the fold: %+v %v %v", r, ok, errs)
			}
		})
	}
}

func TestSaveFoldKeepsLaterBatches(t *testing.T) {
	root := t.TempDir()
	if err := Write(root, []Record{{1, 5, 10, Lock}, {1, 6, 10, Lock}}); err != nil {
		t.Fatal(err)
	}
	l, _ := Load(root)
	// A relock writes its batch while the audit runs.
	if err := Write(root, []Record{{1, 7, 30, Relock}}); err != nil {
		t.Fatal(err)
	}
	l.Add(Record{1, 5, 20, Audit}) // the audit only vouches for inode 5
	if err := l.Save(root, true); err != nil {
		t.Fatal(err)
	}
	l, errs := Load(root)
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	for _, tt := range []struct {
		ino  uint64
		want Event
		ok   bool
	}{{5, Audit, true}, {6, 0, false}, {7, Relock, true}} {
		if r, ok := l.Lookup(1, tt.ino); ok != tt.ok || ok && r.Event != tt.want {
			t.Errorf("after the fold, inode %d: %+v, %v; want %v, %v", tt.ino, r, ok, tt.want, tt.ok)
		}
	}
	// Without fold (an audit of some packages), every batch stays.
	n := len(batches(t, root))
	l.Add(Record{1, 8, 40, Audit})
	if err := l.Save(root, false); err != nil {
		t.Fatal(err)
	}
	if got := len(batches(t, root)); got != n+1 {
		t.Errorf("a partial save left %d batches, want %d", got, n+1)
	}
}

func TestWriteMergesPiledUpBatches(t *testing.T) {
	root := t.TempDir()
	for i := 0; i <= maxBatches; i++ {
		recs := []Record{{1, uint64(i), int64(i), Relock}}
		if i == maxBatches {
			recs = append(recs, Record{1, 0, int64(i), Gone})
		}
		if err := Write(root, recs); err != nil {
			t.Fatal(err)
		}
	}
	if b := batches(t, root); len(b) != 1 {
		t.Fatalf("%d batches after %d writes, want them merged into one", len(b), maxBatches+1)
	}
	l, errs := Load(root)
	if len(errs) > 0 || l.Len() != maxBatches+1 {
		t.Fatalf("merged log: %d inodes, %v; want %d", l.Len(), errs, maxBatches+1)
	}
	if r, _ := l.Lookup(1, 0); r.Event != Gone {
		t.Errorf("inode 0 after the merge: %+v, want its gone record kept", r)
	}
	if r, _ := l.Lookup(1, 7); r != (Record{1, 7, 7, Relock}) {
		t.Errorf("inode 7 after the merge: %+v", r)
	}
}

func TestBatchIsPrivate(t *testing.T) {
	root := t.TempDir()
	if err := Write(root, []Record{{1, 5, 10, Lock}}); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, Dir)
	st, err := os.Stat(dir)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("%s: %v %v, want 0700", dir, st.Mode(), err)
	}
	f := filepath.Join(dir, batches(t, root)[0])
	if st, err := os.Stat(f); err != nil || st.Mode().Perm() != 0o600 {
		t.Errorf("%s: %v %v, want 0600", f, st.Mode(), err)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(encode(nil))
	f.Add(encode([]Record{{1, 5, 10, Lock}, {1, 6, -1, Gone}, {^uint64(0), 7, 1 << 62, Audit}}))
	f.Add([]byte(magic))
	f.Add([]byte("debseal-seen 1\nshort"))
	f.Fuzz(func(t *testing.T, b []byte) {
		recs, err := decode(b, "fuzz")
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decode error %v is not ErrCorrupt", err)
			}
			return
		}
		if got := encode(recs); string(got) != string(b) {
			t.Fatalf("encode(decode(b)) differs from b:\n%x\n%x", got, b)
		}
	})
}
