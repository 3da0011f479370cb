package mscript

import (
	"path"
	"reflect"
	"strings"
	"testing"
)

// FuzzScan: Scan never panics, is deterministic, and every path it
// reports is clean and absolute.
func FuzzScan(f *testing.F) {
	f.Add("#!/bin/sh\nX=/a\nfor y in b c; do dpkg-divert --rename --add $X/$y; done\n")
	f.Add("#!/bin/sh\ndpkg-trigger ${T}\n")
	f.Add("#!/bin/bash\nf() { local d=$1; rm -rf \"${d%/*}\"/x{a,b}; }\nf /usr/lib/q/r\n")
	f.Fuzz(func(t *testing.T, s string) {
		r := Scan("fuzz.postinst", []byte(s))
		checkResult(t, "fuzz", r)
		if again := Scan("fuzz.postinst", []byte(s)); !reflect.DeepEqual(r, again) {
			t.Fatalf("Scan is not deterministic:\n%+v\n%+v", r, again)
		}
		if r.Escalate != "" && !strings.HasPrefix(r.Escalate, "fuzz.postinst: ") {
			t.Fatalf("Escalate = %q, want it to name the script", r.Escalate)
		}
	})
}

// fuzzCommands change (or read) the path given last.
var fuzzCommands = []string{"rm -f", "touch", "chmod 644", "truncate -s 0", "echo x >", "echo x >>", "sed -i s/a/b/", "cat", "grep -q x", "dpkg-statoverride --update --add root root 0755"}

// FuzzScanVariablePath: in "V=/dir; CMD "$V/suffix"" (and the same
// through a function, a for list and DPKG_ROOT) the expanded path is
// always reported, without escalation.
func FuzzScanVariablePath(f *testing.F) {
	f.Add("usr/lib/x", "f", uint8(0), uint8(0))
	f.Add("usr/share/doc", "../x/y", uint8(4), uint8(1))
	f.Add("a b", "c", uint8(2), uint8(2))
	f.Fuzz(func(t *testing.T, dir, suffix string, cmd, form uint8) {
		for _, s := range []string{dir, suffix} {
			for _, c := range s {
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._+-/", c)) {
					return
				}
			}
		}
		want := path.Clean("/" + dir + "/" + suffix)
		if want == "/" {
			return
		}
		c := fuzzCommands[int(cmd)%len(fuzzCommands)]
		var script string
		switch form % 4 {
		case 0:
			script = "V=/" + dir + "\n" + c + " \"$V/" + suffix + "\"\n"
		case 1:
			script = "f() {\n\tlocal v=\"$1\"\n\t" + c + " \"$DPKG_ROOT${v}/" + suffix + "\"\n}\nf /" + dir + "\n"
		case 2:
			script = "for v in /" + dir + " /nonexistent; do\n\t" + c + " \"$v\"/'" + suffix + "'\ndone\n"
		case 3:
			script = "D=/" + dir + "\nF=\"$D/" + suffix + "\"\ncase \"$1\" in configure) " + c + " \"$F\" ;; esac\n"
		}
		r := Scan("gen.postinst", []byte("#!/bin/sh\nset -e\n"+script))
		checkResult(t, "gen", r)
		if r.Escalate != "" {
			t.Fatalf("Scan(%q).Escalate = %q, want none", script, r.Escalate)
		}
		if !containsStr(r.Paths, want) {
			t.Fatalf("Scan(%q).Paths = %q, missing %s", script, r.Paths, want)
		}
	})
}
