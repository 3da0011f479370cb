package seal

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// What locks find about devices is merged into the record, and a device
// without fs-verity is news only the first time (the lock notes it once).
func TestRecordVerity(t *testing.T) {
	a, b := unix.Mkdev(254, 0), unix.Mkdev(8, 17)
	steps := []struct {
		found     map[uint64]bool
		wantNew   []uint64
		wantFile  string
		wantDevsM VerityDevices
	}{
		{found: map[uint64]bool{a: true, b: false}, wantNew: []uint64{b}, wantFile: "8:17 no\n254:0 yes\n"},
		{found: map[uint64]bool{b: false}, wantNew: nil, wantFile: "8:17 no\n254:0 yes\n"},
		{found: map[uint64]bool{}, wantNew: nil, wantFile: "8:17 no\n254:0 yes\n"},
		// The admin turned the feature on: the device takes it now.
		{found: map[uint64]bool{b: true}, wantNew: nil, wantFile: "8:17 yes\n254:0 yes\n"},
		// Another filesystem got the device number: news again.
		{found: map[uint64]bool{b: false}, wantNew: []uint64{b}, wantFile: "8:17 no\n254:0 yes\n"},
	}
	root := t.TempDir()
	if err := os.MkdirAll(StateDir(root), 0o755); err != nil {
		t.Fatal(err)
	}
	for i, st := range steps {
		newly, err := RecordVerity(root, &VeritySummary{Devices: st.found})
		if err != nil {
			t.Fatalf("step %d: %v", i, err)
		}
		if !reflect.DeepEqual(newly, st.wantNew) {
			t.Errorf("step %d: newly unsupported %v, want %v", i, newly, st.wantNew)
		}
		got, err := os.ReadFile(filepath.Join(StateDir(root), "verity"))
		if err != nil || string(got) != st.wantFile {
			t.Errorf("step %d: record %q (%v), want %q", i, got, err, st.wantFile)
		}
		devs, err := LoadVerityDevices(root)
		if err != nil || devs.format() != st.wantFile {
			t.Errorf("step %d: loaded %v (%v)", i, devs, err)
		}
	}
}

func TestParseVerityDevicesErrors(t *testing.T) {
	for _, in := range []string{"8:17\n", "8:17 maybe\n", "x:1 yes\n", "8:17  yes\n", "8 yes\n", "\n8:1 yes\n", "8:1 yes\n\n", "99999999999:1 yes\n"} {
		if _, err := parseVerityDevices(in, "/var/lib/debseal/verity"); err == nil || !strings.Contains(err.Error(), "/var/lib/debseal/verity:") {
			t.Errorf("parse(%q) = %v, want an error naming the file and line", in, err)
		}
	}
	if d, err := parseVerityDevices("", "f"); err != nil || len(d) != 0 {
		t.Errorf("empty record: %v %v", d, err)
	}
}

// Whatever parses formats back to the same bytes, and what is formatted
// parses back to the same devices.
func FuzzVerityDevices(f *testing.F) {
	f.Add("254:0 yes\n8:17 no\n")
	f.Add("")
	f.Add("0:0 yes\n")
	f.Fuzz(func(t *testing.T, in string) {
		d, err := parseVerityDevices(in, "fuzz")
		if err != nil {
			return
		}
		out := d.format()
		again, err := parseVerityDevices(out, "again")
		if err != nil || !reflect.DeepEqual(again, d) {
			t.Fatalf("round trip of %q: %q, %v", in, out, err)
		}
		if again.format() != out {
			t.Fatalf("format is not stable: %q then %q", out, again.format())
		}
	})
}
