package deb

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

type arWant struct {
	name string
	data string
	off  int64
}

// readAr reads every member; seekable chooses between the seeking and the
// reading path.
func readAr(in []byte, seekable bool, readData bool) ([]arWant, error) {
	var r io.Reader = bytes.NewReader(in)
	if !seekable {
		r = struct{ io.Reader }{r}
	}
	a := newArReader(r, "t.deb")
	var got []arWant
	for {
		h, err := a.Next()
		if err == io.EOF {
			return got, nil
		}
		if err != nil {
			return got, err
		}
		w := arWant{name: h.Name, off: h.Offset}
		if readData {
			b, err := io.ReadAll(a)
			if err != nil {
				return got, err
			}
			w.data = string(b)
		}
		got = append(got, w)
	}
}

func TestArReader(t *testing.T) {
	hdr := func(name, mode, size string) string {
		b := buildAr(arMember{name: name, mode: mode, size: size})
		return string(b[len(arMagic):])
	}
	tests := []struct {
		name    string
		in      string
		want    []arWant
		wantErr string // substring; "" for success
	}{
		{
			name: "dpkg style, odd size padded",
			in:   string(buildAr(arMember{name: "debian-binary", data: []byte("2.0\n")}, arMember{name: "odd", data: []byte("abc")}, arMember{name: "x", data: []byte("yz")})),
			want: []arWant{{"debian-binary", "2.0\n", 68}, {"odd", "abc", 132}, {"x", "yz", 196}},
		},
		{
			name: "GNU trailing slash and short mode",
			in:   string(buildAr(arMember{name: "data.tar.xz/", data: []byte("12"), mode: "644"})),
			want: []arWant{{"data.tar.xz", "12", 68}},
		},
		{
			// blakesmith/ar panics on these (slice bounds out of range).
			name: "mode 0 and blank mode",
			in:   string(buildAr(arMember{name: "a", data: []byte("1"), mode: "0"}, arMember{name: "b", data: []byte("2"), mode: " "})),
			want: []arWant{{"a", "1", 68}, {"b", "2", 130}},
		},
		{name: "empty archive", in: arMagic},
		{name: "missing final padding byte", in: string(buildAr(arMember{name: "odd", data: []byte("abc")}))[:len(arMagic)+60+3], want: []arWant{{"odd", "abc", 68}}},
		{name: "name ends at NUL", in: arMagic + hdr("debian-binary\x00xx", "", "0"), want: []arWant{{"debian-binary", "", 68}}},
		{name: "empty file", in: "", wantErr: "at offset 0: malformed archive: empty file"},
		{name: "wrong magic", in: "MZ\x90\x00\x03\x00\x00\x00\x04\x00", wantErr: `at offset 0: malformed archive: not a Debian package: bad ar magic "MZ\x90\x00\x03\x00\x00\x00"`},
		{name: "truncated magic", in: "!<ar", wantErr: "truncated ar magic (4 bytes)"},
		{name: "truncated header", in: arMagic + hdr("a", "", "0")[:30], wantErr: "at offset 8: malformed archive: truncated ar member header (30 of 60 bytes)"},
		{name: "bad terminator", in: arMagic + hdr("a", "", "0")[:58] + "\n\n", wantErr: "a (at offset 8): malformed archive: bad ar header terminator"},
		{name: "negative size", in: arMagic + hdr("a", "", "-5"), wantErr: `a (at offset 8): malformed archive: ar size field "-5        " is not a decimal number`},
		{name: "non-numeric size", in: arMagic + hdr("a", "", "12ab"), wantErr: `ar size field "12ab      " is not a decimal number`},
		{name: "size with inner blank", in: arMagic + hdr("a", "", "1 2"), wantErr: "is not a decimal number"},
		{name: "huge size", in: arMagic + hdr("a", "", "9999999999"), wantErr: "a (at offset 8): malformed archive: member of 9999999999 bytes extends past the end of the file (68 bytes)"},
		{name: "truncated member", in: string(buildAr(arMember{name: "a", data: []byte("abcdef")}))[:len(arMagic)+60+2], wantErr: "a (at offset 8): malformed archive: member of 6 bytes extends past the end of the file (70 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := readAr([]byte(tt.in), true, true)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, ErrFormat) {
					t.Fatalf("readAr() = %v, want an ErrFormat containing %q", err, tt.wantErr)
				}
				if !strings.HasPrefix(err.Error(), "deb: t.deb: ") {
					t.Errorf("error %q does not name the file", err)
				}
				return
			}
			if err != nil || !equalAr(got, tt.want) {
				t.Fatalf("readAr() = %v, %v; want %v", got, err, tt.want)
			}
			// Without seeking, and skipping the data, the members are the same.
			got2, err := readAr([]byte(tt.in), false, false)
			for i := range got2 {
				if i < len(tt.want) {
					got2[i].data = tt.want[i].data
				}
			}
			if err != nil || !equalAr(got2, tt.want) {
				t.Errorf("readAr(not seekable, skipping) = %v, %v; want %v", got2, err, tt.want)
			}
		})
	}
}

func equalAr(a, b []arWant) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// TestArTruncatedStream: without a known size, truncation shows when the
// member is read or skipped, as an io.ErrUnexpectedEOF naming the member.
func TestArTruncatedStream(t *testing.T) {
	in := buildAr(arMember{name: "a", data: []byte("abcdef")}, arMember{name: "b", data: []byte("x")})[:len(arMagic)+60+2]
	for _, read := range []bool{true, false} {
		_, err := readAr(in, false, read)
		if !errors.Is(err, io.ErrUnexpectedEOF) || !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), "a (at offset 68): malformed archive: truncated member: 2 of 6 bytes") {
			t.Errorf("readAr(read data %v) = %v, want a truncated member error", read, err)
		}
	}
}

// FuzzAr feeds arbitrary bytes to the ar reader, seekable or not. It must
// never panic, report members inside the input, never return more bytes
// than a member's size, and fail only with an *Error matching ErrFormat.
func FuzzAr(f *testing.F) {
	for _, b := range fuzzSeeds(f) {
		f.Add(b)
	}
	f.Add(buildAr(arMember{name: "a", data: []byte("1"), mode: "0"}))
	f.Add(buildAr(arMember{name: "a", size: "-5"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		for _, seekable := range []bool{true, false} {
			var r io.Reader = bytes.NewReader(b)
			if !seekable {
				r = struct{ io.Reader }{r}
			}
			a := newArReader(r, "fuzz")
			last := int64(-1)
			for i := 0; ; i++ {
				h, err := a.Next()
				if err == io.EOF {
					break
				}
				if err != nil {
					var e *Error
					if !errors.As(err, &e) || !errors.Is(err, ErrFormat) {
						t.Fatalf("Next() = %v, want an *Error matching ErrFormat", err)
					}
					break
				}
				if h.Offset <= last || h.Size < 0 || h.Offset != h.HeaderOffset+arHeaderSize || seekable && h.Offset+h.Size > int64(len(b)) {
					t.Fatalf("header %+v after offset %d in %d bytes", h, last, len(b))
				}
				last = h.Offset
				if i%2 == 0 {
					n, err := io.Copy(io.Discard, a)
					if n > h.Size || err == nil && n != h.Size {
						t.Fatalf("read %d bytes (%v) of a %d-byte member", n, err, h.Size)
					}
				}
			}
		}
	})
}
