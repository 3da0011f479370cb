package policy

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
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
	if _, why := c.PathLocked("/usr/local/x"); why.Line != 4 || why.String() != "exclude-path /usr/local (debseal.conf:4)" {
		t.Errorf("reason = %q (line %d), want exclude-path /usr/local (debseal.conf:4)", why, why.Line)
	}
	if _, why := c.PathLocked("/tmp/x"); why.String() != "default exclusion /tmp" {
		t.Errorf("reason = %q, want default exclusion /tmp", why)
	}
}

// TestSettings checks every setting with values it takes and values it
// refuses: a refusal names the file, the line, the setting and what it
// takes.
func TestSettings(t *testing.T) {
	type check func(c *Config) bool
	tests := []struct {
		key  string
		good map[string]check // value -> what the parsed policy must show
		bad  map[string]string
	}{
		{
			key: "lock-directories",
			good: map[string]check{
				"yes": func(c *Config) bool { return c.LockDirectories }, "no": func(c *Config) bool { return !c.LockDirectories },
				"true": func(c *Config) bool { return c.LockDirectories }, "off": func(c *Config) bool { return !c.LockDirectories },
				"1": func(c *Config) bool { return c.LockDirectories }, "0": func(c *Config) bool { return !c.LockDirectories },
				"Yes": func(c *Config) bool { return c.LockDirectories },
			},
			bad: map[string]string{"maybe": `"maybe" is not one of: yes, no (or true/false, on/off, 1/0)`, "": "no value (it takes yes or no)",
				"y": `"y" is not one of`, "2": `"2" is not one of`},
		},
		{
			key: "unlock-scope",
			good: map[string]check{
				"plan": func(c *Config) bool { return c.UnlockScope == ScopePlan },
				"all":  func(c *Config) bool { return c.UnlockScope == ScopeAll },
				"ALL":  func(c *Config) bool { return c.UnlockScope == ScopeAll },
			},
			bad: map[string]string{"al": `"al" is not one of: plan, all`, "": "no value (it takes plan or all)",
				"everything": `"everything" is not one of`, "yes": `"yes" is not one of`},
		},
		{
			key: "refuse-tampered-upgrade",
			good: map[string]check{
				"yes": func(c *Config) bool { return c.RefuseTampered }, "no": func(c *Config) bool { return !c.RefuseTampered },
				"on": func(c *Config) bool { return c.RefuseTampered },
			},
			bad: map[string]string{"refuse": `"refuse" is not one of: yes, no`, "": "no value (it takes yes or no)"},
		},
		{
			key: "verity",
			good: map[string]check{
				"auto": func(c *Config) bool { return c.Verity == VerityAuto && c.Verity.Enabled() },
				"yes":  func(c *Config) bool { return c.Verity == VerityYes && c.Verity.Enabled() },
				"no":   func(c *Config) bool { return c.Verity == VerityNo && !c.Verity.Enabled() },
				"No":   func(c *Config) bool { return c.Verity == VerityNo },
			},
			bad: map[string]string{"on": `"on" is not one of: auto, yes, no`, "": "no value (it takes auto, yes or no)"},
		},
		{
			key: "evidence-max-file",
			good: map[string]check{
				"64M":   func(c *Config) bool { return c.EvidenceMaxFile == 64<<20 },
				"1g":    func(c *Config) bool { return c.EvidenceMaxFile == 1<<30 },
				"512k":  func(c *Config) bool { return c.EvidenceMaxFile == 512<<10 },
				"12345": func(c *Config) bool { return c.EvidenceMaxFile == 12345 },
				"0":     func(c *Config) bool { return c.EvidenceMaxFile == 0 },
			},
			bad: map[string]string{"64MB": `"64MB" is not a size`, "-1": `"-1" is not a size`, "M": `"M" is not a size`,
				"1.5G": `"1.5G" is not a size`, "2000G": "more than 1024G", "": "no value (it takes a size"},
		},
		{
			key: "evidence-max-total",
			good: map[string]check{
				"256M":  func(c *Config) bool { return c.EvidenceMaxTotal == 256<<20 },
				"1024G": func(c *Config) bool { return c.EvidenceMaxTotal == 1<<40 },
			},
			bad: map[string]string{"lots": `"lots" is not a size`, "99999999999999999999": "is not a size"},
		},
		{
			key: "exclude-path",
			good: map[string]check{
				"/usr/local":           func(c *Config) bool { ok, _ := c.PathLocked("/usr/local/bin/x"); return !ok },
				"/usr/local/":          func(c *Config) bool { ok, _ := c.PathLocked("/usr/local/bin/x"); return !ok },
				"/opt/*/cache/*":       func(c *Config) bool { ok, _ := c.PathLocked("/opt/a/b/cache/x"); return !ok },
				"*.pyc":                func(c *Config) bool { ok, _ := c.PathLocked("/usr/lib/x.pyc"); return !ok },
				"/usr/lib/[[:digit:]]": func(c *Config) bool { ok, _ := c.PathLocked("/usr/lib/7"); return !ok },
				"/opt/a#b":             func(c *Config) bool { ok, _ := c.PathLocked("/opt/a#b/x"); return !ok },
				"/opt/My App":          func(c *Config) bool { ok, _ := c.PathLocked("/opt/My App/x"); return !ok },
			},
			bad: map[string]string{
				"usr/local":          "must start with / or *",
				"":                   "no value (it takes",
				"/usr/[abc":          "unterminated [",
				`/usr/x\`:            `trailing \ quotes nothing`,
				"/usr/[[:word:]]":    "unknown character class [:word:]",
				"/usr/[[.a.]]":       "collating symbols",
				"/usr/[[=a=]]":       "equivalence classes",
				"/usr//local":        `contains "//"`,
				"/usr/./local":       `contains "/."`,
				"/usr/../etc":        `contains "/.."`,
				"/usr/..":            `contains "/.."`,
				"/usr/local\x01":     "control character",
				"/opt/[[:alpha:]-z]": "a range cannot start at the class [:alpha:]",
			},
		},
		{
			key: "include-path",
			good: map[string]check{
				"/var/lib/myapp/bin/*": func(c *Config) bool { ok, _ := c.PathLocked("/var/lib/myapp/bin/x"); return ok },
				"/var/lib/myapp":       func(c *Config) bool { ok, _ := c.PathLocked("/var/lib/myapp/x"); return ok },
			},
			bad: map[string]string{"var/lib": "must start with / or *", "/var/lib/[x": "unterminated [", "": "no value (it takes a path or glob starting with / or *)"},
		},
		{
			key: "exclude-package",
			good: map[string]check{
				"linux-image-*": func(c *Config) bool { return c.PackageExcluded("linux-image-6.1.0-9-amd64") },
				"libstdc++6":    func(c *Config) bool { return c.PackageExcluded("libstdc++6") },
				"nvidia-[0-9]*": func(c *Config) bool { return c.PackageExcluded("nvidia-535") && !c.PackageExcluded("nvidia-x") },
				"python3.1?":    func(c *Config) bool { return c.PackageExcluded("python3.11") },
				`lib\+\+`:       func(c *Config) bool { return c.PackageExcluded("lib++") },
			},
			bad: map[string]string{
				"Linux-image-*": `'L' cannot appear in a package name`,
				"libc6:i386":    "no :architecture",
				"/usr/bin/x":    `'/' cannot appear`,
				"a b":           `' ' cannot appear`,
				"linux-[image":  "unterminated [",
				"":              "no value (it takes",
				`lib\_x`:        `'_' cannot appear`,
			},
		},
		{
			key: "guard-allow",
			good: map[string]check{
				"puppet.service": func(c *Config) bool { return slices.Equal(c.GuardAllow, []string{"puppet.service"}) },
				"getty@.service": func(c *Config) bool { return slices.Equal(c.GuardAllow, []string{"getty@.service"}) },
			},
			bad: map[string]string{
				"puppet":       "is not a service unit name",
				"puppet.timer": "is not a service unit name",
				"../x.service": "is not a service unit name",
				"a b.service":  "is not a service unit name",
				"":             "no value (it takes a service unit",
			},
		},
		{
			key: "mount-allow",
			good: map[string]check{
				"/usr/lib/x": func(c *Config) bool {
					return c.MountAllowed("/usr/lib/x") && !c.MountAllowed("/usr/lib/x/y") && !c.MountAllowed("/usr/lib")
				},
				"/srv/*": func(c *Config) bool {
					return c.MountAllowed("/srv/a") && c.MountAllowed("/srv/a/b") && !c.MountAllowed("/srv")
				},
				"/opt/My App": func(c *Config) bool { return c.MountAllowed("/opt/My App") },
				"/mnt/[ab]":   func(c *Config) bool { return c.MountAllowed("/mnt/a") && !c.MountAllowed("/mnt/c") },
			},
			bad: map[string]string{
				"usr/lib":   "must start with /",
				"*/x":       "must start with /",
				"/":         "no trailing /",
				"/usr/lib/": "no trailing /",
				"/usr//lib": `contains "//"`,
				"/usr/../x": `contains "/.."`,
				"/usr/.":    `contains "/."`,
				"/usr/[x":   "unterminated [",
				"/x\x01":    "control character",
				"":          "no value (it takes a mount point or glob starting with /)",
			},
		},
	}
	tested := map[string]bool{}
	for _, tt := range tests {
		tested[tt.key] = true
		for val, ok := range tt.good {
			t.Run(tt.key+"="+val, func(t *testing.T) {
				c, err := Parse(strings.NewReader("# comment\n"+tt.key+" = "+val+"\n"), "/etc/debseal/debseal.conf")
				if err != nil {
					t.Fatalf("Parse(%s = %s) = %v", tt.key, val, err)
				}
				if !ok(c) {
					t.Errorf("%s = %s: not applied: %+v", tt.key, val, c)
				}
			})
		}
		for val, want := range tt.bad {
			t.Run(tt.key+"="+val, func(t *testing.T) {
				_, err := Parse(strings.NewReader("\n"+tt.key+" = "+val+"\n"), "/etc/debseal/debseal.conf")
				var se *SyntaxError
				if !errors.As(err, &se) {
					t.Fatalf("Parse(%s = %q) = %v, want a *SyntaxError", tt.key, val, err)
				}
				prefix := "policy: /etc/debseal/debseal.conf:2: " + tt.key + ": "
				if se.Line != 2 || se.Key != tt.key || !strings.HasPrefix(err.Error(), prefix) || !strings.Contains(err.Error(), want) {
					t.Errorf("Parse(%s = %q) error = %q, want %q…%q", tt.key, val, err, prefix, want)
				}
			})
		}
	}
	for _, k := range keyNames() {
		if !tested[k] {
			t.Errorf("setting %s has no row in TestSettings", k)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, in string
		line     int
		msg      string
	}{
		{"no equals", "lock-directories\n", 1, `want "key = value"`},
		{"unknown key", "\n\nlock-dirs = yes\n", 3, `unknown setting "lock-dirs" (did you mean lock-directories?); the settings are lock-directories, unlock-scope, refuse-tampered-upgrade, verity, evidence-max-file, evidence-max-total, exclude-path, include-path, exclude-package, guard-allow, mount-allow`},
		{"unknown key", "\n\nlock-dirs = yes\n", 3, `unknown setting "lock-dirs" (did you mean lock-directories?); the settings are lock-directories, unlock-scope, refuse-tampered-upgrade, verity, evidence-max-file, evidence-max-total, exclude-path, include-path, exclude-package`},
		{"typo in a key", "unlock-scop = all\n", 1, "(did you mean unlock-scope?)"},
		{"case of a key", "Exclude-Path = /x\n", 1, "(did you mean exclude-path?)"},
		{"far from any key", "colour = blue\n", 1, `unknown setting "colour"; the settings are`},
		{"single-valued twice", "unlock-scope = plan\n# x\nunlock-scope = all\n", 3, "unlock-scope: already set on line 1"},
		{"lock-directories twice", "lock-directories = no\nlock-directories = no\n", 2, "already set on line 1"},
		{"a comment is not a value", "unlock-scope = # all\n", 1, "unlock-scope: no value (it takes plan or all)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.in), "/etc/debseal/debseal.conf")
			var se *SyntaxError
			if !errors.As(err, &se) || se.Line != tt.line || !strings.Contains(err.Error(), tt.msg) {
				t.Fatalf("Parse() error = %v, want line %d with %q", err, tt.line, tt.msg)
			}
			if !strings.Contains(err.Error(), "/etc/debseal/debseal.conf:") {
				t.Errorf("error %q does not name the file", err)
			}
		})
	}
	// A line longer than the scanner takes: the error still says where.
	_, err := Parse(strings.NewReader("# x\nexclude-path = /"+strings.Repeat("a", 70000)+"\n"), "big.conf")
	if err == nil || !strings.Contains(err.Error(), "big.conf (line 2)") {
		t.Errorf("Parse(long line) = %v, want an error naming big.conf line 2", err)
	}
}

// Repeatable settings add up, in file order; comments after a value are
// comments.
func TestRepeatAndComments(t *testing.T) {
	c, err := Parse(strings.NewReader(`exclude-path = /opt   # the vendor tree
include-path = /opt/app/bin	# but not its binaries
exclude-path = /opt/app/bin/cache
exclude-package = a # x
exclude-package = b
`), "c")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range c.Rules[len(DefaultExcluded):] {
		got = append(got, r.String())
	}
	want := []string{"exclude-path /opt (c:1)", "include-path /opt/app/bin (c:2)", "exclude-path /opt/app/bin/cache (c:3)"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rules = %q, want %q", got, want)
	}
	if !reflect.DeepEqual(c.ExcludePackages, []string{"a", "b"}) {
		t.Errorf("excluded packages = %q", c.ExcludePackages)
	}
}

func TestUnlockAll(t *testing.T) {
	for _, tt := range []struct {
		conf string
		want bool
	}{
		{"", false},
		{"unlock-scope = plan", false},
		{"unlock-scope = all", true},
		{"lock-directories = yes\nunlock-scope = plan", true},
	} {
		c, err := Parse(strings.NewReader(tt.conf), "c")
		if err != nil {
			t.Fatal(err)
		}
		if got, why := c.UnlockAll(); got != tt.want || got && why == "" {
			t.Errorf("%q: UnlockAll() = %v, %q, want %v and a reason", tt.conf, got, why, tt.want)
		}
	}
}

func TestFormat(t *testing.T) {
	in := "mount-allow = /srv/*\nexclude-package = x*\nexclude-path = /a # c\ninclude-path = /a/b\nunlock-scope = ALL\nexclude-path = *.pyc\nmount-allow = /usr/lib/x\n"
	c, err := Parse(strings.NewReader(in), "c")
	if err != nil {
		t.Fatal(err)
	}
	want := "lock-directories = no\nunlock-scope = all\nrefuse-tampered-upgrade = no\nverity = auto\nevidence-max-file = 64M\nevidence-max-total = 256M\n" +
		"exclude-path = /a\ninclude-path = /a/b\nexclude-path = *.pyc\nexclude-package = x*\nmount-allow = /srv/*\nmount-allow = /usr/lib/x\n"
	if got := c.Format(); got != want {
		t.Errorf("Format() = %q, want %q", got, want)
	}
	if got := Default().Format(); got != "lock-directories = no\nunlock-scope = plan\nrefuse-tampered-upgrade = no\nverity = auto\nevidence-max-file = 64M\nevidence-max-total = 256M\n" {
		t.Errorf("Default().Format() = %q", got)
	}
}

// TestDocumented keeps the documentation a contract: every setting is in
// the README, the man page and the shipped debseal.conf; the README's
// example parses and means what its comments say; each commented-out line
// of the shipped file is a valid value, and a single-valued one shows the
// default.
func TestDocumented(t *testing.T) {
	root := filepath.Join("..", "..")
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(root, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	readme, man, shipped := read("README.md"), read("docs/debseal.8.md"), read("packaging/debseal.conf")
	for _, k := range keyNames() {
		for name, doc := range map[string]string{"README.md": readme, "docs/debseal.8.md": man, "packaging/debseal.conf": shipped} {
			if !strings.Contains(doc, k) {
				t.Errorf("%s does not document %s", name, k)
			}
		}
	}

	m := regexp.MustCompile("(?s)`/etc/debseal/debseal.conf` \\(optional[^\n]*\n\n```\n(.*?)```").FindStringSubmatch(readme)
	if m == nil {
		t.Fatal("README.md: no example debseal.conf found")
	}
	c, err := Parse(strings.NewReader(m[1]), "README.md example")
	if err != nil {
		t.Fatalf("the README's example does not parse: %v", err)
	}
	for _, p := range []struct {
		path string
		want bool
	}{{"/usr/local/bin/x", false}, {"/opt/a/cache/x", false}, {"/var/lib/myapp/bin/x", true}} {
		if got, _ := c.PathLocked(p.path); got != p.want {
			t.Errorf("README example: PathLocked(%s) = %v, want %v", p.path, got, p.want)
		}
	}
	if !c.PackageExcluded("linux-image-amd64") {
		t.Error("README example: linux-image-amd64 not excluded")
	}

	if _, err := Parse(strings.NewReader(shipped), "packaging/debseal.conf"); err != nil {
		t.Errorf("the shipped debseal.conf does not parse: %v", err)
	}
	def := Default()
	n := 0
	for i, l := range strings.Split(shipped, "\n") {
		if !regexp.MustCompile(`^#[a-z-]+ = `).MatchString(l) {
			continue
		}
		kv := l[1:]
		n++
		one, err := Parse(strings.NewReader(kv), "packaging/debseal.conf")
		if err != nil {
			t.Errorf("packaging/debseal.conf:%d: uncommented, %q does not parse: %v", i+1, kv, err)
			continue
		}
		key, _, _ := strings.Cut(kv, " = ")
		if s, _ := lookup(key); s != nil && !s.repeat && one.Format() != def.Format() {
			t.Errorf("packaging/debseal.conf:%d: %q is not the default", i+1, kv)
		}
	}
	if n < len(keyNames()) {
		t.Errorf("packaging/debseal.conf shows %d settings commented out, want at least %d", n, len(keyNames()))
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
	if c.RefuseTampered || c.EvidenceMaxFile != 64<<20 || c.EvidenceMaxTotal != 256<<20 {
		t.Errorf("default policy: refuse-tampered-upgrade %v, evidence-max-file %d, evidence-max-total %d", c.RefuseTampered, c.EvidenceMaxFile, c.EvidenceMaxTotal)
	}
	if c.LockDirectories || c.UnlockScope != ScopePlan {
		t.Errorf("default policy: lock-directories %v, unlock-scope %q", c.LockDirectories, c.UnlockScope)
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

// semantic is what a policy means, without where it was read from.
func semantic(c *Config) Config {
	s := *c
	s.File = ""
	s.Rules = nil
	for _, r := range c.Rules {
		r.File, r.Line = "", min(r.Line, 1)
		s.Rules = append(s.Rules, r)
	}
	return s
}

// FuzzParse: whatever Parse accepts, Format writes back as a configuration
// that parses to the same policy (and formats the same); whatever it
// refuses, it refuses with an error naming the file and a line of the
// input, and the setting only when it is one.
func FuzzParse(f *testing.F) {
	f.Add("lock-directories = yes\nexclude-path = /usr/[a-z]*\n")
	f.Add("exclude-package = linux-*\ninclude-path = /var/x\n")
	f.Add("unlock-scope = all # c\nexclude-path = /opt\ninclude-path = /opt/x\nexclude-path = *.pyc\n")
	f.Add("exclude-path = /a#b\nexclude-package = lib[[:alpha:]]\\+\n")
	f.Add("mount-allow = /srv/*\nmount-allow = /usr/lib/[a-z]x\n")
	f.Add("refuse-tampered-upgrade = yes\nevidence-max-file = 1536K\nevidence-max-total = 0\n")
	f.Fuzz(func(t *testing.T, in string) {
		c, err := Parse(strings.NewReader(in), "fuzz.conf")
		if err != nil {
			var se *SyntaxError
			if !errors.As(err, &se) {
				if !strings.Contains(err.Error(), "fuzz.conf") {
					t.Fatalf("Parse error %q does not name the file", err)
				}
				return
			}
			if lines := strings.Count(in, "\n") + 1; se.File != "fuzz.conf" || se.Line < 1 || se.Line > lines {
				t.Fatalf("Parse error %q: file %q line %d, input has %d lines", err, se.File, se.Line, lines)
			}
			if _, known := lookup(se.Key); se.Key != "" && !known {
				t.Fatalf("Parse error %q names the unknown setting %q as one", err, se.Key)
			}
			return
		}
		out := c.Format()
		c2, err := Parse(strings.NewReader(out), "fuzz.conf")
		if err != nil {
			t.Fatalf("Parse(%q) accepted, but its Format\n%s\ndoes not parse: %v", in, out, err)
		}
		if a, b := semantic(c), semantic(c2); !reflect.DeepEqual(a, b) {
			t.Fatalf("Parse(%q) = %+v\nParse(Format()) = %+v", in, a, b)
		}
		if out2 := c2.Format(); out2 != out {
			t.Fatalf("Format is not stable: %q then %q", out, out2)
		}
	})
}
