package deb822

import (
	"io"
	"strings"
	"testing"
)

func readDpkg(in string) ([]*Paragraph, error) {
	r := NewReader(strings.NewReader(in), "status")
	r.Dpkg()
	var out []*Paragraph
	for {
		p, err := r.Next()
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
}

func TestDpkgValues(t *testing.T) {
	ps, err := readDpkg("Package: a\nConffiles:\n /etc/x 1\n\t/etc/y 2 \nX:  v  \r\n\nPackage: b\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != 2 {
		t.Fatalf("paragraphs = %d, want 2", len(ps))
	}
	for _, tt := range []struct{ field, want string }{
		{"Package", "a"},
		{"Conffiles", "\n /etc/x 1\n\t/etc/y 2"}, // raw lines; the value's trailing blanks go
		{"X", "v"},                               // trailing blanks and CR trimmed
	} {
		if got := ps[0].Value(tt.field); got != tt.want {
			t.Errorf("%s = %q, want %q", tt.field, got, tt.want)
		}
	}
}

// FuzzDpkg: the dpkg rules never panic, and what they accept has named,
// unique fields in every paragraph and ends with a newline or one byte.
func FuzzDpkg(f *testing.F) {
	f.Add("Package: a\nStatus: install ok installed\n\nPackage: b\n")
	f.Add("A: b\n \n c\nD:\n\n")
	f.Add("A: b\r\nC: d\r\n")
	f.Fuzz(func(t *testing.T, in string) {
		ps, err := readDpkg(in)
		if err != nil {
			return
		}
		for _, p := range ps {
			seen := map[string]bool{}
			for _, fl := range p.Fields {
				n := strings.ToLower(fl.Name)
				if n == "" || seen[n] {
					t.Fatalf("field %q empty or repeated accepted in %q", fl.Name, in)
				}
				seen[n] = true
			}
		}
		if len(ps) > 0 {
			last := in[strings.LastIndexByte(in, '\n')+1:]
			if len(last) > 1 {
				t.Fatalf("unterminated last line %q accepted", last)
			}
		}
	})
}
