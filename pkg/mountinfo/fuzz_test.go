package mountinfo

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse: whatever Parse accepts has absolute roots and mount points,
// and formats (String, a line per mount) to input that parses to the same
// mounts and formats the same again; whatever it refuses, it refuses with
// a *ParseError naming the input's name and one of its lines. The seed
// corpus is testdata/fuzz/FuzzParse (the fixtures' lines among them).
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, in string) {
		ms, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			var pe *ParseError
			if !errors.As(err, &pe) || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse error %v is not a *ParseError", err)
			}
			if lines := strings.Count(in, "\n") + 1; pe.Name != "fuzz" || pe.Line < 1 || pe.Line > lines {
				t.Fatalf("Parse error %q: line %d, the input has %d", err, pe.Line, lines)
			}
			if ms != nil {
				t.Fatalf("Parse returned mounts with its error")
			}
			return
		}
		var b strings.Builder
		for _, m := range ms {
			if !strings.HasPrefix(m.Root, "/") || !strings.HasPrefix(m.MountPoint, "/") {
				t.Fatalf("accepted a relative root %q or mount point %q", m.Root, m.MountPoint)
			}
			line := m.String()
			if strings.Contains(line, "\n") {
				t.Fatalf("String() = %q has a newline", line)
			}
			b.WriteString(line + "\n")
		}
		out := b.String()
		ms2, err := Parse(strings.NewReader(out), "fuzz")
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its format\n%q\ndoes not parse: %v", in, out, err)
		}
		if len(ms) == 0 && len(ms2) == 0 {
			return
		}
		if !reflect.DeepEqual(ms, ms2) {
			t.Fatalf("Parse(%q) =\n%#v\nParse(format) =\n%#v", in, ms, ms2)
		}
		var b2 strings.Builder
		for _, m := range ms2 {
			b2.WriteString(m.String() + "\n")
		}
		if b2.String() != out {
			t.Fatalf("format is not stable: %q then %q", out, b2.String())
		}
	})
}

// FuzzEscape: decoding is the inverse of the kernel's mangle for any value
// (Escape writes what seq_escape writes), an escaped value is one field,
// and a mount whose root, mount point, type, source and options are
// generated from it comes back from a line unchanged.
func FuzzEscape(f *testing.F) {
	f.Add("/usr/lib/x", "tmpfs", "rw")
	f.Add("/with space/tab\there", "a source", "lowerdir=/a,b")
	f.Add("/nl\nbs\\end\r", "", "x=\\054")
	f.Add("/\x00\xff", "fuse.sshfs", "")
	f.Fuzz(func(t *testing.T, s, source, opt string) {
		e := Escape(s)
		if strings.ContainsAny(e, " \t\n") {
			t.Fatalf("Escape(%q) = %q holds a separator", s, e)
		}
		if back, err := Unescape(e); err != nil || back != s {
			t.Fatalf("Unescape(Escape(%q)) = %q, %v", s, back, err)
		}
		if back := unescapeLoose(e); back != s {
			t.Fatalf("unescapeLoose(Escape(%q)) = %q", s, back)
		}
		fstype := "fuse." + s
		m := Mount{ID: 1, Parent: 2, Major: 3, Minor: 4, Root: "/" + s, MountPoint: "/" + s, Options: []string{"ro", "x" + s},
			Optional: []string{"shared:1"}, FSType: fstype, Source: source, SuperOptions: []string{"rw", opt, s}}
		got, err := ParseLine(m.String())
		if err != nil {
			t.Fatalf("ParseLine(%q) = %v", m.String(), err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("ParseLine(String()) =\n%#v, want\n%#v", got, m)
		}
	})
}
