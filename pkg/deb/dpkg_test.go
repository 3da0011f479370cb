package deb

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/debseal/debseal/pkg/deb822"
	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/debseal/debseal/pkg/testutil"
	"github.com/debseal/debseal/pkg/verity"
)

// These tests hold pkg/deb to what dpkg-deb says about the same file: the
// control fields (dpkg-deb -f), the control files (dpkg-deb -e and
// --ctrl-tarfile), and the data member (dpkg-deb --fsys-tarfile extracted
// by GNU tar as root, then walked and hashed; names from tar -tv).

func TestFixturesMatchDpkg(t *testing.T) {
	for _, p := range fixtures(t) {
		t.Run(filepath.Base(p), func(t *testing.T) {
			t.Parallel()
			compareWithDpkg(t, p)
		})
	}
}

// TestRealDebsMatchDpkg checks real Debian packages: coreutils (setuid-free
// but big), perl-base (hard links), tzdata (many symlinks, a config
// script), and perl-base repacked with a zstd data member (Debian's own
// are xz).
func TestRealDebsMatchDpkg(t *testing.T) {
	for _, pkg := range []string{"coreutils", "perl-base", "tzdata"} {
		t.Run(pkg, func(t *testing.T) {
			t.Parallel()
			compareWithDpkg(t, realDeb(t, pkg))
		})
	}
	t.Run("perl-base-zstd", func(t *testing.T) {
		t.Parallel()
		compareWithDpkg(t, repackZstd(t, realDeb(t, "perl-base")))
	})
}

// repackZstd rebuilds a .deb with its data member as data.tar.zst, in the
// cache directory (reused between runs).
func repackZstd(t *testing.T, src string) string {
	t.Helper()
	testutil.RequireCommand(t, "ar", "zstd", "dpkg-deb")
	out := filepath.Join(cacheDir(t), "zstd-"+filepath.Base(src))
	if _, err := os.Stat(out); err == nil {
		return out
	}
	dir := t.TempDir()
	for _, cmd := range [][]string{
		{"sh", "-c", `cd "$1" && ar x "$2" debian-binary && ar x "$2" $(ar t "$2" | grep ^control.tar)`, "sh", dir, src},
		{"sh", "-c", `dpkg-deb --fsys-tarfile "$1" | zstd -q -c >"$2/data.tar.zst"`, "sh", src, dir},
		{"sh", "-c", `cd "$1" && ar qcD "$2.tmp" debian-binary control.tar.* data.tar.zst && mv "$2.tmp" "$2"`, "sh", dir, out},
	} {
		run(t, cmd[0], cmd[1:]...)
	}
	return out
}

