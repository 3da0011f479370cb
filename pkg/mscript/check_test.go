package mscript

import (
	"path"
	"strings"
	"testing"
)

// checkResult: every path, prefix and pattern in r is clean and
// absolute, and not "/" itself.
func checkResult(t testing.TB, name string, r Result) {
	t.Helper()
	for _, l := range [][]string{r.Paths, r.Prefixes, r.Globs, r.Statoverrides, r.Sources, r.Truenames} {
		for _, p := range l {
			if !strings.HasPrefix(p, "/") || path.Clean(p) != p || p == "/" || strings.ContainsAny(p, "\x00\x01\x02\n") {
				t.Errorf("%s: path %q is not clean and absolute", name, p)
			}
		}
	}
	for _, d := range r.Diverts {
		if d.From == "" || path.Clean(d.From) != d.From || d.To != "" && path.Clean(d.To) != d.To {
			t.Errorf("%s: divert %+v has a path that is not clean and absolute", name, d)
		}
	}
}
