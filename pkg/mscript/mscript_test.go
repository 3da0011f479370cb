package mscript

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

func TestScan(t *testing.T) {
	tests := []struct {
		name string
		body string
		// want lists what the result must include; fields left empty
		// are not checked, except Escalate.
		paths, prefixes, globs, triggers, statoverrides, sources, packages []string
		diverts                                                            []Divert
		escalate                                                           string // a substring of the reason; "" wants none
		unknownTriggers                                                    bool
		notPaths                                                           []string
	}{
		// issue 13 item 6: another package's file edited through a variable
		{name: "DPKG_ROOT prefix", body: "#!/bin/sh\nrm -f \"$DPKG_ROOT/usr/bin/x\"\n", paths: []string{"/usr/bin/x"}},
		{name: "append through a variable", body: "#!/bin/sh\nF=/usr/lib/x\necho foo >> \"$F\"\n", paths: []string{"/usr/lib/x"}},
		{name: "directory variable and a name", body: "#!/bin/sh\nD=/usr/lib/x; rm $D/f\n", paths: []string{"/usr/lib/x/f"}},
		{name: "braces and concatenation", body: "#!/bin/sh\nD=/usr/lib\nrm -f ${D}/a \"$D\"/b \"${D}/c\"\n", paths: []string{"/usr/lib/a", "/usr/lib/b", "/usr/lib/c"}},
		{name: "variable built from a variable", body: "#!/bin/sh\nF=$D/f\nD=/usr/share/x\ntruncate -s 0 \"$F\"\n", paths: []string{"/usr/share/x/f"}},
		{name: "default value", body: "#!/bin/sh\nV=/usr/lib/v\nrm -f \"${V:-/usr/lib/x}/f\"\n", paths: []string{"/usr/lib/v/f", "/usr/lib/x/f"}},
		{name: "default of an unset variable escalates", body: "#!/bin/sh\nrm -f \"${V:-/usr/lib/x}/f\"\n", escalate: "cannot be resolved"},
		{name: "export local readonly", body: "#!/bin/sh\nexport E=/usr/lib/e\nreadonly R=/usr/lib/r\nf() {\n  local L=/usr/lib/l\n  rm -f \"$E\" \"$R\" \"$L\"\n}\nf\n", paths: []string{"/usr/lib/e", "/usr/lib/r", "/usr/lib/l"}},
		{name: "bash declarations", body: "#!/bin/bash\nf() { local -r L=/usr/lib/l; declare D=/usr/lib/d; rm -f \"$L\" \"$D\"; }\nf\n", paths: []string{"/usr/lib/l", "/usr/lib/d"}},

		// what the engine must not stop on: paths it reads, non-package paths
		{name: "procps container check", body: "#!/bin/sh\nif grep -qz '^container=' /proc/1/environ; then :; fi\n", paths: []string{"/proc/1/environ"}},
		{name: "positional parameter at the top level", body: "#!/bin/sh\nrm -f \"$1\"\nrmdir $2 2>/dev/null || true\n"},
		{name: "computed name under /etc", body: "#!/bin/sh\nfor f in $(ls /etc/x); do rm -f /etc/x/$f; done\nrm -rf /var/cache/x/$(cat /tmp/y)\n"},
		{name: "computed read-only words", body: "#!/bin/sh\nif [ -e \"$(cat /x)\" ]; then grep foo \"$unknown\" >/dev/null; sed 's/a/b/' $f; fi\n"},
		{name: "mktemp", body: "#!/bin/sh\nt=$(mktemp)\necho x > \"$t\"\nmv \"$t\" /usr/lib/x/conf\nd=$(mktemp -d -p /var/tmp)\nrm -rf \"$d\"\n", paths: []string{"/usr/lib/x/conf"}},
		{name: "debconf", body: "#!/bin/sh\nset -e\n. /usr/share/debconf/confmodule\ndb_get x/y\n", sources: []string{"/usr/share/debconf/confmodule"}, paths: []string{"/usr/share/debconf/confmodule"}},
		{name: "computed source escalates", body: "#!/bin/sh\n. \"$LIB\"\n", escalate: "sources a file"},

		// computed names bounded by a directory
		{name: "prefix", body: "#!/bin/sh\nrm -rf /usr/lib/x/$v\n", prefixes: []string{"/usr/lib/x"}},
		{name: "glob", body: "#!/bin/sh\nfor s in /usr/bin/*-pkg-config; do rm -f \"$s\"; done\n", globs: []string{"/usr/bin/*-pkg-config"}},
		{name: "recursive rm of a literal directory", body: "#!/bin/sh\nrm -rf /usr/lib/old\n", paths: []string{"/usr/lib/old"}, prefixes: []string{"/usr/lib/old"}},
		{name: "computed path in / escalates", body: "#!/bin/sh\nrm -rf /$v\n", escalate: "computed path in /"},
		{name: "unresolvable path escalates", body: "#!/bin/sh\nrm -rf \"$v\"\n", escalate: "rm changes a path that cannot be resolved"},
		{name: "redirection to a computed path escalates", body: "#!/bin/sh\necho x > \"$out\"\n", escalate: "a redirection writes"},
		{name: "command substitution escalates", body: "#!/bin/sh\nrm -f $(cat /usr/share/x/list)\n", escalate: "cannot be resolved"},
		{name: "find with -delete", body: "#!/bin/sh\nfind /usr/lib/python3/dist-packages/x -name '*.pyc' -delete\n", prefixes: []string{"/usr/lib/python3/dist-packages/x"}},
		{name: "find piped to xargs", body: "#!/bin/sh\nfind /usr/lib/x -name __pycache__ | xargs -r rm -rf\n", prefixes: []string{"/usr/lib/x"}},
		{name: "xargs from elsewhere escalates", body: "#!/bin/sh\ncat /usr/share/x/list | xargs rm -f\n", escalate: "names read from its input"},
		{name: "find read-only", body: "#!/bin/sh\nfind /usr/lib/x -name '*.so' -print\n"},
		{name: "files of a package", body: "#!/bin/sh\ndpkg -L python3-x | grep '\\.py$' | while read f; do rm -f \"${f}c\"; done\n", packages: []string{"python3-x"}},

		// shell structure
		{name: "here-document with a substitution", body: "#!/bin/sh\ncat > /usr/lib/x/conf <<EOF\n$(rm -f /usr/lib/y)\nEOF\n", paths: []string{"/usr/lib/x/conf", "/usr/lib/y"}},
		{name: "here-document run by sh", body: "#!/bin/sh\nsh <<'EOF'\nrm -f /usr/lib/z\nEOF\n", paths: []string{"/usr/lib/z"}},
		{name: "here-document lines read", body: "#!/bin/sh\n(\n while read f; do rm -f \"$f\"; done\n) <<DATA\n/usr/lib/a\n/usr/lib/b\nDATA\n", paths: []string{"/usr/lib/a", "/usr/lib/b"}},
		{name: "here-document data is not code", body: "#!/bin/sh\ncat <<EOF | debconf-set-selections\nx x/y string /usr/lib/q\nEOF\n", notPaths: []string{"/usr/lib/q"}},
		{name: "function parameters", body: "#!/bin/sh\nf() { rm -f \"$1\"; }\nf /usr/lib/a\nf \"/usr/lib/b\"\n", paths: []string{"/usr/lib/a", "/usr/lib/b"}},
		{name: "function parameter unresolved", body: "#!/bin/sh\nf() { rm -f \"$1\"; }\nf \"$x\"\n", escalate: "rm changes"},
		{name: "function never called", body: "#!/bin/sh\nf() { rm -f \"$1\"; }\n"},
		{name: "case arms", body: "#!/bin/sh\ncase \"$1\" in\nconfigure) rm -f /usr/lib/c ;;\n*) D=/usr/lib/d ;;\nesac\nrm -f \"$D/x\"\n", paths: []string{"/usr/lib/c", "/usr/lib/d/x"}},
		{name: "for list", body: "#!/bin/sh\nfor f in /usr/lib/a /usr/lib/b; do rm \"$f\"; done\n", paths: []string{"/usr/lib/a", "/usr/lib/b"}},
		{name: "for over a variable's words", body: "#!/bin/sh\nL=\"/usr/lib/a /usr/lib/b\"\nfor f in $L; do rm \"$f\"; done\nrm -f $L\n", paths: []string{"/usr/lib/a", "/usr/lib/b"}},
		{name: "loop variable is its list in the body", body: "#!/bin/sh\nfor f in /usr/lib/a; do rm \"$f\"; done\nf=$(cat /x)\necho \"$f\"\n", paths: []string{"/usr/lib/a"}},
		{name: "subshell and cd", body: "#!/bin/sh\n(cd /usr/lib/x && rm -f f)\n", paths: []string{"/usr/lib/x/f"}},
		{name: "if while and pipelines", body: "#!/bin/sh\nif true; then while false; do chmod 755 /usr/bin/w | cat; done; fi\n", paths: []string{"/usr/bin/w"}},
		{name: "eval of a literal string", body: "#!/bin/sh\nF=/usr/lib/e\neval \"rm -f $F\"\ntrap 'rm -f /usr/lib/t' EXIT\n", paths: []string{"/usr/lib/e", "/usr/lib/t"}},
		{name: "eval of a computed string escalates", body: "#!/bin/sh\neval \"$(cat /x)\"\n", escalate: "computed string"},
		{name: "apt-config shell", body: "#!/bin/sh\neval $(apt-config shell T Dir::Etc::Trusted/f)\n"},
		{name: "sed -i", body: "#!/bin/sh\nsed -i 's/a/b/' /usr/share/x/file\nsed -i -e 's/a/b/' \"$DPKG_ROOT/usr/share/x/g\"\n", paths: []string{"/usr/share/x/file", "/usr/share/x/g"}},
		{name: "sed -i on a computed file escalates", body: "#!/bin/sh\nsed -i 's/a/b/' \"$f\"\n", escalate: "sed changes"},
		{name: "cp into a directory", body: "#!/bin/sh\ncp /usr/share/x/a /usr/lib/dir/\nln -sf /usr/lib/t /usr/bin/l\n", paths: []string{"/usr/lib/dir", "/usr/lib/dir/a", "/usr/bin/l"}},
		{name: "recursive copy", body: "#!/bin/sh\ncp -a /usr/share/x/tree /usr/lib/y/\n", prefixes: []string{"/usr/lib/y/tree"}},
		{name: "computed command", body: "#!/bin/sh\n$cmd /usr/lib/x\n", paths: []string{"/usr/lib/x"}},
		{name: "computed command on a computed path escalates", body: "#!/bin/sh\n$cmd \"$v\"\n", escalate: "computed command"},
		{name: "empty command word", body: "#!/bin/sh\nSUDO=\n$SUDO rm -rf \"$v\"\n", escalate: "rm changes"},
		{name: "wrapper in a variable", body: "#!/bin/sh\nW=nice\n$W rm -rf /usr/lib/w/$v\n", prefixes: []string{"/usr/lib/w"}},
		{name: "hook from a package directory", body: "#!/bin/sh\nfor h in /usr/share/python3/runtime.d/*.rtupdate; do $h rtupdate \"$v\"; done\n"},
		{name: "echo and sed substitution", body: "#!/bin/sh\nfor v in vim71 vim72; do p=\"$(echo /usr/share/vim/@V@/doc | sed s/@V@/$v/)\"; rm -f \"$p/tags\"; done\n", paths: []string{"/usr/share/vim/vim71/doc/tags", "/usr/share/vim/vim72/doc/tags"}},
		{name: "basename and dirname", body: "#!/bin/sh\nF=/usr/lib/x/y.so\nrm -f \"$(dirname $F)/z\" \"/usr/lib/q/$(basename $F)\"\n", paths: []string{"/usr/lib/x/z", "/usr/lib/q/y.so"}},
		{name: "suffix and prefix removal", body: "#!/bin/sh\nF=/usr/lib/x/y.so.1\nrm -f \"${F%.1}\" \"${F%/*}/z\" \"/usr/share/${F##*/}\" \"/usr/${F#/usr/lib/}\"\n", paths: []string{"/usr/lib/x/y.so", "/usr/lib/x/z", "/usr/share/y.so.1", "/usr/x/y.so.1"}},

		// dpkg helpers
		{name: "divert remove rename", body: "#!/bin/sh\ndpkg-divert --package x --remove --rename /usr/bin/x\n",
			diverts: []Divert{{Remove: true, Rename: true, From: "/usr/bin/x", Package: "x"}}, paths: []string{"/usr/bin/x", "/usr/bin/x.distrib"}},
		{name: "divert add rename with divert", body: "#!/bin/sh\ndpkg-divert --add --rename --divert /usr/bin/x.real /usr/bin/x\n",
			diverts: []Divert{{Rename: true, From: "/usr/bin/x", To: "/usr/bin/x.real"}}, paths: []string{"/usr/bin/x", "/usr/bin/x.real"}},
		{name: "divert through a function", body: "#!/bin/sh\nadd() { dpkg-divert --package p --add --rename --divert \"$1.real\" \"$1\"; }\nadd /usr/bin/a\n",
			diverts: []Divert{{Rename: true, From: "/usr/bin/a", To: "/usr/bin/a.real", Package: "p"}}},
		{name: "divert rename computed escalates", body: "#!/bin/sh\ndpkg-divert --rename --add $(cat /etc/x)\n", escalate: "dpkg-divert --rename"},
		{name: "divert without rename", body: "#!/bin/sh\ndpkg-divert --package dash --no-rename --divert \"$d\" --add \"$f\"\n"},
		{name: "divert list", body: "#!/bin/sh\ndpkg-divert --list \"$x\" >/dev/null\n"},
		{name: "statoverride", body: "#!/bin/sh\nL=/usr/lib/dbus-1.0/dbus-daemon-launch-helper\nif ! dpkg-statoverride --list \"$L\" >/dev/null; then\n  dpkg-statoverride --update --add root messagebus 4754 \"$DPKG_ROOT$L\"\nfi\n",
			statoverrides: []string{"/usr/lib/dbus-1.0/dbus-daemon-launch-helper"}},
		{name: "statoverride computed escalates", body: "#!/bin/sh\ndpkg-statoverride --update --add root root 4755 \"$f\"\n", escalate: "dpkg-statoverride"},
		{name: "triggers", body: "#!/bin/sh\ndpkg-trigger --no-await ldconfig\nT=update-icon-caches\ndpkg-trigger $T\n", triggers: []string{"ldconfig", "update-icon-caches"}},
		{name: "computed trigger", body: "#!/bin/sh\ndpkg-trigger \"$T\"\n", unknownTriggers: true},
		{name: "maintscript helper", body: "#!/bin/sh\ndpkg-maintscript-helper symlink_to_dir /usr/share/doc/x y 1.0 -- \"$@\"\ndpkg-maintscript-helper dir_to_symlink /usr/lib/z /usr/lib/w 1.0 -- \"$@\"\ndpkg-maintscript-helper rm_conffile /etc/x/y 1.0 -- \"$@\"\nfor f in $(find /etc/x); do dpkg-maintscript-helper rm_conffile $f 1.0 -- \"$@\"; done\n",
			prefixes: []string{"/usr/share/doc/x", "/usr/lib/z"}, paths: []string{"/etc/x/y"}},
		{name: "bash brace expansion", body: "#!/bin/bash\nrm -f /usr/lib/x/{a,b}.so\n", paths: []string{"/usr/lib/x/a.so", "/usr/lib/x/b.so"}},
		{name: "no brace expansion in sh", body: "#!/bin/sh\nrm -f /usr/lib/x/{a,b}.so\n", paths: []string{"/usr/lib/x/{a,b}.so"}},
		{name: "glob in an unclean path", body: "#!/bin/sh\nrm -f /usr/lib/x/./*.so\n", globs: []string{"/usr/lib/x/*.so"}},
		{name: "truename moved into place", body: "#!/bin/sh\nt=$(dpkg-divert --truename /bin/sh)\nd=/bin/sh.distrib\nmv \"$t\" \"$d\"\n"},
		{name: "dpkg-query outputs", body: "#!/bin/sh\nfor a in $(dpkg-query -W -f '${Architecture}\\n' libx); do\n p=$(dpkg-query --control-path \"libx:$a\" postrm)\n rm -f \"$p\" /usr/lib/$a/libx.so\ndone\n", globs: []string{"/usr/lib/*/libx.so"}},
		{name: "dpkg-query conffiles escalate", body: "#!/bin/sh\nrm -f $(dpkg-query -W -f '${Conffiles}' x)\n", escalate: "rm changes"},
		{name: "sed e on a package's list", body: "#!/bin/sh\ndpkg -L python3-apt | sed -En -e '/^(.*)\\/(.+)\\.py$/s,,rm \"\\1/__pycache__/\\2\".*,e'\n", packages: []string{"python3-apt"}},
		{name: "sed e elsewhere escalates", body: "#!/bin/sh\ncat /usr/share/x/list | sed 's/^/rm /e'\n", escalate: "sed runs commands"},
		{name: "sed without e", body: "#!/bin/sh\necho x | sed -e 's/e/f/g' -e '/x/d'\n"},
		{name: "rmdir of computed names", body: "#!/bin/sh\nfind /usr/lib/python3/dist-packages/ -type d -name __pycache__ -empty -print0 | xargs --null --no-run-if-empty rmdir\nrmdir \"$d\" 2>/dev/null || true\n"},
		{name: "truename", body: "#!/bin/sh\nt=$(dpkg-divert --truename /bin/sh)\nrm -f \"$t\"\n"},

		// other interpreters and broken scripts
		{name: "perl escalates on dpkg-divert", body: "#!/usr/bin/perl\nsystem('dpkg-divert', '--rename', $f);\n", escalate: "perl script"},
		{name: "perl literal paths", body: "#!/usr/bin/perl -w\nunlink '/usr/lib/p/x';\nsystem('dpkg-trigger', $t);\n", paths: []string{"/usr/lib/p/x"}, unknownTriggers: true},
		{name: "python -c", body: "#!/bin/sh\npython3 -c 'import os; os.unlink(\"/usr/lib/py/x\")'\n", paths: []string{"/usr/lib/py/x"}},
		{name: "does not parse", body: "#!/bin/sh\nif then fi (\nrm -f /usr/lib/a\n", escalate: "does not parse", paths: []string{"/usr/lib/a"}},
		{name: "comments", body: "#!/bin/sh\n# dpkg-divert --rename --add $x\n    # rm -rf $y\n"},
		{name: "no shebang is shell", body: "rm -f /usr/lib/n\n", paths: []string{"/usr/lib/n"}},
		{name: "binary", body: "\x7fELF\x00\x00/usr/lib/b\x00dpkg-divert", paths: []string{"/usr/lib/b"}, escalate: "binary script"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Scan("test.postinst", []byte(tt.body))
			checkResult(t, tt.name, r)
			switch {
			case tt.escalate == "" && r.Escalate != "":
				t.Errorf("Escalate = %q, want none", r.Escalate)
			case tt.escalate != "" && !strings.Contains(r.Escalate, tt.escalate):
				t.Errorf("Escalate = %q, want it to say %q", r.Escalate, tt.escalate)
			case tt.escalate != "" && !strings.HasPrefix(r.Escalate, "test.postinst: "):
				t.Errorf("Escalate = %q, want it to name the script", r.Escalate)
			}
			includes(t, "Paths", r.Paths, tt.paths)
			includes(t, "Prefixes", r.Prefixes, tt.prefixes)
			includes(t, "Globs", r.Globs, tt.globs)
			includes(t, "Statoverrides", r.Statoverrides, tt.statoverrides)
			includes(t, "Sources", r.Sources, tt.sources)
			includes(t, "Packages", r.Packages, tt.packages)
			if tt.triggers != nil && !reflect.DeepEqual(r.Triggers, tt.triggers) {
				t.Errorf("Triggers = %q, want %q", r.Triggers, tt.triggers)
			}
			if r.UnknownTriggers != tt.unknownTriggers {
				t.Errorf("UnknownTriggers = %v, want %v", r.UnknownTriggers, tt.unknownTriggers)
			}
			if tt.diverts != nil && !reflect.DeepEqual(r.Diverts, tt.diverts) {
				t.Errorf("Diverts = %+v, want %+v", r.Diverts, tt.diverts)
			}
			for _, p := range tt.notPaths {
				for _, q := range r.Paths {
					if p == q {
						t.Errorf("Paths = %q, want no %s", r.Paths, p)
					}
				}
			}
		})
	}
}

