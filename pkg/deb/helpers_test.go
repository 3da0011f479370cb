package deb

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/testutil"
)

// fixture returns the path of a committed fixture.
func fixture(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(testutil.RepoRoot(t), "testdata", "deb", name)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fixtures lists the committed well-formed fixtures.
func fixtures(t testing.TB) []string {
	t.Helper()
	m, err := filepath.Glob(fixture(t, "fixture_*.deb"))
	if err != nil || len(m) == 0 {
		t.Fatalf("no fixtures under testdata/deb (%v)", err)
	}
	return m
}

// arMember is one member for buildAr. size and mode override the header
// fields when set, to build malformed archives.
type arMember struct {
	name string
	data []byte
	size string
	mode string
}

// buildAr writes an ar archive the way dpkg-deb does.
func buildAr(ms ...arMember) []byte {
	var b bytes.Buffer
	b.WriteString(arMagic)
	for _, m := range ms {
		size := m.size
		if size == "" {
			size = strconv.Itoa(len(m.data))
		}
		mode := m.mode
		if mode == "" {
			mode = "100644"
		}
		fmt.Fprintf(&b, "%-16s%-12d%-6d%-6d%-8s%-10s`\n", m.name, 1700000000, 0, 0, mode, size)
		b.Write(m.data)
		if len(m.data)%2 == 1 {
			b.WriteByte('\n')
		}
	}
	return b.Bytes()
}

// tarEntry is one entry for makeTar.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func file(name, body string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(body)), ModTime: time.Unix(1700000000, 0), Format: tar.FormatGNU}, body}
}

func dir(name string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755, ModTime: time.Unix(1700000000, 0), Format: tar.FormatGNU}, ""}
}

func link(typ byte, name, target string) tarEntry {
	return tarEntry{tar.Header{Name: name, Typeflag: typ, Linkname: target, Mode: 0o777, ModTime: time.Unix(1700000000, 0), Format: tar.FormatGNU}, ""}
}

func makeTar(t testing.TB, es ...tarEntry) []byte {
	t.Helper()
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, e := range es {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatalf("tar header %q: %v", h.Name, err)
		}
		if _, err := tw.Write([]byte(e.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func gz(t testing.TB, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	w := gzip.NewWriter(&out)
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

const testControl = "Package: hostile\nVersion: 1.0\nArchitecture: all\n"

// controlTarGz is a minimal control member.
func controlTarGz(t testing.TB) []byte {
	return gz(t, makeTar(t, dir("./"), file("./control", testControl)))
}

// debWithData builds a .deb whose data member is data.tar.gz of es.
func debWithData(t testing.TB, es ...tarEntry) []byte {
	return buildAr(
		arMember{name: "debian-binary", data: []byte("2.0\n")},
		arMember{name: "control.tar.gz", data: controlTarGz(t)},
		arMember{name: "data.tar.gz", data: gz(t, makeTar(t, es...))},
	)
}

// run runs a command and returns its stdout; it fails the test on error.
func run(t testing.TB, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// cacheDir is where real .debs are downloaded and kept between runs.
func cacheDir(t testing.TB) string {
	t.Helper()
	d := os.Getenv("DEBSEAL_TESTCACHE")
	if d == "" {
		d = "/var/tmp/debseal-testcache"
	}
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

var aptMu sync.Mutex

// realDeb returns a Debian package fetched with apt-get download into the
// cache directory (reused when already there). Without network or apt
// lists it skips, which fails under CI=true.
func realDeb(t testing.TB, pkg string) string {
	t.Helper()
	aptMu.Lock()
	defer aptMu.Unlock()
	dir := cacheDir(t)
	find := func() string {
		m, _ := filepath.Glob(filepath.Join(dir, pkg+"_*.deb"))
		if len(m) == 0 {
			return ""
		}
		return m[len(m)-1]
	}
	if p := find(); p != "" {
		return p
	}
	testutil.RequireCommand(t, "apt-get")
	download := func() ([]byte, error) {
		cmd := exec.Command("apt-get", "download", "-q", "-o", "APT::Sandbox::User=root", pkg)
		cmd.Dir = dir
		return cmd.CombinedOutput()
	}
	out, err := download()
	if err != nil && os.Geteuid() == 0 {
		// A fresh machine may have no package lists yet.
		if uout, uerr := exec.Command("apt-get", "update", "-q").CombinedOutput(); uerr == nil {
			out, err = download()
		} else {
			out = append(out, uout...)
		}
	}
	if err != nil {
		testutil.Skip(t, "apt-get download %s failed (no network?): %v\n%s", pkg, err, out)
	}
	p := find()
	if p == "" {
		t.Fatalf("apt-get download %s left no %s_*.deb in %s", pkg, pkg, dir)
	}
	return p
}

// fuzzSeeds are the fixtures small enough to seed fuzzers with: the
// fuzzer minimises every new input it finds, which takes up to a minute
// per input for tens of kilobytes (fixture_none.deb, the bomb).
func fuzzSeeds(t testing.TB) [][]byte {
	var seeds [][]byte
	for _, p := range fixtures(t) {
		if b := readFixture(t, filepath.Base(p)); len(b) <= 8<<10 {
			seeds = append(seeds, b)
		}
	}
	return seeds
}
