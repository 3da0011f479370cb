package deb822

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
)

func TestReadAll(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want [][]Field
	}{
		{
			name: "two paragraphs",
			in:   "Package: a\nVersion: 1\n\nPackage: b\n",
			want: [][]Field{{{"Package", "a"}, {"Version", "1"}}, {{"Package", "b"}}},
		},
		{
			name: "missing final newline",
			in:   "Package: a\nVersion: 1",
			want: [][]Field{{{"Package", "a"}, {"Version", "1"}}},
		},
		{
			name: "multi-line conffiles",
			in:   "Package: a\nConffiles:\n /etc/a 0123\n /etc/b c 4567 obsolete\nStatus: install ok installed\n",
			want: [][]Field{{{"Package", "a"}, {"Conffiles", "\n/etc/a 0123\n/etc/b c 4567 obsolete"}, {"Status", "install ok installed"}}},
		},
		{
			name: "leading, trailing and repeated blank lines",
			in:   "\n\nPackage: a\n\n\n \t\nPackage: b\n\n\n",
			want: [][]Field{{{"Package", "a"}}, {{"Package", "b"}}},
		},
		{
			name: "whitespace-only line separates",
			in:   "Package: a\n  \nPackage: b\n",
			want: [][]Field{{{"Package", "a"}}, {{"Package", "b"}}},
		},
		{
			name: "value whitespace trimmed, tab continuation",
			in:   "Description:   short  \n\tlong line\n .\n",
			want: [][]Field{{{"Description", "short\nlong line\n."}}},
		},
		{
			name: "space before colon",
			in:   "Package : a\n",
			want: [][]Field{{{"Package", "a"}}},
		},
		{
			name: "colon in value",
			in:   "Depends: a (>= 1:2.0)\n",
			want: [][]Field{{{"Depends", "a (>= 1:2.0)"}}},
		},
		{
			name: "empty input",
			in:   "",
			want: nil,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ps, err := ReadAll(strings.NewReader(tt.in), "test")
			if err != nil {
				t.Fatalf("ReadAll() error = %v", err)
			}
			var got [][]Field
			for _, p := range ps {
				got = append(got, p.Fields)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ReadAll() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSyntaxErrors(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		wantLine int
		wantMsg  string
	}{
		{"continuation first", " foo\n", 1, "continuation line without a field"},
		{"no colon", "Package: a\nVersion\n", 2, "must be followed by a colon"},
		{"empty name", ": a\n", 1, "empty field name"},
		{"hyphen name", "-Foo: a\n", 1, "hyphen"},
		{"comment", "# hello\n", 1, "comments are not allowed"},
		{"duplicate", "Package: a\nVersion: 1\npackage: b\n", 3, "duplicate field"},
		{"crlf", "Package: a\r\nVersion: 1\r\n", 1, "CRLF"},
		{"crlf in continuation", "Conffiles:\n /etc/a x\r\n", 2, "CRLF"},
		{"nul", "Package: a\x00b\n", 1, "NUL"},
		{"control char in name", "Pack\x01age: a\n", 1, "invalid character"},
		{"second paragraph line numbers", "Package: a\n\nPackage: b\nbroken\n", 4, "colon"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ReadAll(strings.NewReader(tt.in), "status")
			var se *SyntaxError
			if !errors.As(err, &se) {
				t.Fatalf("ReadAll() error = %v, want *SyntaxError", err)
			}
			if !errors.Is(err, ErrSyntax) {
				t.Errorf("errors.Is(%v, ErrSyntax) = false", err)
			}
			if se.Line != tt.wantLine || !strings.Contains(se.Msg, tt.wantMsg) || se.File != "status" {
				t.Errorf("ReadAll() error = %v, want status:%d: …%s…", err, tt.wantLine, tt.wantMsg)
			}
			if !strings.HasPrefix(err.Error(), "deb822: status:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestStickyError(t *testing.T) {
	r := NewReader(strings.NewReader("Package: a\n\n broken\n\nPackage: c\n"), "x")
	if _, err := r.Next(); err != nil {
		t.Fatalf("first Next() = %v", err)
	}
	_, err1 := r.Next()
	_, err2 := r.Next()
	if err1 == nil || err1 != err2 {
		t.Errorf("Next() errors = %v, %v; want the same non-nil error twice", err1, err2)
	}
}

func TestLimits(t *testing.T) {
	long := "Package: " + strings.Repeat("x", 200) + "\n"
	_, err := newReaderLimits(strings.NewReader(long), "big", Limits{MaxLine: 100}).Next()
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "line longer") {
		t.Errorf("long line: error = %v", err)
	}
	para := "Conffiles:\n" + strings.Repeat(" /etc/x 0123456789\n", 100)
	_, err = newReaderLimits(strings.NewReader(para), "big", Limits{MaxParagraph: 500}).Next()
	if !errors.Is(err, ErrSyntax) || !strings.Contains(err.Error(), "paragraph larger") {
		t.Errorf("big paragraph: error = %v", err)
	}
}

func TestLongLineAcrossBuffer(t *testing.T) {
	// A line longer than the bufio buffer must be read whole.
	v := strings.Repeat("y", 200<<10)
	ps, err := ReadAll(strings.NewReader("Description: "+v+"\nPackage: a\n"), "x")
	if err != nil {
		t.Fatal(err)
	}
	if got := ps[0].Value("Description"); got != v {
		t.Errorf("long value has length %d, want %d", len(got), len(v))
	}
	if got := ps[0].Value("package"); got != "a" {
		t.Errorf("Value(package) = %q, want a", got)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, io.ErrClosedPipe }

func TestReadError(t *testing.T) {
	_, err := ReadAll(errReader{}, "pipe")
	if !errors.Is(err, io.ErrClosedPipe) || !strings.Contains(err.Error(), "pipe") {
		t.Errorf("ReadAll() error = %v, want wrapped ErrClosedPipe naming the file", err)
	}
}

func TestLines(t *testing.T) {
	if got, want := Lines("\n/etc/a 1\n/etc/b 2"), []string{"/etc/a 1", "/etc/b 2"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
	if got, want := Lines("first\nsecond"), []string{"first", "second"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Lines() = %q, want %q", got, want)
	}
}

func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"Package: a\nVersion: 1\n\nPackage: b\n",
		"Package: a\nConffiles:\n /etc/a 0123\n /etc/b 4567 obsolete\n",
		"Description: x\n .\n y",
		" bad\n",
		"A: b\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		lim := Limits{MaxLine: 4096, MaxParagraph: 1 << 16}
		r := newReaderLimits(strings.NewReader(string(data)), "fuzz", lim)
		// The same input read keeping only some fields: the same
		// paragraphs with those fields, or a syntax error no later.
		only := newReaderLimits(strings.NewReader(string(data)), "fuzz", lim)
		only.Only("package", "CONFFILES")
		for i := 0; i < 10000; i++ {
			p, err := r.Next()
			q, qerr := only.Next()
			if err != nil {
				if err != io.EOF && !errors.Is(err, ErrSyntax) {
					t.Fatalf("unexpected error class: %v", err)
				}
				if qerr == nil && err == io.EOF {
					t.Fatalf("Only read a paragraph after the end: %+v", q)
				}
				return
			}
			if len(p.Fields) == 0 {
				t.Fatal("empty paragraph returned")
			}
			for _, fl := range p.Fields {
				if fl.Name == "" || strings.ContainsAny(fl.Name, ": \t\n") {
					t.Fatalf("bad field name %q", fl.Name)
				}
			}
			if qerr != nil {
				t.Fatalf("Only: %v where the full reader read %+v", qerr, p)
			}
			var want []Field
			for _, fl := range p.Fields {
				if strings.EqualFold(fl.Name, "package") || strings.EqualFold(fl.Name, "conffiles") {
					want = append(want, fl)
				}
			}
			if !reflect.DeepEqual(q.Fields, want) && (len(q.Fields) != 0 || len(want) != 0) || q.Line != p.Line {
				t.Fatalf("Only: %+v, want %+v at line %d", q, want, p.Line)
			}
		}
	})
}

func TestOnly(t *testing.T) {
	tests := []struct {
		in      string
		want    []string // "Name=Value" per field, paragraphs separated by "|"
		wantErr string
	}{
		{"Package: a\nDescription: x\n more\n .\nConffiles:\n /etc/a 00\n\nPackage: b\n", []string{"Package=a", "Conffiles=\n/etc/a 00", "|", "Package=b"}, ""},
		{"PACKAGE: a\nStatus: x\n", []string{"PACKAGE=a"}, ""},
		{"Package: a\nDescription: x\n bad\r\n", nil, "CRLF"},                       // syntax still checked in skipped fields
		{"Package: a\nDescription: x\nDescription: y\n", []string{"Package=a"}, ""}, // duplicates of skipped fields are not
		{"Package: a\nPackage: b\n", nil, "duplicate field"},
		{"Package: a\nSome-Very-Long-Field-Name-That-Does-Not-Fit-In-Sixty-Four-Bytes-Of-Stack: 1\n", []string{"Package=a"}, ""},
	}
	for _, tt := range tests {
		r := NewReader(strings.NewReader(tt.in), "t")
		r.Only("Package", "Conffiles")
		var got []string
		var err error
		for {
			var p *Paragraph
			p, err = r.Next()
			if err != nil {
				break
			}
			if got != nil {
				got = append(got, "|")
			}
			for _, f := range p.Fields {
				got = append(got, f.Name+"="+f.Value)
			}
		}
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%q: error %v, want %q", tt.in, err, tt.wantErr)
			}
			continue
		}
		if err != io.EOF {
			t.Errorf("%q: %v", tt.in, err)
		}
		if !reflect.DeepEqual(got, tt.want) {
			t.Errorf("%q: got %q, want %q", tt.in, got, tt.want)
		}
	}
}
