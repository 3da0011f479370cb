package policy

import (
	"path"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestMatch(t *testing.T) {
	tests := []struct {
		pattern, s string
		want       bool
	}{
		{"/usr/local/*", "/usr/local/bin/x", true},
		{"/usr/local/*", "/usr/localx", false},
		{"*.pyc", "/usr/lib/python3/x.pyc", true},
		{"/usr/share/doc/*/copyright", "/usr/share/doc/a/b/copyright", true},
		{"/usr/bin/?", "/usr/bin/w", true},
		{"/usr/bin/?", "/usr/bin/ww", false},
		{"/usr/lib/[a-c]*", "/usr/lib/bash", true},
		{"/usr/lib/[!a-c]*", "/usr/lib/bash", false},
		{"/usr/lib/[!a-c]*", "/usr/lib/dash", true},
		{"/usr/lib/[^a-c]*", "/usr/lib/dash", true},
		{`/a\*b`, "/a*b", true},
		{`/a\*b`, "/axb", false},
		{"*", "", true},
		{"/x*y*z", "/xaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaay", false},
		// Brackets as glibc's fnmatch reads them.
		{"[]]", "]", true},
		{"[!]]", "]", false},
		{"[!]]", "a", true},
		{"[a-]", "-", true},
		{`[\]]`, "]", true},
		{`[\!]`, "!", true},
		{`[\!]`, "a", false},
		{`[a\-z]`, "b", false},
		{`[a\-z]`, "-", true},
		{"[[:digit:]x]", "7", true},
		{"[[:digit:]x]", "x", true},
		{"[[:digit:]x]", "y", false},
		{"[![:space:]]", " ", false},
		{"[![:space:]]", "/", true},
		{"[[:alpha]", "a", true}, // not a class: '[', ':', 'a', 'l', 'p', 'h'
		{"[[:alpha]", ":", true},
		{"[[:nope:]]", "n", false}, // an unknown class never matches
		{"*[[:nope:]]", "xn", false},
		{"/a[b", "/a[b", true}, // an unterminated '[' is an ordinary byte
		{"/a[b", "/ab", false},
		{"*[", "x[", true},
		{`x\`, `x\`, false}, // a trailing '\' never matches
		{"[z-a]", "m", false},
	}
	for _, tt := range tests {
		if got := match(tt.pattern, tt.s); got != tt.want {
			t.Errorf("match(%q, %q) = %v, want %v", tt.pattern, tt.s, got, tt.want)
		}
		if checkPattern(tt.pattern) == nil {
			if got := refMatch(tt.pattern, tt.s); got != tt.want {
				t.Errorf("refMatch(%q, %q) = %v, want %v (the reference is wrong)", tt.pattern, tt.s, got, tt.want)
			}
		}
	}
}

// refClasses lists the members of the POSIX classes in the C locale.
var refClasses = func() map[string]string {
	span := func(lo, hi byte) string {
		var b []byte
		for c := int(lo); c <= int(hi); c++ {
			b = append(b, byte(c))
		}
		return string(b)
	}
	lower, upper, digit := span('a', 'z'), span('A', 'Z'), span('0', '9')
	return map[string]string{
		"alnum": lower + upper + digit, "alpha": lower + upper, "blank": " \t",
		"cntrl": span(0, 31) + "\x7f", "digit": digit, "graph": span('!', '~'),
		"lower": lower, "print": span(' ', '~'), "punct": "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~",
		"space": " \t\n\v\f\r", "upper": upper, "xdigit": digit + "abcdefABCDEF",
	}
}()

// refMatch is an independent fnmatch(pattern, s, 0), for patterns
// checkPattern accepts: the pattern compiled to a list of stars and byte
// sets, matched by dynamic programming.
func refMatch(pattern, s string) bool {
	type token struct {
		star bool
		in   [256]bool
	}
	var toks []token
	one := func(c byte) token { var t token; t.in[c] = true; return t }
	for p := pattern; p != ""; {
		switch p[0] {
		case '*':
			toks = append(toks, token{star: true})
			p = p[1:]
		case '?':
			var t token
			for c := range t.in {
				t.in[c] = true
			}
			toks = append(toks, t)
			p = p[1:]
		case '\\':
			toks = append(toks, one(p[1]))
			p = p[2:]
		case '[':
			var t token
			q := p[1:]
			neg := q[0] == '!' || q[0] == '^'
			if neg {
				q = q[1:]
			}
			for first := true; first || q[0] != ']'; first = false {
				if name, rest, ok := strings.Cut(strings.TrimPrefix(q, "[:"), ":]"); ok && strings.HasPrefix(q, "[:") && refClasses[name] != "" {
					for _, c := range []byte(refClasses[name]) {
						t.in[c] = true
					}
					q = rest
					continue
				}
				lo := q[0]
				if lo == '\\' {
					q = q[1:]
					lo = q[0]
				}
				q = q[1:]
				hi := lo
				if len(q) > 1 && q[0] == '-' && q[1] != ']' {
					hi = q[1]
					q = q[2:]
					if hi == '\\' {
						hi = q[0]
						q = q[1:]
					}
				}
				for c := int(lo); c <= int(hi); c++ {
					t.in[c] = true
				}
			}
			if neg {
				for c := range t.in {
					t.in[c] = !t.in[c]
				}
			}
			toks = append(toks, t)
			p = q[1:]
		default:
			toks = append(toks, one(p[0]))
			p = p[1:]
		}
	}
	// ok[j]: toks[i:] matches s[j:], for i from the end down.
	ok := make([]bool, len(s)+1)
	ok[len(s)] = true
	for i := len(toks) - 1; i >= 0; i-- {
		next := ok
		ok = make([]bool, len(s)+1)
		for j := len(s); j >= 0; j-- {
			if toks[i].star {
				ok[j] = next[j] || j < len(s) && ok[j+1]
			} else {
				ok[j] = j < len(s) && toks[i].in[s[j]] && next[j+1]
			}
		}
	}
	return ok[0]
}

// FuzzMatch: match agrees with an independent implementation of the same
// rules (refMatch) on every pattern the configuration accepts, and with
// the standard library's path.Match where both define the same thing
// (no '/', where path.Match's '*' stops; ASCII; no "[!", no classes).
func FuzzMatch(f *testing.F) {
	f.Add("/usr/*/[a-c]?", "/usr/lib/bx")
	f.Add("*[[:digit:]]", "/usr/lib/x7")
	f.Add(`[!\]a-]x*`, "bxyz")
	f.Add("a*b*c", "aXbYbZc")
	f.Add(`[]\-]`, "-")
	f.Fuzz(func(t *testing.T, p, s string) {
		got := match(p, s) // never panics, valid or not
		if checkPattern(p) != nil {
			return
		}
		if want := refMatch(p, s); got != want {
			t.Fatalf("match(%q, %q) = %v, reference says %v", p, s, got, want)
		}
		if strings.ContainsAny(p+s, "/!") || strings.Contains(p, "[:") || !ascii(p+s) {
			return
		}
		if want, err := path.Match(p, s); err == nil && got != want {
			t.Fatalf("match(%q, %q) = %v, path.Match says %v", p, s, got, want)
		}
	})
}

func ascii(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			return false
		}
	}
	return true
}