func compareWithDpkg(t *testing.T, path string) {
	t.Helper()
	testutil.RequireCommand(t, "dpkg-deb", "tar")
	if os.Geteuid() != 0 {
		testutil.Skip(t, "extracting with owners and setuid bits needs root")
	}
	info, err := ReadInfoFile(path)
	if err != nil {
		t.Fatalf("ReadInfoFile(%s) = %v", path, err)
	}
	compareControl(t, path, info)

	var entries []*Entry
	err = WalkDataFile(path, Options{Hashes: true}, func(e *Entry) error {
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		t.Fatalf("WalkDataFile(%s) = %v", path, err)
	}
	compareData(t, path, entries)

	// Walk does both in one pass and must agree.
	var n int
	info2, err := walkFile(path, Options{}, func(e *Entry) error {
		if e.Path != entries[n].Path || e.Hashed {
			t.Errorf("WalkFile entry %d = %q (hashed %v), want %q unhashed", n, e.Path, e.Hashed, entries[n].Path)
		}
		n++
		return nil
	})
	if err != nil || n != len(entries) || !reflect.DeepEqual(info2, info) {
		t.Errorf("WalkFile(%s) = %d entries, %v; want %d entries and the same Info as ReadInfoFile", path, n, err, len(entries))
	}
}

func compareControl(t *testing.T, path string, info *Info) {
	t.Helper()
	// The whole paragraph, as dpkg-deb -f prints it.
	p, err := deb822.NewReader(strings.NewReader(run(t, "dpkg-deb", "-f", path)), "dpkg-deb -f").Next()
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(info.Control.Fields, p.Fields) {
		t.Errorf("Control.Fields = %q, want (dpkg-deb -f) %q", info.Control.Fields, p.Fields)
	}
	for field, got := range map[string]string{"Package": info.Package, "Version": info.Version, "Architecture": info.Architecture, "Multi-Arch": info.MultiArch} {
		if want := strings.TrimSuffix(run(t, "dpkg-deb", "-f", path, field), "\n"); got != want {
			t.Errorf("%s = %q, want (dpkg-deb -f) %q", field, got, want)
		}
	}
	// The control member's entries.
	var want []string
	for _, n := range strings.Split(strings.TrimSpace(run(t, "sh", "-c", `dpkg-deb --ctrl-tarfile "$1" | tar -t`, "sh", path)), "\n") {
		if n = strings.TrimSuffix(strings.TrimPrefix(n, "./"), "/"); n != "" && n != "." {
			want = append(want, n)
		}
	}
	if !reflect.DeepEqual(info.ControlFiles, want) {
		t.Errorf("ControlFiles = %q, want (dpkg-deb --ctrl-tarfile | tar -t) %q", info.ControlFiles, want)
	}
	if len(info.ControlEntries) != len(info.ControlFiles) {
		t.Errorf("%d ControlEntries for %d ControlFiles", len(info.ControlEntries), len(info.ControlFiles))
	}
	// The control files' contents, as dpkg-deb -e extracts them.
	dir := t.TempDir()
	run(t, "dpkg-deb", "-e", path, filepath.Join(dir, "DEBIAN"))
	read := func(name string) ([]byte, bool) {
		b, err := os.ReadFile(filepath.Join(dir, "DEBIAN", name))
		if os.IsNotExist(err) {
			return nil, false
		}
		if err != nil {
			t.Fatal(err)
		}
		return b, true
	}
	for _, s := range scriptNames {
		want, ok := read(s)
		got, has := info.Scripts[s]
		if has != ok || !bytes.Equal(got, want) {
			t.Errorf("Scripts[%q] = %q (present %v), want (dpkg-deb -e) %q (present %v)", s, got, has, want, ok)
		}
	}
	if b, ok := read("md5sums"); ok != (info.MD5Sums != nil) {
		t.Errorf("MD5Sums present = %v, want %v", info.MD5Sums != nil, ok)
	} else if ok {
		want, _, _ := debfmt.ParseMD5Sums(bytes.NewReader(b), "md5sums")
		if !reflect.DeepEqual(info.MD5Sums, nonNil(want)) {
			t.Errorf("MD5Sums = %v, want %v", info.MD5Sums, want)
		}
	}
	if b, ok := read("conffiles"); ok != (info.Conffiles != nil) {
		t.Errorf("Conffiles present = %v, want %v", info.Conffiles != nil, ok)
	} else if ok {
		want, _, _ := debfmt.ParseConffiles(bytes.NewReader(b), "conffiles")
		if !reflect.DeepEqual(info.Conffiles, nonNil(want)) {
			t.Errorf("Conffiles = %v, want %v", info.Conffiles, want)
		}
	}
	if b, ok := read("triggers"); ok != (info.Triggers != nil) {
		t.Errorf("Triggers present = %v, want %v", info.Triggers != nil, ok)
	} else if ok {
		want, _, _ := debfmt.ParseTriggers(bytes.NewReader(b), "triggers")
		if !reflect.DeepEqual(info.Triggers, nonNil(want)) {
			t.Errorf("Triggers = %v, want %v", info.Triggers, want)
		}
	}
}

// tarListing is one line of tar -tv: the name and owner names.
type tarListing struct {
	path, user, group string
}

func listWithTar(t *testing.T, path string) []tarListing {
	t.Helper()
	out := run(t, "sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -tv`, "sh", path)
	var ls []tarListing
	for _, line := range strings.Split(strings.TrimSuffix(out, "\n"), "\n") {
		// "-rw-r--r-- root/root 44 2023-11-14 22:13 ./etc/x[ -> target| link to target]"
		f := tarLine.FindStringSubmatch(line)
		if f == nil {
			t.Fatalf("cannot parse tar -tv line %q", line)
		}
		name := f[3]
		switch line[0] {
		case 'l':
			name, _, _ = strings.Cut(name, " -> ")
		case 'h':
			name, _, _ = strings.Cut(name, " link to ")
		}
		user, group := f[1], f[2]
		p, err := debfmt.CleanPath(name)
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, tarListing{p, user, group})
	}
	return ls
}

func compareData(t *testing.T, path string, entries []*Entry) {
	t.Helper()
	want := listWithTar(t, path)
	if len(entries) != len(want) {
		t.Fatalf("WalkData gave %d entries, tar -tv %d", len(entries), len(want))
	}
	root := t.TempDir()
	run(t, "sh", "-c", `dpkg-deb --fsys-tarfile "$1" | tar -x --same-owner -p --numeric-owner -C "$2"`, "sh", path, root)

	files := 0
	for i, e := range entries {
		if got := (tarListing{e.Path, e.Uname, e.Gname}); got != want[i] {
			t.Errorf("entry %d = %+v, want (tar -tv) %+v", i, got, want[i])
		}
		fp := filepath.Join(root, e.Path)
		fi, err := os.Lstat(fp)
		if err != nil {
			t.Errorf("%s: %v", e.Path, err)
			continue
		}
		st := fi.Sys().(*syscall.Stat_t)
		if int(st.Uid) != e.Uid || int(st.Gid) != e.Gid {
			t.Errorf("%s: owner = %d:%d, want (extracted) %d:%d", e.Path, e.Uid, e.Gid, st.Uid, st.Gid)
		}
		perm := fi.Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		switch e.Type {
		case TypeFile, TypeHardlink:
			if !fi.Mode().IsRegular() {
				t.Errorf("%s: type %v, extracted as %v", e.Path, e.Type, fi.Mode().Type())
			}
		case TypeDir:
			if !fi.IsDir() {
				t.Errorf("%s: type %v, extracted as %v", e.Path, e.Type, fi.Mode().Type())
			}
		case TypeSymlink:
			target, err := os.Readlink(fp)
			if fi.Mode()&fs.ModeSymlink == 0 || err != nil || target != e.Linkname {
				t.Errorf("%s: symlink to %q, extracted as %v to %q (%v)", e.Path, e.Linkname, fi.Mode().Type(), target, err)
			}
			perm = e.Mode // symlink permissions are not kept
		}
		if perm != e.Mode {
			t.Errorf("%s: mode = %v, want (extracted) %v", e.Path, e.Mode, perm)
		}
		// Directory mtimes are not a witness: tar creates some symlinks
		// after restoring them.
		if e.Type == TypeFile {
			if !fi.ModTime().Equal(e.ModTime) {
				t.Errorf("%s: mtime = %v, want (extracted) %v", e.Path, e.ModTime, fi.ModTime())
			}
		}
		switch e.Type {
		case TypeFile:
			files++
			b, err := os.ReadFile(fp)
			if err != nil {
				t.Fatal(err)
			}
			if !e.Hashed || e.SHA256 != sha256.Sum256(b) || e.MD5 != md5.Sum(b) || e.Size != int64(len(b)) {
				t.Errorf("%s: size %d sha256 %x md5 %x (hashed %v), want (extracted) %d %x %x", e.Path, e.Size, e.SHA256, e.MD5, e.Hashed, len(b), sha256.Sum256(b), md5.Sum(b))
			}
			// pkg/verity is checked against fsverity-utils itself.
			if want, _, _ := verity.Sum(bytes.NewReader(b)); verity.Digest(e.Verity) != want {
				t.Errorf("%s: fs-verity digest %x, want (extracted) %s", e.Path, e.Verity, want)
			}
		case TypeHardlink:
			ti, err := os.Lstat(filepath.Join(root, e.Linkname))
			if err != nil || !os.SameFile(fi, ti) {
				t.Errorf("%s: hard link to %q, but the extracted files are not the same inode (%v)", e.Path, e.Linkname, err)
			}
			if e.Hashed || e.Size != 0 {
				t.Errorf("%s: hard link with size %d, hashed %v; want 0, false", e.Path, e.Size, e.Hashed)
			}
		default:
			if e.Hashed {
				t.Errorf("%s: %v is hashed", e.Path, e.Type)
			}
		}
	}
	if files == 0 {
		t.Errorf("no regular files in %s", path)
	}
	// Everything extracted is listed (tar did not create anything else).
	n := 0
	filepath.WalkDir(root, func(string, fs.DirEntry, error) error { n++; return nil })
	if n != len(entries) {
		t.Errorf("tar extracted %d paths, WalkData listed %d", n, len(entries))
	}
}

// TestRealDebsMD5Sums checks the hashes against the package's own md5sums,
// a second, independent witness.
func TestRealDebsMD5Sums(t *testing.T) {
	p := realDeb(t, "coreutils")
	info, err := ReadInfoFile(p)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][16]byte{}
	for _, s := range info.MD5Sums {
		want[s.Path] = s.MD5
	}
	n := 0
	err = WalkDataFile(p, Options{Hashes: true}, func(e *Entry) error {
		if m, ok := want[e.Path]; ok {
			n++
			if m != e.MD5 {
				t.Errorf("%s: md5 %x, md5sums says %x", e.Path, e.MD5, m)
			}
		}
		return nil
	})
	if err != nil || n != len(want) {
		t.Errorf("WalkDataFile = %v, matched %d of %d md5sums lines", err, n, len(want))
	}
}

