package debfmt

import (
	"errors"
	"io/fs"
	"reflect"
	"strings"
	"testing"
)

func TestCleanPath(t *testing.T) {
	tests := []struct {
		in, want string
		wantErr  bool
	}{
		{in: "./usr/bin/x", want: "/usr/bin/x"},
		{in: "usr/bin/x", want: "/usr/bin/x"},
		{in: "/usr//bin/./x/", want: "/usr/bin/x"},
		{in: "/.", want: "/"},
		{in: "./", want: "/"},
		{in: "/usr/share/a b", want: "/usr/share/a b"},
		{in: "", wantErr: true},
		{in: "/usr/../etc/shadow", wantErr: true},
		{in: "../x", wantErr: true},
		{in: "/a\x00b", wantErr: true},
		{in: "/a\nb", wantErr: true},
	}
	for _, tt := range tests {
		got, err := CleanPath(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("CleanPath(%q) = %q, %v; want %q, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestParseMD5Sums(t *testing.T) {
	in := "d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\n" +
		"\n" +
		"d41d8cd98f00b204e9800998ecf8427e  ./usr/share/with space\n" +
		"zz1d8cd98f00b204e9800998ecf8427e  usr/bin/bad-hex\n" +
		"d41d8cd98f00b204e9800998ecf8427e usr/bin/one-space\n" +
		"d41d8cd98f00b204e9800998ecf8427e  ../../etc/shadow\n" +
		"short\n" +
		"d41d8cd98f00b204e9800998ecf8427e  usr/lib/last"
	sums, bad, err := ParseMD5Sums(strings.NewReader(in), "p.md5sums")
	if err != nil {
		t.Fatal(err)
	}
	var paths []string
	for _, s := range sums {
		paths = append(paths, s.Path)
	}
	if want := []string{"/usr/bin/a", "/usr/share/with space", "/usr/lib/last"}; !reflect.DeepEqual(paths, want) {
		t.Errorf("paths = %q, want %q", paths, want)
	}
	if sums[0].MD5[0] != 0xd4 || sums[0].MD5[15] != 0x7e {
		t.Errorf("MD5 = %x", sums[0].MD5)
	}
	wantLines := []int{4, 5, 6, 7}
	if len(bad) != len(wantLines) {
		t.Fatalf("bad = %v, want lines %v", bad, wantLines)
	}
	for i, e := range bad {
		var le *LineError
		if !errors.As(e, &le) || le.Line != wantLines[i] || le.File != "p.md5sums" || !errors.Is(e, ErrSyntax) {
			t.Errorf("bad[%d] = %v, want a LineError at p.md5sums:%d", i, e, wantLines[i])
		}
	}
}

func TestParseConffiles(t *testing.T) {
	in := "/etc/a.conf\nremove-on-upgrade /etc/old conf\n\n/etc/b \nbogus-flag /etc/c\nrelative\n/etc/../x\n"
	cf, bad, err := ParseConffiles(strings.NewReader(in), "conffiles")
	if err != nil {
		t.Fatal(err)
	}
	want := []Conffile{{Path: "/etc/a.conf"}, {Path: "/etc/old conf", RemoveOnUpgrade: true}, {Path: "/etc/b"}}
	if !reflect.DeepEqual(cf, want) {
		t.Errorf("ParseConffiles() = %+v, want %+v", cf, want)
	}
	if len(bad) != 3 {
		t.Errorf("bad = %v, want 3 errors (flag, relative, ..)", bad)
	}
}

func TestParseTriggers(t *testing.T) {
	in := "# comment\ninterest-noawait /usr/share/man\n\nactivate-noawait ldconfig\nfoo bar\nactivate\n"
	ts, bad, err := ParseTriggers(strings.NewReader(in), "triggers")
	if err != nil {
		t.Fatal(err)
	}
	want := []Trigger{{"interest-noawait", "/usr/share/man"}, {"activate-noawait", "ldconfig"}}
	if !reflect.DeepEqual(ts, want) {
		t.Errorf("ParseTriggers() = %+v, want %+v", ts, want)
	}
	if !ts[0].Interest() || !ts[0].File() || ts[1].Interest() || ts[1].File() {
		t.Errorf("Interest/File classification wrong: %+v", ts)
	}
	if len(bad) != 2 {
		t.Errorf("bad = %v, want 2", bad)
	}
}

func FuzzParsers(f *testing.F) {
	f.Add("d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\n")
	f.Add("remove-on-upgrade /etc/x\n/etc/y\n")
	f.Add("interest /usr/share/man\nactivate foo\n")
	f.Fuzz(func(t *testing.T, in string) {
		sums, _, err := ParseMD5Sums(strings.NewReader(in), "f")
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range sums {
			if !strings.HasPrefix(s.Path, "/") || strings.Contains(s.Path, "/../") || strings.HasSuffix(s.Path, "/..") {
				t.Fatalf("unclean path %q", s.Path)
			}
		}
		cf, _, err := ParseConffiles(strings.NewReader(in), "f")
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range cf {
			if c.Path == "" || c.Path[0] != '/' {
				t.Fatalf("bad conffile path %q", c.Path)
			}
		}
		if _, _, err := ParseTriggers(strings.NewReader(in), "f"); err != nil {
			t.Fatal(err)
		}
	})
}

func FuzzCleanPath(f *testing.F) {
	for _, s := range []string{"/usr/bin/x", "./usr", "/a//b", "/a/./b", "/a/../b", "/", "/a/", "a"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, p string) {
		got, err := CleanPath(p)
		slow, serr := cleanSlow(p)
		if p != "" && !strings.ContainsAny(p, "\x00\n") && (got != slow || (err == nil) != (serr == nil)) {
			t.Fatalf("CleanPath(%q) = %q, %v; slow path gives %q, %v", p, got, err, slow, serr)
		}
	})
}

func TestUnixMode(t *testing.T) {
	tests := []struct {
		m    fs.FileMode
		want uint32
	}{
		{0o755, 0o755},
		{0o755 | fs.ModeSetuid, 0o4755},
		{0o755 | fs.ModeSetgid, 0o2755},
		{0o777 | fs.ModeSticky | fs.ModeDir, 0o1777},
		{0o644 | fs.ModeSymlink, 0o644},
	}
	for _, tt := range tests {
		if got := UnixMode(tt.m); got != tt.want {
			t.Errorf("UnixMode(%v) = %#o, want %#o", tt.m, got, tt.want)
		}
	}
}

func TestPercentDecode(t *testing.T) {
	tests := []struct{ in, want, wantErr string }{
		{"plain", "plain", ""},
		{"a%20b%25", "a b%", ""},
		{"%0A%3d", "\n=", ""},
		{"%4", "", "truncated"},
		{"ab%", "", "truncated"},
		{"%zz", "", "bad"},
		{"%+1", "", "bad"},
	}
	for _, tt := range tests {
		got, err := PercentDecode(tt.in)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("PercentDecode(%q) = %q, %v; want error %q", tt.in, got, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("PercentDecode(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
