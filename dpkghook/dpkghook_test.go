package dpkghook

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
)

func TestParseRealInvocations(t *testing.T) {
	tests := []struct {
		name    string
		args    string
		action  string
		kind    Kind
		rest    []string
		pending bool
		recurse bool
		fds     []int
		check   func(*Invocation) bool
	}{
		// The command lines apt 2.6 runs (apt-pkg/deb/dpkgpm.cc, observed with Debug::pkgDPkgPM).
		{name: "apt unpack recursive", args: "--status-fd 16 --no-triggers --unpack --auto-deconfigure --recursive /tmp/apt-dpkg-install-AJ8c0i",
			action: "unpack", kind: Files, rest: []string{"/tmp/apt-dpkg-install-AJ8c0i"}, recurse: true, fds: []int{16},
			check: func(i *Invocation) bool { return i.Triggers == -1 }},
		{name: "apt unpack debs", args: "--status-fd 16 --no-triggers --unpack --auto-deconfigure /var/cache/apt/archives/tzdata_2026f-0+deb12u1_all.deb",
			action: "unpack", kind: Files, rest: []string{"/var/cache/apt/archives/tzdata_2026f-0+deb12u1_all.deb"}, fds: []int{16}},
		{name: "apt configure pending", args: "--status-fd 16 --configure --pending", action: "configure", kind: Files, pending: true, fds: []int{16}},
		{name: "apt remove", args: "--status-fd 16 --no-triggers --force-depends --abort-after=1 --remove debsums:all",
			action: "remove", kind: Files, rest: []string{"debsums:all"}, fds: []int{16},
			check: func(i *Invocation) bool { return i.Forced("depends") && !i.Forced("overwrite") }},
		{name: "apt purge pending", args: "--status-fd 16 --no-triggers --purge --pending", action: "purge", kind: Files, pending: true, fds: []int{16}},
		{name: "apt triggers pending", args: "--status-fd 16 --triggers-only --pending", action: "triggers-only", kind: Files, pending: true, fds: []int{16}},
		{name: "apt immediate configure", args: "--status-fd 16 --configure libc6:amd64 base-files:amd64", action: "configure", kind: Files, rest: []string{"libc6:amd64", "base-files:amd64"}, fds: []int{16}},
		{name: "apt remove essential", args: "--status-fd 16 --force-remove-essential --force-remove-protected --remove foo:amd64", action: "remove", kind: Files, rest: []string{"foo:amd64"}, fds: []int{16},
			check: func(i *Invocation) bool { return i.Forced("remove-essential") && i.Forced("remove-protected") }},
		{name: "apt set-selections", args: "--set-selections", action: "set-selections", kind: Database},
		{name: "apt print foreign", args: "--print-foreign-architectures", action: "print-foreign-architectures", kind: ReadOnly},
		{name: "apt assert multi-arch", args: "--assert-multi-arch", action: "assert-multi-arch", kind: ReadOnly},
		{name: "apt assert protected", args: "--assert-protected-field", action: "assert-protected-field", kind: ReadOnly},
		// Direct use.
		{name: "dpkg -i", args: "-i a.deb b.deb", action: "install", kind: Files, rest: []string{"a.deb", "b.deb"}},
		{name: "dpkg -iR clustered", args: "-iR /srv/debs", action: "install", kind: Files, rest: []string{"/srv/debs"}, recurse: true},
		{name: "configure -a", args: "--configure -a", action: "configure", kind: Files, pending: true},
		{name: "purge short", args: "-P foo", action: "purge", kind: Files, rest: []string{"foo"}},
		{name: "remove short", args: "-r foo bar", action: "remove", kind: Files, rest: []string{"foo", "bar"}},
		{name: "root and admindir", args: "--root=/srv/chroot --admindir /srv/db --log=/tmp/l -i x.deb", action: "install", kind: Files, rest: []string{"x.deb"},
			check: func(i *Invocation) bool {
				return i.Root == "/srv/chroot" && i.Admindir == "/srv/db" && i.Log == "/tmp/l"
			}},
		{name: "root implies admindir", args: "--root /srv/chroot -P x", action: "purge", kind: Files, rest: []string{"x"},
			check: func(i *Invocation) bool { return i.Admindir == "/srv/chroot/var/lib/dpkg" }},
		{name: "instdir keeps admindir", args: "--instdir=/srv/x -r y", action: "remove", kind: Files, rest: []string{"y"},
			check: func(i *Invocation) bool { return i.Root == "/srv/x" && i.Admindir == "" }},
		{name: "force list", args: "--force-confold,confdef --refuse-downgrade -i x.deb", action: "install", kind: Files, rest: []string{"x.deb"},
			check: func(i *Invocation) bool { return i.Forced("confold") && i.Forced("confdef") && !i.Forced("downgrade") }},
		{name: "force all then refuse", args: "--force-all --no-force-overwrite -i x.deb", action: "install", kind: Files, rest: []string{"x.deb"},
			check: func(i *Invocation) bool { return i.Forced("depends") && !i.Forced("overwrite") }},
		{name: "no-act", args: "--no-act -i x.deb", action: "install", kind: ReadOnly, rest: []string{"x.deb"}},
		{name: "dry-run remove", args: "--dry-run -r x", action: "remove", kind: ReadOnly, rest: []string{"x"}},
		{name: "compare-versions", args: "--compare-versions 1.0 lt 2.0", action: "compare-versions", kind: ReadOnly, rest: []string{"1.0", "lt", "2.0"}},
		{name: "list", args: "-l", action: "list", kind: ReadOnly},
		{name: "listfiles", args: "-L coreutils", action: "listfiles", kind: ReadOnly, rest: []string{"coreutils"}},
		{name: "search", args: "-S /usr/bin/ls", action: "search", kind: ReadOnly, rest: []string{"/usr/bin/ls"}},
		{name: "verify", args: "--verify", action: "verify", kind: ReadOnly},
		{name: "debug value", args: "-D10 --debug=1 -i x.deb", action: "install", kind: Files, rest: []string{"x.deb"}},
		{name: "dpkg-deb backend", args: "-c x.deb", action: "contents", kind: ReadOnly, rest: []string{"x.deb"}},
		{name: "add architecture", args: "--add-architecture i386", action: "add-architecture", kind: Database, rest: []string{"i386"}},
		{name: "double dash", args: "-i -- -strange.deb", action: "install", kind: Files, rest: []string{"-strange.deb"}},
		{name: "options stop at first argument", args: "-i x.deb --no-act", action: "install", kind: Files, rest: []string{"x.deb", "--no-act"}},
		{name: "force help", args: "--force-help", action: "force-help", kind: ReadOnly},
		{name: "no action", args: "--status-fd 3", action: "", kind: ReadOnly, fds: []int{3}},
		{name: "path filters", args: "--path-exclude=/usr/share/doc/* --path-include=/usr/share/doc/*/copyright -i x.deb", action: "install", kind: Files, rest: []string{"x.deb"},
			check: func(i *Invocation) bool {
				return reflect.DeepEqual(i.PathFilters, []string{"-/usr/share/doc/*", "+/usr/share/doc/*/copyright"})
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv, err := Parse(strings.Fields(tt.args), nil)
			if err != nil {
				t.Fatalf("Parse(%q) error = %v", tt.args, err)
			}
			if inv.Action != tt.action || inv.Kind() != tt.kind || !reflect.DeepEqual(inv.Args, tt.rest) ||
				inv.Pending != tt.pending || inv.Recursive != tt.recurse || !reflect.DeepEqual(inv.StatusFDs, tt.fds) {
				t.Errorf("Parse(%q) = action %q kind %v args %q pending %v recursive %v fds %v; want %q %v %q %v %v %v",
					tt.args, inv.Action, inv.Kind(), inv.Args, inv.Pending, inv.Recursive, inv.StatusFDs,
					tt.action, tt.kind, tt.rest, tt.pending, tt.recurse, tt.fds)
			}
			if tt.check != nil && !tt.check(inv) {
				t.Errorf("Parse(%q) = %+v: check failed", tt.args, inv)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	for _, args := range []string{
		"--no-such-option -i x.deb",
		"-Z",
		"-i x.deb -r", // not an error: "-r" is an argument after x.deb
		"--root",
		"--status-fd x --configure -a",
		"-i -r x",
		"--pending=yes",
		"--force",
	} {
		inv, err := Parse(strings.Fields(args), nil)
		if args == "-i x.deb -r" {
			if err != nil || !reflect.DeepEqual(inv.Args, []string{"x.deb", "-r"}) {
				t.Errorf("Parse(%q) = %v, %v", args, inv, err)
			}
			continue
		}
		if !errors.Is(err, ErrUsage) {
			t.Errorf("Parse(%q) error = %v, want ErrUsage", args, err)
		}
	}
}

func TestParseConfig(t *testing.T) {
	dir := t.TempDir()
	d := filepath.Join(dir, "dpkg.cfg.d")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{
		"dpkg.cfg.d/docker-apt-speedup": "# comment\nforce-unsafe-io\n",
		"dpkg.cfg.d/excludes":           "path-exclude=/usr/share/doc/*\npath-include /usr/share/doc/*/copyright\n",
		"dpkg.cfg.d/debseal":            "pre-invoke=if [ -x /usr/sbin/debseal ]; then /usr/sbin/debseal hook dpkg-pre; fi\n",
		"dpkg.cfg.d/ignored.dpkg-old":   "this is not read\n",
		"dpkg.cfg":                      "no-debsig\nlog /var/log/dpkg.log\n",
	}
	for name, body := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	base, err := ParseConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !base.Forced("unsafe-io") || base.Log != "/var/log/dpkg.log" ||
		!reflect.DeepEqual(base.PathFilters, []string{"-/usr/share/doc/*", "+/usr/share/doc/*/copyright"}) {
		t.Errorf("ParseConfig() = %+v", base)
	}
	inv, err := Parse([]string{"--log=/tmp/other", "-i", "x.deb"}, base)
	if err != nil {
		t.Fatal(err)
	}
	if inv.Log != "/tmp/other" || !inv.Forced("unsafe-io") || inv.Action != "install" {
		t.Errorf("command line over config = %+v", inv)
	}
	if err := os.WriteFile(filepath.Join(d, "bad"), []byte("no-such-option\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ParseConfig(dir); err == nil || !strings.Contains(err.Error(), "bad:1") {
		t.Errorf("ParseConfig(bad) error = %v, want one naming bad:1", err)
	}
}

// Captured from apt 2.6.1 (apt-get install hello sl figlet cowsay toilet
// toilet-fonts fortune-mod; an upgrade of tzdata; a purge of debsums),
// shortened: the configuration block keeps a few keys.
const aptV3 = `VERSION 3
APT::Architecture=amd64
APT::Build-Essential::=build-essential
DPkg::Pre-Install-Pkgs::=/usr/sbin/dpkg-preconfigure%20--apt%20||%20true
DPkg::Pre-Install-Pkgs::=/usr/sbin/debseal%20hook%20apt-pre-install-pkgs
CommandLine::AsString=apt-get%20install%20hello
Weird%3dKey=with%25percent

libtext-charwidth-perl - - none < 0.04-11 amd64 same /var/cache/apt/archives/libtext-charwidth-perl_0.04-11_amd64.deb
cowsay - - none < 3.03+dfsg2-8 all none /var/cache/apt/archives/cowsay_3.03+dfsg2-8_all.deb
tzdata 2025b-0+deb12u2 all foreign < 2026f-0+deb12u1 all foreign /var/cache/apt/archives/tzdata_2026f-0+deb12u1_all.deb
debsums 3.0.2.1 all none > - - none **REMOVE**
libtext-charwidth-perl - - none < 0.04-11 amd64 same **CONFIGURE**
tzdata 2025b-0+deb12u2 all foreign < 2026f-0+deb12u1 all foreign **CONFIGURE**
stuff 2 amd64 none > - - none **REMOVE**
stuff - - none < 2 i386 none **CONFIGURE**
odd 1 amd64 none = 1 amd64 none **ERROR**
`

func TestParseAptV3(t *testing.T) {
	info, err := ParseApt(strings.NewReader(aptV3))
	if err != nil {
		t.Fatal(err)
	}
	if info.Version != 3 || len(info.Lines) != 9 {
		t.Fatalf("version %d, %d lines", info.Version, len(info.Lines))
	}
	if got := info.Config["CommandLine::AsString"]; got != "apt-get install hello" {
		t.Errorf("config decoding: %q", got)
	}
	if got := info.Config["Weird=Key"]; got != "with%percent" {
		t.Errorf("key decoding: %q", got)
	}
	if got := info.Config["DPkg::Pre-Install-Pkgs::"]; !strings.Contains(got, "\n/usr/sbin/debseal hook") {
		t.Errorf("list members: %q", got)
	}
	want := []struct{ spec, kind, deb string }{
		{"libtext-charwidth-perl:amd64", "unpack", "/var/cache/apt/archives/libtext-charwidth-perl_0.04-11_amd64.deb"},
		{"cowsay:all", "unpack", "/var/cache/apt/archives/cowsay_3.03+dfsg2-8_all.deb"},
		{"tzdata:all", "unpack", "/var/cache/apt/archives/tzdata_2026f-0+deb12u1_all.deb"},
		{"debsums:all", "remove", ""},
		{"libtext-charwidth-perl:amd64", "configure", ""},
		{"tzdata:all", "configure", ""},
		{"stuff:amd64", "remove", ""},
		{"stuff:i386", "configure", ""},
		{"odd:amd64", "error", ""},
	}
	for i, w := range want {
		l := info.Lines[i]
		if l.Spec() != w.spec || l.Kind.String() != w.kind || l.Deb != w.deb {
			t.Errorf("line %d = %s %s %s, want %s %s %s", i, l.Spec(), l.Kind, l.Deb, w.spec, w.kind, w.deb)
		}
	}
	tz := info.Lines[2]
	if tz.OldVersion != "2025b-0+deb12u2" || tz.NewVersion != "2026f-0+deb12u1" || tz.Op != '<' || tz.NewMA != "foreign" {
		t.Errorf("tzdata line = %+v", tz)
	}
	if info.Lines[3].NewVersion != "" || info.Lines[3].Op != '>' {
		t.Errorf("removal line = %+v", info.Lines[3])
	}
}

func TestParseAptV2AndV1(t *testing.T) {
	info, err := ParseApt(strings.NewReader("VERSION 2\nA=b\n\ndebsums 3.0.2.1 > - **REMOVE**\nhello - < 2.10-3 /var/cache/apt/archives/hello_2.10-3_amd64.deb\n"))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Lines) != 2 || info.Lines[0].Kind != AptRemove || info.Lines[1].Deb == "" || info.Lines[1].Spec() != "hello" {
		t.Errorf("VERSION 2 = %+v", info.Lines)
	}
	info, err = ParseApt(strings.NewReader("/var/cache/apt/archives/a.deb\n/var/cache/apt/archives/b.deb\n"))
	if err != nil || info.Version != 1 || len(info.Debs) != 2 {
		t.Errorf("VERSION 1 = %+v, %v", info, err)
	}
	info, err = ParseApt(strings.NewReader(""))
	if err != nil || len(info.Debs)+len(info.Lines) != 0 {
		t.Errorf("empty input = %+v, %v", info, err)
	}
}

func TestParseAptErrors(t *testing.T) {
	for _, in := range []string{
		"VERSION 9\n\n",
		"VERSION 3\nnoequals\n\n",
		"VERSION 3\nA=%zz\n\n",
		"VERSION 3\n\nhello - - none < 1 amd64 none\n",
		"VERSION 3\n\nhello - - none ? 1 amd64 none **CONFIGURE**\n",
		"VERSION 3\n\nhello - - none < 1 amd64 none relative.deb\n",
		"VERSION 2\n\nhello - < 1 amd64 none **CONFIGURE**\n",
		"VERSION 3\n\nhello  - - none < 1 amd64 none **CONFIGURE**\n",
	} {
		if _, err := ParseApt(strings.NewReader(in)); !errors.Is(err, ErrAptSyntax) {
			t.Errorf("ParseApt(%q) error = %v, want ErrAptSyntax", in, err)
		}
	}
}

// An archive path with spaces is still one field: apt writes it last, as
// it is (apt-get install "./my pkg.deb"). Getting this wrong would abort
// apt in the Pre-Install-Pkgs hook.
func TestParseAptPathWithSpaces(t *testing.T) {
	in := "VERSION 3\nA=b\n\nmy-pkg - - none < 1.0 all none /root/my debs/my pkg_1.0_all.deb\n"
	info, err := ParseApt(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Lines) != 1 || info.Lines[0].Deb != "/root/my debs/my pkg_1.0_all.deb" || info.Lines[0].NewVersion != "1.0" {
		t.Fatalf("ParseApt(%q) = %+v", in, info.Lines)
	}
	if r := info.Request(); len(r.Debs) != 1 || r.Debs[0] != info.Lines[0].Deb {
		t.Errorf("Request().Debs = %q", r.Debs)
	}
}

// **ERROR** means apt will give dpkg an archive by a path debseal cannot
// resolve: the request must say it cannot tell what the run touches, so
// Begin unlocks everything sealed instead of leaving files locked.
func TestAptErrorLineIsUnknown(t *testing.T) {
	info, err := ParseApt(strings.NewReader(aptV3))
	if err != nil {
		t.Fatal(err)
	}
	if r := info.Request(); !strings.Contains(r.Unknown, "odd:amd64") {
		t.Errorf("Request().Unknown = %q, want a reason naming odd:amd64", r.Unknown)
	}
	info.Lines = info.Lines[:len(info.Lines)-1]
	if r := info.Request(); r.Unknown != "" {
		t.Errorf("without the **ERROR** line, Request().Unknown = %q", r.Unknown)
	}
}

func TestProc(t *testing.T) {
	p, err := ReadProc("/proc", os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if p.Pid != os.Getpid() || p.PPid != os.Getppid() || p.StartTime == 0 || len(p.Cmdline) == 0 {
		t.Errorf("ReadProc(self) = %+v", p)
	}
	if !Alive("/proc", p.ID()) {
		t.Error("Alive(self) = false")
	}
	if Alive("/proc", ProcID{Pid: p.Pid, StartTime: p.StartTime + 1}) {
		t.Error("a recycled pid counts as alive")
	}
	q, err := parseStat([]byte("42 (a (weird) name) S 7 42 42 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 12345 0 0"))
	if err != nil || q.Comm != "a (weird) name" || q.PPid != 7 || q.StartTime != 12345 {
		t.Errorf("parseStat = %+v, %v", q, err)
	}
}

// argv renders an invocation as a command line that Parse reads back to
// the same invocation: the action, then every option's final value, then
// "--" and the arguments.
func argv(inv *Invocation) []string {
	var a []string
	if inv.Action != "" {
		a = append(a, "--"+inv.Action) // "--assert-X" and "--force-help" too
	}
	for _, o := range []struct {
		on   bool
		flag string
	}{{inv.Pending, "--pending"}, {inv.Recursive, "--recursive"}, {inv.NoAct, "--no-act"},
		{inv.Triggers > 0, "--triggers"}, {inv.Triggers < 0, "--no-triggers"}} {
		if o.on {
			a = append(a, o.flag)
		}
	}
	// --root sets both; --instdir and --admindir set one each.
	if inv.Root != "" {
		a = append(a, "--instdir="+inv.Root)
	}
	if inv.Admindir != "" {
		a = append(a, "--admindir="+inv.Admindir)
	}
	if inv.Force != nil {
		// One option: "--force-help" alone would be the action.
		a = append(a, "--force-"+strings.Join(inv.Force, ","))
	}
	for _, fd := range inv.StatusFDs {
		a = append(a, "--status-fd="+strconv.Itoa(fd))
	}
	if inv.Log != "" {
		a = append(a, "--log="+inv.Log)
	}
	for _, f := range inv.PathFilters {
		a = append(a, map[byte]string{'-': "--path-exclude=", '+': "--path-include="}[f[0]]+f[1:])
	}
	if len(inv.Args) > 0 {
		a = append(append(a, "--"), inv.Args...)
	}
	return a
}

// FuzzParse: what Parse accepts, rendered back as a command line (argv),
// parses to the same invocation; and a command line on which Parse finds
// an action that changes files is one on which Salvage (the wrapper's
// fallback for command lines Parse refuses) finds one too.
func FuzzParse(f *testing.F) {
	f.Add("--status-fd 16 --no-triggers --unpack --auto-deconfigure --recursive /tmp/x")
	f.Add("-iR -D10 --force-all,no-overwrite -- -x.deb")
	f.Add("--root /r --refuse-downgrade --path-exclude=/usr/share/doc/* --path-include /usr/share/doc/*/copyright -P a b")
	f.Add("--assert-multi-arch --log=/l --status-fd=3 --status-fd +4 --triggers")
	f.Add("--instdir /i --admindir=/a -Ga --configure --no-act")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Fields(s)
		inv, err := Parse(args, nil)
		if err != nil {
			if !errors.Is(err, ErrUsage) {
				t.Fatalf("Parse(%q) = %v, not an ErrUsage", args, err)
			}
			return
		}
		back := argv(inv)
		again, err := Parse(back, nil)
		if err != nil {
			t.Fatalf("Parse(%q) = %+v, rendered as %q, which Parse refuses: %v", args, inv, back, err)
		}
		if !reflect.DeepEqual(inv, again) {
			t.Fatalf("Parse(%q) = %+v\nrendered as %q, parses to %+v", args, inv, back, again)
		}
		if inv.Kind() == Files {
			if sal := Salvage(args); sal.Kind() != Files {
				t.Fatalf("Parse(%q) finds the file action %s, Salvage finds %q", args, inv.Action, sal.Action)
			}
		}
	})
}

func FuzzParseApt(f *testing.F) {
	f.Add(aptV3)
	f.Add("VERSION 2\nA=b\n\nx 1 > - **REMOVE**\n")
	f.Fuzz(func(t *testing.T, s string) {
		info, err := ParseApt(strings.NewReader(s))
		if err != nil {
			return
		}
		for _, l := range info.Lines {
			if l.Kind == AptUnpack && !strings.HasPrefix(l.Deb, "/") {
				t.Fatalf("relative deb accepted: %+v", l)
			}
		}
	})
}

// TestCapturedAptInput parses what apt 2.6.1 really wrote to a
// Pre-Install-Pkgs hook in a bookworm chroot (testdata/apt/README).
func TestCapturedAptInput(t *testing.T) {
	tests := []struct {
		file    string
		specs   []string
		kinds   []AptActionKind
		request func(r []string) bool
	}{
		{"v3-install-nano.txt",
			[]string{"libncursesw6:amd64", "nano:amd64", "libgpm2:amd64", "libncursesw6:amd64", "nano:amd64", "libgpm2:amd64"},
			[]AptActionKind{AptUnpack, AptUnpack, AptUnpack, AptConfigure, AptConfigure, AptConfigure}, nil},
		{"v3-purge-hello.txt", []string{"hello:amd64"}, []AptActionKind{AptRemove}, nil},
		{"v3-upgrade-tzdata-liblzma5.txt",
			[]string{"liblzma5:amd64", "liblzma5:amd64", "tzdata:all", "tzdata:all"},
			[]AptActionKind{AptUnpack, AptConfigure, AptUnpack, AptConfigure}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			f, err := os.Open(filepath.Join("..", "testdata", "apt", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			info, err := ParseApt(f)
			if err != nil {
				t.Fatal(err)
			}
			if info.Version != 3 || info.Config["APT::Architecture"] != "amd64" {
				t.Errorf("version %d, APT::Architecture %q", info.Version, info.Config["APT::Architecture"])
			}
			var specs []string
			var kinds []AptActionKind
			for _, l := range info.Lines {
				specs = append(specs, l.Spec())
				kinds = append(kinds, l.Kind)
				if l.Kind == AptUnpack && !strings.HasPrefix(l.Deb, "/var/cache/apt/archives/") {
					t.Errorf("deb path %q", l.Deb)
				}
			}
			if !reflect.DeepEqual(specs, tt.specs) || !reflect.DeepEqual(kinds, tt.kinds) {
				t.Errorf("lines = %v %v, want %v %v", specs, kinds, tt.specs, tt.kinds)
			}
			req := info.Request()
			if !req.ConfigurePending {
				t.Error("an apt transaction ends with --configure --pending")
			}
		})
	}
}

func TestSalvage(t *testing.T) {
	tests := []struct {
		name   string
		args   string
		action string
		root   string
	}{
		{"long action after an unknown option", "--future --remove x", "remove", ""},
		{"unknown option with value", "--future=1 --root /sb --purge x", "purge", "/sb"},
		{"short cluster", "-BiZ x.deb", "install", ""},
		{"query only", "--future -L x", "", ""},
		{"after --", "--future -- --remove", "", ""},
		{"instdir=", "--instdir=/i --unpack --future a.deb", "unpack", "/i"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			inv := Salvage(strings.Fields(tt.args))
			if inv.Action != tt.action || inv.Root != tt.root {
				t.Errorf("Salvage(%q) = action %q root %q, want %q %q", tt.args, inv.Action, inv.Root, tt.action, tt.root)
			}
		})
	}
}
