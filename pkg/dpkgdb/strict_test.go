package dpkgdb

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// statusHead is a well-formed installed package; cases append to it.
const statusHead = "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: all\nMaintainer: m\nDescription: d\n"

// statusCases are status files next to what dpkg-query 1.21 does with
// them (accept: exit 0); TestStatusLikeDpkg checks both the expectation and
// dpkg-query itself. Item 7 of issue 13 was the first: a value cut at the
// end of the file was accepted, and a conffile lost its Conffiles entry.
var statusCases = []struct {
	name   string
	status string
	accept bool
}{
	{"well formed", statusHead, true},
	{"value cut at end of file", strings.TrimSuffix(statusHead, "\n"), false},
	{"conffile line cut at end of file", statusHead + "Conffiles:\n /etc/x 0f343b0931126a20f133d67c2b018a3b\n /etc/y 0f343b0931126a20f133d67c2b01", false},
	{"field name cut at end of file", statusHead + "Confi", false},
	{"empty last field at end of file", statusHead + "Foo:\n", false},
	{"empty last field then a blank line", statusHead + "Foo:\n\n", true},
	{"one byte after the last newline", statusHead + "X", true},
	{"one byte after a blank line", statusHead + "\nX", true},
	{"a space after the last newline", statusHead + " ", true},
	{"blank line of spaces between stanzas", statusHead + "\n \nPackage: b\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n", false},
	{"line of spaces ending a stanza", statusHead + " \nPackage: b\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n", false},
	{"line of spaces inside a value", statusHead + "X-Long: a\n b\n \n c\n", true},
	{"leading line of spaces", " \n" + statusHead, false},
	{"leading empty lines", "\n\n" + statusHead + "\n\n", true},
	{"empty file", "", true},
	{"only a newline", "\n", true},
	{"tab continuation", statusHead + "X-Long: a\n\tb\n", true},
	{"field name with #", statusHead + "#Foo: bar\n", true},
	{"field name in UTF-8", statusHead + "Fo\xc3\xa9: bar\n", true},
	{"blank before the colon", statusHead + "Foo : x\n", true},
	{"no colon", statusHead + "Foo\n", false},
	{"name starting with a hyphen", statusHead + "-Foo: x\n", false},
	{"duplicate known field", statusHead + "Version: 2\n", false},
	{"duplicate unknown field, other case", statusHead + "foo: 1\nFOO: 2\n", false},
	{"duplicate Description", statusHead + "Description: x\n", false},
	{"CRLF, one stanza", "Package: a\r\nStatus: install ok installed\r\nVersion: 1\r\nArchitecture: all\r\n", true},
	{"NUL in a value", statusHead + "Foo: a\x00b\n", true},
	{"installed without Version", "Package: a\nStatus: install ok installed\nArchitecture: all\n", false},
	{"half-installed, minimal", "Package: a\nStatus: install ok half-installed\n", true},
	{"upper-case name", "Package: A\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n", true},
	{"space in name", "Package: a b\nStatus: install ok installed\nVersion: 1\nArchitecture: all\n", false},
	{"Status with four words", "Package: a\nStatus: install ok installed extra\nVersion: 1\nArchitecture: all\n", false},
	{"Status with extra blanks", "Package: a\nStatus:  install  ok  installed \nVersion: 1\nArchitecture: all\n", true},
	{"Status in capitals", "Package: a\nStatus: Install OK Installed\nVersion: 1\nArchitecture: all\n", true},
	{"Essential: maybe", statusHead + "Essential: maybe\n", false},
	{"Multi-Arch: sometimes", statusHead + "Multi-Arch: sometimes\n", false},
	{"Multi-Arch: same on all", statusHead + "Multi-Arch: same\n", false},
	{"Config-Version when installed", statusHead + "Config-Version: 1\n", false},
	{"Triggers-Pending when installed", statusHead + "Triggers-Pending: x\n", false},
	{"triggers-pending without triggers", "Package: a\nStatus: install ok triggers-pending\nVersion: 1\nArchitecture: all\n", false},
	{"version not starting with a digit", "Package: a\nStatus: install ok installed\nVersion: a1\nArchitecture: all\n", true},
	{"conffile", statusHead + "Conffiles:\n /etc/x 0f343b0931126a20f133d67c2b018a3b\n", true},
	{"conffile without hash", statusHead + "Conffiles:\n /etc/x\n", false},
	{"conffile relative", statusHead + "Conffiles:\n etc/x 0f343b0931126a20f133d67c2b018a3b\n", true},
	{"conffile with any hash", statusHead + "Conffiles:\n /etc/x zzz\n", true},
	{"conffile on the first line", statusHead + "Conffiles: /etc/x 0f343b0931126a20f133d67c2b018a3b\n", false},
	{"conffile line with a tab", statusHead + "Conffiles:\n\t/etc/x 0f343b0931126a20f133d67c2b018a3b\n", false},
	{"conffile root", statusHead + "Conffiles:\n / 0f343b0931126a20f133d67c2b018a3b\n", false},
	{"same package twice", statusHead + "\n" + statusHead, false},
	{"two architectures, not Multi-Arch: same", "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\n\nPackage: a\nStatus: install ok installed\nVersion: 1\nArchitecture: i386\n", false},
	{"two architectures, Multi-Arch: same", "Package: a\nStatus: install ok installed\nVersion: 1\nArchitecture: amd64\nMulti-Arch: same\n\nPackage: a\nStatus: install ok installed\nVersion: 1\nArchitecture: i386\nMulti-Arch: same\n", true},
}