// TestPipeInput reads from a pipe (no seeking, no size), as from apt.
func TestPipeInput(t *testing.T) {
	for _, name := range []string{"fixture_xz-blocks.deb", "fixture_zstd.deb"} {
		t.Run(name, func(t *testing.T) {
			b := readFixture(t, name)
			pr, pw := io.Pipe()
			go func() { pw.CloseWithError(writeAll(pw, b)) }()
			var got []string
			info, err := Walk(pr, name, Options{Hashes: true}, func(e *Entry) error { got = append(got, e.Path); return nil })
			if err != nil {
				t.Fatalf("Walk(pipe) = %v", err)
			}
			var want []string
			WalkData(bytes.NewReader(b), name, Options{}, func(e *Entry) error { want = append(want, e.Path); return nil })
			if info.Package != "debseal-fixture" || !reflect.DeepEqual(got, want) {
				t.Errorf("Walk(pipe) = %q, %q; want debseal-fixture, %q", info.Package, got, want)
			}
		})
	}
}

func writeAll(w io.Writer, b []byte) error {
	// Small writes, so the reader sees many short reads.
	for len(b) > 0 {
		n := min(len(b), 777)
		if _, err := w.Write(b[:n]); err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

var tarLine = regexp.MustCompile(`^\S+ ([^/ ]*)/(\S*) +[0-9, ]+ \S+ \S+ (.*)$`)

func init() {
	// dpkg-deb and tar must not depend on the caller's locale.
	os.Setenv("LC_ALL", "C")
}
