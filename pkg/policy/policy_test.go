package policy

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestPathLocked(t *testing.T) {
	c, err := Parse(strings.NewReader(`
# site policy
lock-directories = yes
exclude-path = /usr/local
exclude-path = /opt/*/cache/*
include-path = /var/lib/important/*
exclude-package = linux-image-*
exclude-package = nvidia-*
`), "debseal.conf")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path string
		want bool
	}{
		{"/usr/bin/ls", true},
		{"/var/lib/dpkg/status", false},
		{"/var", false},
		{"/variety/x", true},
		{"/var/lib/important/x", true},
		{"/usr/local/bin/x", false},
		{"/usr/local", false},
		{"/opt/app/cache/x", false},
		{"/opt/app/bin/x", true},
		{"/home/u/x", false},
		{"/etc/ssh/moduli", true},
	}
	for _, tt := range tests {
		if got, _ := c.PathLocked(tt.path); got != tt.want {
			t.Errorf("PathLocked(%q) = %v, want %v", tt.path, got, tt.want)
		}
	}
	if !c.LockDirectories {
		t.Error("lock-directories = yes not applied")
	}
	if !c.PackageExcluded("linux-image-6.1.0-9-amd64") || c.PackageExcluded("coreutils") {
		t.Error("exclude-package patterns not applied")
	}
	if _, why := c.PathLocked("/usr/local/x"); why.Line != 4 {
		t.Errorf("reason line = %d, want 4", why.Line)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no equals", "lock-directories\n", 1, "key = value"},
		{"unknown key", "\n\nlock-dirs = yes\n", 3, "unknown setting"},
		{"bad bool", "lock-directories = maybe\n", 1, "not yes or no"},
		{"bad pattern", "exclude-path = /usr/[abc\n", 1, "unterminated"},
		{"relative pattern", "exclude-path = usr/local\n", 1, "must start with /"},
		{"empty pattern", "exclude-package =\n", 1, "empty pattern"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "/etc/debseal/debseal.conf")
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line != tt.line || !strings.Contains(se.Msg, tt.msg) {
				t.Fatalf("Parse() error = %v, want line %d with %q", err, tt.line, tt.msg)
			}
			if !strings.Contains(err.Error(), "/etc/debseal/debseal.conf:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
}

func TestLoadMissingIsDefault(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "nope.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.PathLocked("/usr/bin/x"); !ok {
		t.Error("default policy does not lock /usr/bin/x")
	}
	if ok, _ := c.PathLocked("/var/lib/x"); ok {
		t.Error("default policy locks /var/lib/x")
	}
	if c.LockDirectories {
		t.Error("default policy locks directories")
	}
}

func TestLoadUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(filepath.Join(dir, "conf")); err == nil {
		t.Error("Load(directory) succeeded")
	}
}

func FuzzParse(f *testing.F) {
	f.Add("lock-directories = yes\nexclude-path = /usr/[a-z]*\n")
	f.Add("exclude-package = linux-*\ninclude-path = /var/x\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "fuzz")
		if err != nil {
			return
		}
		for _, r := range c.Rules {
			matchPath(r.Pattern, "/usr/bin/x")
		}
		c.PackageExcluded("x")
	})
}
