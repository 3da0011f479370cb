package deb

import (
	"archive/tar"
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/ulikunitz/xz"
)

// fuzzOptions keep each run small (decompressors run instrumented, and
// slowly, while fuzzing): the limits are part of what is tested.
var fuzzOptions = Options{Hashes: true, MaxDataSize: 128 << 10, MaxControlSize: 64 << 10, MaxExpansion: 200, Concurrency: 2}

// checkFuzzError: any failure must be an *Error matching a sentinel.
func checkFuzzError(t *testing.T, what string, err error) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) || !(errors.Is(err, ErrFormat) || errors.Is(err, ErrUnsupported) || errors.Is(err, ErrLimit)) {
		t.Fatalf("%s = %v (%T), want an *Error matching ErrFormat, ErrUnsupported or ErrLimit", what, err, err)
	}
	if !strings.HasPrefix(err.Error(), "deb: fuzz.deb") {
		t.Fatalf("%s = %q, want it to name the file", what, err)
	}
}

func cleanAbs(p string) bool {
	c, err := debfmt.CleanPath(p)
	return err == nil && c == p
}

// FuzzReadInfo: ReadInfo never panics, fails only with classified errors,
// and what it returns is consistent.
func FuzzReadInfo(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Add(buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}, arMember{name: "control.tar", data: hugeTarHeader(f, "./control", 1<<40)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		info, err := ReadInfoOptions(bytes.NewReader(b), "fuzz.deb", fuzzOptions)
		if err != nil {
			checkFuzzError(t, "ReadInfo", err)
			return
		}
		if info.Package == "" || info.Control == nil || info.DataMember == "" || len(info.ControlEntries) != len(info.ControlFiles) {
			t.Fatalf("ReadInfo = %+v, want Package, Control, DataMember and one ControlEntry per file", info)
		}
		for _, s := range info.MD5Sums {
			if !cleanAbs(s.Path) {
				t.Fatalf("md5sums path %q is not clean and absolute", s.Path)
			}
		}
		for _, c := range info.Conffiles {
			if !cleanAbs(c.Path) {
				t.Fatalf("conffile %q is not clean and absolute", c.Path)
			}
		}
		for name := range info.Scripts {
			if !strings.Contains(strings.Join(scriptNames, " "), name) {
				t.Fatalf("Scripts[%q]: not a maintainer script", name)
			}
		}
	})
}

// FuzzWalkData: WalkData never panics, fails only with classified errors,
// and every entry it reports is safe to use as a path.
func FuzzWalkData(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	// Hostile entries, for the fuzzer to mutate from.
	pax := file("./usr/pax", "x")
	pax.hdr.Format, pax.hdr.PAXRecords = tar.FormatPAX, map[string]string{"path": "./usr/pax"}
	f.Add(debWithData(f, dir("./"), file("./usr/../../etc/shadow", "x")))
	f.Add(debWithData(f, file("./a", "x"), link(tar.TypeLink, "./b", "../a"), link(tar.TypeSymlink, "./c", "/etc")))
	f.Add(debWithData(f, pax))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, seekable := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(b)
			if !seekable {
				r = nonSeekable{r}
			}
			err := WalkData(r, "fuzz.deb", fuzzOptions, func(e *Entry) error {
				if !cleanAbs(e.Path) {
					t.Fatalf("entry path %q is not clean and absolute", e.Path)
				}
				if e.Type == TypeHardlink && (!cleanAbs(e.Linkname) || e.Linkname == "/") {
					t.Fatalf("hard link %q to %q", e.Path, e.Linkname)
				}
				if e.Hashed != (e.Type == TypeFile) || e.Size < 0 {
					t.Fatalf("entry %+v", e)
				}
				return nil
			})
			if err != nil {
				checkFuzzError(t, "WalkData", err)
			}
		}
	})
}

// FuzzXZ checks the xz container parser and block scheduler alone, and
// against ulikunitz's own xz.Reader: when both decode a single stream,
// the outputs are the same.
func FuzzXZ(f *testing.F) {
	for _, name := range []string{"fixture_xz.deb", "fixture_xz-blocks.deb", "fixture_xz-blocks-nosize.deb", "fixture_xz-trailing-stream.deb"} {
		b := readFixture(f, name)
		for _, h := range arHeaders(f, b) {
			if strings.HasSuffix(h.Name, ".xz") {
				f.Add(b[h.Offset : h.Offset+h.Size])
			}
		}
	}
	// The same data with small dictionaries, single- and multi-block: the
	// reference decoder allocates each block's dictionary, so mutations of
	// these are compared quickly (8 MiB per block made runs crawl).
	for _, name := range []string{"fixture_xz.deb", "fixture_xz-blocks.deb"} {
		b := readFixture(f, name)
		for _, h := range arHeaders(f, b) {
			if !strings.HasSuffix(h.Name, ".xz") {
				continue
			}
			r, err := xz.NewReader(bytes.NewReader(b[h.Offset : h.Offset+h.Size]))
			if err != nil {
				f.Fatal(err)
			}
			data, err := io.ReadAll(r)
			if err != nil {
				f.Fatal(err)
			}
			for _, block := range []int64{1 << 20, 16 << 10} {
				var buf bytes.Buffer
				w, err := xz.WriterConfig{DictCap: 64 << 10, BlockSize: block}.NewWriter(&buf)
				if err != nil {
					f.Fatal(err)
				}
				w.Write(data)
				w.Close()
				f.Add(buf.Bytes())
			}
		}
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		x := newXZReader(bufio.NewReader(bytes.NewReader(b)), decodeParams{workers: 2, limit: 4 << 20, limitErr: func() error { return ErrLimit }})
		got, err := io.ReadAll(x)
		x.Close()
		if err != nil {
			if !errors.Is(err, ErrFormat) && !errors.Is(err, ErrUnsupported) && !errors.Is(err, ErrLimit) {
				t.Fatalf("xzReader: %v, want a classified error", err)
			}
			return
		}
		if x.maxDict > 1<<20 {
			return // the reference decoder would allocate it, per block
		}
		ref, err := xz.ReaderConfig{SingleStream: true}.NewReader(bytes.NewReader(b))
		if err != nil {
			return
		}
		want, err := io.ReadAll(io.LimitReader(ref, 8<<20))
		if err == nil && !bytes.Equal(got, want) {
			t.Fatalf("xzReader gave %d bytes, ulikunitz's xz.Reader %d different ones", len(got), len(want))
		}
	})
}