// TestStatusLikeDpkg runs dpkg-query --admindir=DIR -W on each status file
// and checks that Open accepts exactly what dpkg-query accepts.
func TestStatusLikeDpkg(t *testing.T) {
	testutil.RequireCommand(t, "dpkg-query")
	for _, tt := range statusCases {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, d := range []string{"info", "updates"} {
				if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.WriteFile(filepath.Join(dir, "status"), []byte(tt.status), 0o644); err != nil {
				t.Fatal(err)
			}
			var stderr bytes.Buffer
			cmd := exec.Command("dpkg-query", "--admindir="+dir, "-W")
			cmd.Stderr = &stderr
			dpkgAccepts := cmd.Run() == nil
			_, err := Open(dir)
			if dpkgAccepts != tt.accept {
				t.Errorf("dpkg-query accepts = %v, the table says %v (dpkg: %s)", dpkgAccepts, tt.accept, strings.TrimSpace(stderr.String()))
			}
			if (err == nil) != dpkgAccepts {
				t.Errorf("Open accepts = %v (%v), dpkg-query accepts = %v (%s)", err == nil, err, dpkgAccepts, strings.TrimSpace(stderr.String()))
			}
		})
	}
}

// FuzzStatusCut: cutting a status file anywhere dpkg would find a field
// unfinished is rejected. dpkg accepts a file whose last line ends with a
// newline, and one stray byte after it; anything else cut inside a line
// is an error.
func FuzzStatusCut(f *testing.F) {
	f.Add(statusHead+"Conffiles:\n /etc/x 0f343b0931126a20f133d67c2b018a3b\n", 40)
	f.Add(statusHead+"\n"+strings.ReplaceAll(statusHead, "Package: a", "Package: b"), 100)
	f.Fuzz(func(t *testing.T, status string, cut int) {
		if _, err := ParseStatus(strings.NewReader(status), "fuzz"); err != nil || cut <= 0 || cut >= len(status) {
			return
		}
		in := status[:cut]
		last := in[strings.LastIndexByte(in, '\n')+1:]
		if len(last) < 2 || strings.Trim(last, " \t\r\v\f") == "" {
			return // a whole last line, one stray byte, or blanks dpkg drops
		}
		if _, err := ParseStatus(strings.NewReader(in), "fuzz"); err == nil {
			t.Fatalf("status cut at %d inside line %q accepted", cut, last)
		}
	})
}