func includes(t *testing.T, what string, got, want []string) {
	t.Helper()
	for _, w := range want {
		found := false
		for _, g := range got {
			found = found || g == w
		}
		if !found {
			t.Errorf("%s = %q, missing %s", what, got, w)
		}
	}
}

// TestScanTruename: a path dpkg-divert --truename gives is resolved by
// the caller through the diversions database.
func TestScanTruename(t *testing.T) {
	r := Scan("dash.postinst", []byte("#!/bin/sh\nt=$(dpkg-divert --truename /bin/sh)\nrm -f \"$DPKG_ROOT$t\"\n"))
	if r.Escalate != "" || !reflect.DeepEqual(r.Truenames, []string{"/bin/sh"}) {
		t.Errorf("Scan = %+v, want Truenames [/bin/sh] and no escalation", r)
	}
}

// TestScanBounded: hostile scripts cost bounded time and escalate or
// succeed, never hang.
func TestScanBounded(t *testing.T) {
	var b strings.Builder
	b.WriteString("#!/bin/sh\n")
	// 30 variables of 4 values each, concatenated: 4^30 combinations
	for i := 0; i < 30; i++ {
		for _, v := range []string{"a", "b", "c", "d"} {
			b.WriteString("V" + string(rune('A'+i%26)) + string(rune('a'+i/26)) + "=" + v + "\n")
		}
	}
	b.WriteString("rm -f /usr/lib/")
	for i := 0; i < 30; i++ {
		b.WriteString("$V" + string(rune('A'+i%26)) + string(rune('a'+i/26)))
	}
	b.WriteString("\n")
	// a self-growing variable
	b.WriteString("X=/usr/lib/x\nX=$X/y\nrm -f \"$X\"\n")
	// deep nesting
	b.WriteString(strings.Repeat("(", 300) + "true" + strings.Repeat(")", 300) + "\n")
	b.WriteString(strings.Repeat("if true; then ", 200) + ":" + strings.Repeat("; fi", 200) + "\n")
	deep := Scan("deep.postinst", []byte("#!/bin/sh\necho "+strings.Repeat("$(", 20000)+strings.Repeat(")", 20000)+"\n"))
	if !strings.Contains(deep.Escalate, "too deep to parse") {
		t.Errorf("Scan of 20000 nested $( = %+v, want an escalation before parsing", deep)
	}
	r := Scan("hostile.postinst", []byte(b.String()))
	checkResult(t, "hostile", r)
	if r.Escalate == "" {
		t.Errorf("Scan of a hostile script = %+v, want an escalation (nesting)", r)
	}
	if !containsStr(r.Prefixes, "/usr/lib") && !containsStr(r.Prefixes, "/usr/lib/x") {
		t.Errorf("Prefixes = %q, want the combinations bounded by /usr/lib", r.Prefixes)
	}
}

func containsStr(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// The shell reads bytes, not UTF-8: a Latin-1 byte in a comment or a
// message (exim4-config's config script has one) must not stop the
// analysis, and a path holding one cannot be named exactly: it escalates.
func TestScanNotUTF8(t *testing.T) {
	comment := Scan("x.postinst", []byte("#!/bin/sh\n# caf\xe9\necho 'd\xe9j\xe0'\nrm -f /usr/lib/x/y\n"))
	if comment.Escalate != "" || !slices.Contains(comment.Paths, "/usr/lib/x/y") {
		t.Errorf("Latin-1 in a comment: escalate %q, paths %v; want /usr/lib/x/y and no escalation", comment.Escalate, comment.Paths)
	}
	path := Scan("x.postinst", []byte("#!/bin/sh\nrm -f /usr/lib/caf\xe9\n"))
	if path.Escalate == "" {
		t.Errorf("a path with a Latin-1 byte did not escalate: %v", path.Paths)
	}
}
