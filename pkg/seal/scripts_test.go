package seal

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestScanScript(t *testing.T) {
	tests := []struct {
		name     string
		body     string
		paths    []string // must be included
		escalate bool
		triggers []string
	}{
		{name: "literal divert (postgresql-common)", body: "#!/bin/sh\nset -e\ncase \"$1\" in install|upgrade)\n\tdpkg-divert --package postgresql-common --rename --divert /usr/bin/pg_config.libpq-dev --add /usr/bin/pg_config\n;;\nesac\n",
			paths: []string{"/usr/bin/pg_config", "/usr/bin/pg_config.libpq-dev"}},
		{name: "variable assigned a literal (dbus)", body: "#!/bin/sh\nLAUNCHER=/usr/lib/dbus-1.0/dbus-daemon-launch-helper\nMESSAGEUSER=messagebus\nif ! dpkg-statoverride --list \"$LAUNCHER\" >/dev/null; then\n  dpkg-statoverride --update --add root \"$MESSAGEUSER\" 4754 \"$LAUNCHER\"\nfi\n",
			paths: []string{"/usr/lib/dbus-1.0/dbus-daemon-launch-helper"}},
		{name: "for loop (openssh)", body: "#!/bin/sh\nfor x in ssh-agent ssh-keysign; do\n  dpkg-statoverride --update --add root _ssh 2755 \"/usr/bin/$x\"\ndone\n",
			paths: []string{"/usr/bin/ssh-agent", "/usr/bin/ssh-keysign"}},
		{name: "positional parameter (vim-runtime)", body: "#!/bin/sh\nadd_diversion() {\n  dpkg-divert --package vim-runtime --add --rename \\\n    --divert \"$1.vim-tiny\" \"$1\"\n}\nadd_diversion /usr/share/vim/vim90/doc/help.txt\n",
			escalate: true, paths: []string{"/usr/share/vim/vim90/doc/help.txt"}},
		{name: "command substitution", body: "#!/bin/sh\ndpkg-divert --rename --add $(cat /etc/x)\n", escalate: true},
		{name: "no-rename is harmless (dash)", body: "#!/bin/sh\ndfile=$1\ndpkg-divert --package dash --no-rename --divert $distrib --add $dfile\n"},
		{name: "list only", body: "#!/bin/sh\nif ! dpkg-statoverride --list \"$FILE\" >/dev/null; then :; fi\n"},
		{name: "DPKG_ROOT prefix", body: "#!/bin/sh\ndpkg-statoverride --update --add root root 0700 \"$DPKG_ROOT/usr/bin/x\"\n", paths: []string{"/usr/bin/x"}},
		{name: "triggers", body: "#!/bin/sh\ndpkg-trigger --no-await ldconfig\nT=update-icon-caches\ndpkg-trigger $T\n", triggers: []string{"ldconfig", "update-icon-caches"}},
		{name: "perl escalates on helpers", body: "#!/usr/bin/perl\nsystem('dpkg-divert', '--rename', $f);\n", escalate: true},
		{name: "comments are ignored", body: "#!/bin/sh\n# dpkg-divert --rename --add $x\n    # e.g. dpkg-statoverride --update --add root staff 2775 $y\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := ScanScript("test.postinst", []byte(tt.body))
			if (sc.Escalate != "") != tt.escalate {
				t.Errorf("Escalate = %q, want escalation %v", sc.Escalate, tt.escalate)
			}
			for _, p := range tt.paths {
				found := false
				for _, q := range sc.Paths {
					found = found || q == p
				}
				if !found {
					t.Errorf("Paths = %q, missing %s", sc.Paths, p)
				}
			}
			if tt.triggers != nil && !reflect.DeepEqual(sc.Triggers, tt.triggers) {
				t.Errorf("Triggers = %q, want %q", sc.Triggers, tt.triggers)
			}
		})
	}
}

// TestScanHostScripts runs the scanner over this machine's real
// maintainer scripts (read-only) and reports which escalate. It checks
// the known cases and that escalation stays the exception.
func TestScanHostScripts(t *testing.T) {
	files, _ := filepath.Glob("/var/lib/dpkg/info/*inst")
	more, _ := filepath.Glob("/var/lib/dpkg/info/*rm")
	files = append(files, more...)
	if len(files) == 0 {
		t.Skip("no maintainer scripts on this machine")
	}
	var escalating []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		sc := ScanScript(filepath.Base(f), b)
		if sc.Escalate != "" {
			escalating = append(escalating, filepath.Base(f))
		}
		if strings.HasSuffix(f, "/dbus.postinst") && !contains(sc.Paths, "/usr/lib/dbus-1.0/dbus-daemon-launch-helper") {
			t.Errorf("dbus.postinst: launch helper not found in %q", sc.Paths)
		}
	}
	t.Logf("%d scripts, %d escalate: %v", len(files), len(escalating), escalating)
	if len(escalating)*10 > len(files) {
		t.Errorf("%d of %d scripts escalate: the scanner is too coarse", len(escalating), len(files))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func FuzzScanScript(f *testing.F) {
	f.Add("#!/bin/sh\nX=/a\nfor y in b c; do dpkg-divert --rename --add $X/$y; done\n")
	f.Add("#!/bin/sh\ndpkg-trigger ${T}\n")
	f.Fuzz(func(t *testing.T, s string) {
		sc := ScanScript("fuzz", []byte(s))
		for _, p := range sc.Paths {
			if !strings.HasPrefix(p, "/") || strings.Contains(p, "..") && strings.Contains(p, "/../") {
				t.Fatalf("bad path %q", p)
			}
		}
	})
}
