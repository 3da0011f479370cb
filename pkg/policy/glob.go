package policy

import (
	"errors"
	"fmt"
	"strings"
)

// Glob is fnmatch(pattern, s, 0) in the C locale, the matching dpkg's
// path-exclude and path-include use ('*' also matches '/'); the audit
// applies dpkg's own filters with it.
func Glob(pattern, s string) bool { return match(pattern, s) }

// match is fnmatch(3) without flags, on bytes: '*' matches any run of
// bytes, '/' included; '?' one byte; "[...]" one byte of a bracket
// expression ("[!...]" or "[^...]" negated; ranges "a-z"; POSIX classes
// "[:digit:]"; a ']' first is a member; '\' quotes the next byte); '\'
// outside brackets quotes the next byte. As glibc does, an unterminated
// '[' is an ordinary byte, a trailing '\' and a bracket with an unknown
// class never match. The configuration accepts only patterns checkPattern
// passes; Glob also gets dpkg's filters as they are.
func match(pattern, s string) bool {
	// Iterative with one backtrack point for the last '*': linear in
	// practice, never exponential.
	px, sx := 0, 0
	starPx, starSx := -1, -1
	for {
		if px < len(pattern) {
			switch c := pattern[px]; c {
			case '*':
				starPx, starSx = px, sx
				px++
				continue
			case '?':
				if sx < len(s) {
					px++
					sx++
					continue
				}
			case '[':
				n, set, err := parseBracket(pattern[px:])
				switch {
				case errors.Is(err, errUnterminated):
					// An ordinary '['.
					if sx < len(s) && s[sx] == '[' {
						px++
						sx++
						continue
					}
				case err != nil:
					return false // never matches, wherever it is tried
				case sx < len(s) && set.has(s[sx]):
					px += n
					sx++
					continue
				}
			case '\\':
				if px+1 < len(pattern) && sx < len(s) && pattern[px+1] == s[sx] {
					px += 2
					sx++
					continue
				}
			default:
				if sx < len(s) && s[sx] == c {
					px++
					sx++
					continue
				}
			}
		} else if sx == len(s) {
			return true
		}
		if starPx >= 0 && starSx < len(s) {
			starSx++
			px, sx = starPx+1, starSx
			continue
		}
		return false
	}
}

// byteSet is the set of bytes a bracket expression matches.
type byteSet [4]uint64

func (b *byteSet) add(lo, hi byte) {
	for c := int(lo); c <= int(hi); c++ {
		b[c>>6] |= 1 << (c & 63)
	}
}

func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

var (
	errUnterminated = errors.New("unterminated [")
	errTrailingEsc  = errors.New(`trailing \ quotes nothing`)
)

// classes are the POSIX character classes in the C locale.
var classes = map[string]func(c byte) bool{
	"alnum":  func(c byte) bool { return isAlpha(c) || isDigit(c) },
	"alpha":  isAlpha,
	"blank":  func(c byte) bool { return c == ' ' || c == '\t' },
	"cntrl":  func(c byte) bool { return c < 0x20 || c == 0x7f },
	"digit":  isDigit,
	"graph":  func(c byte) bool { return c > 0x20 && c < 0x7f },
	"lower":  func(c byte) bool { return c >= 'a' && c <= 'z' },
	"print":  func(c byte) bool { return c >= 0x20 && c < 0x7f },
	"punct":  func(c byte) bool { return c > 0x20 && c < 0x7f && !isAlpha(c) && !isDigit(c) },
	"space":  func(c byte) bool { return c == ' ' || c >= '\t' && c <= '\r' },
	"upper":  func(c byte) bool { return c >= 'A' && c <= 'Z' },
	"xdigit": func(c byte) bool { return isDigit(c) || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' },
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseBracket reads the bracket expression at the start of pattern (which
// starts with '['): its length and the bytes it matches. errUnterminated:
// no closing ']' (the '[' is then an ordinary byte); any other error: a
// bracket that can never match (an unknown class, or a class as the end
// of a range), found as glibc finds it, reading from the left.
func parseBracket(pattern string) (int, *byteSet, error) {
	var set byteSet
	i := 1
	negate := i < len(pattern) && (pattern[i] == '!' || pattern[i] == '^')
	if negate {
		i++
	}
	first := true
	// element reads one byte member at i (quoted or not).
	element := func() (byte, bool) {
		if i >= len(pattern) {
			return 0, false
		}
		c := pattern[i]
		i++
		if c == '\\' {
			if i >= len(pattern) {
				return 0, false
			}
			c = pattern[i]
			i++
		}
		return c, true
	}
	for {
		if i >= len(pattern) {
			return 0, nil, errUnterminated
		}
		if pattern[i] == ']' && !first {
			i++
			break
		}
		first = false
		if isClass(pattern[i:]) {
			name, _, _ := strings.Cut(pattern[i+2:], ":]")
			i += len("[:") + len(name) + len(":]")
			in, ok := classes[name]
			if !ok {
				return 0, nil, fmt.Errorf("unknown character class [:%s:]", name)
			}
			for c := 0; c < 256; c++ {
				if in(byte(c)) {
					set.add(byte(c), byte(c))
				}
			}
			if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
				return 0, nil, fmt.Errorf("a range cannot start at the class [:%s:]", name)
			}
			continue
		}
		lo, ok := element()
		if !ok {
			return 0, nil, errUnterminated
		}
		hi := lo
		if i+1 < len(pattern) && pattern[i] == '-' && pattern[i+1] != ']' {
			i++
			if isClass(pattern[i:]) {
				return 0, nil, errors.New("a range cannot end at a character class")
			}
			if hi, ok = element(); !ok {
				return 0, nil, errUnterminated
			}
		}
		if lo <= hi {
			set.add(lo, hi)
		}
	}
	if negate {
		for k := range set {
			set[k] = ^set[k]
		}
	}
	return i, &set, nil
}

// isClass reports whether p starts with what glibc reads as a character
// class, "[:name:]" with a name of lowercase letters (known or not);
// anything else after "[:" is an ordinary member.
func isClass(p string) bool {
	rest, ok := strings.CutPrefix(p, "[:")
	if !ok {
		return false
	}
	name, _, ok := strings.Cut(rest, ":]")
	if !ok || name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		if name[i] < 'a' || name[i] > 'z' {
			return false
		}
	}
	return true
}

// checkPattern rejects what a configuration's glob must not contain: what
// would never match, or not what its writer meant. Unterminated brackets,
// unknown classes, a trailing '\', collating symbols and equivalence
// classes ("[.a.]", "[=a=]", which debseal does not implement).
func checkPattern(p string) error {
	if p == "" {
		return errors.New("empty pattern")
	}
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			if i+1 == len(p) {
				return errTrailingEsc
			}
			i++
		case '[':
			n, _, err := parseBracket(p[i:])
			if errors.Is(err, errUnterminated) {
				return fmt.Errorf("unterminated [ (write \\[ for a literal [)")
			}
			if err != nil {
				return err
			}
			body := p[i : i+n]
			if strings.Contains(body, "[.") || strings.Contains(body, "[=") {
				return fmt.Errorf("%s: collating symbols [.x.] and equivalence classes [=x=] are not supported", body)
			}
			i += n - 1
		}
	}
	return nil
}
