package seal

import (
	"bytes"
	"fmt"
	"regexp"
	"sort"
	"strings"
	"sync"

	"github.com/debseal/debseal/pkg/debfmt"
)

// ScriptScan is what a maintainer script reveals about the files it may
// touch beyond its own package's.
type ScriptScan struct {
	// Paths are absolute paths the script names (literally, or through a
	// variable assigned a literal): a locked file among them is unlocked
	// for the run.
	Paths []string
	// Escalate, when set, says why the script's effect cannot be known
	// statically (a dpkg-divert --rename or dpkg-statoverride --update on
	// a computed path): the run must unlock everything sealed.
	Escalate string
	// Triggers are trigger names the script activates with dpkg-trigger.
	Triggers []string
	// UnknownTriggers: a dpkg-trigger call with a computed name.
	UnknownTriggers bool
}

// The regular expressions are compiled on first use: every hook and
// wrapper run starts a process, and most never scan a script.
var (
	assignRe  = lazyRegexp(`^\s*(?:export\s+|local\s+|readonly\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$`)
	forRe     = lazyRegexp(`^\s*for\s+([A-Za-z_][A-Za-z0-9_]*)\s+in\s+([^;]*?)\s*(?:;|$|\bdo\b)`)
	varRe     = lazyRegexp(`\$\{?([A-Za-z_][A-Za-z0-9_]*|[0-9@*#?$!-])\}?`)
	pathTokRe = lazyRegexp(`^/[A-Za-z0-9._+@:,%=~/-]*$`)
)

func lazyRegexp(expr string) func() *regexp.Regexp {
	return sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(expr) })
}

// maxExpansions bounds the values one path expression may take.
const maxExpansions = 64

// ScanScript reads a maintainer script. name is for messages
// ("postgresql-common.preinst").
func ScanScript(name string, body []byte) ScriptScan {
	var sc ScriptScan
	if !bytes.HasPrefix(body, []byte("#!")) || !isShell(body) {
		// Perl or other interpreters: literal paths only; any helper
		// that moves files escalates.
		for _, t := range tokens(string(body)) {
			if p, ok := literalPath(t); ok {
				sc.Paths = append(sc.Paths, p)
			}
		}
		if bytes.Contains(body, []byte("dpkg-divert")) || bytes.Contains(body, []byte("dpkg-statoverride")) {
			sc.Escalate = name + " is not a shell script and calls dpkg-divert or dpkg-statoverride"
		}
		if bytes.Contains(body, []byte("dpkg-trigger")) {
			sc.UnknownTriggers = true
		}
		return sc
	}
	lines := joinContinuations(string(body))
	vars := map[string][]string{"DPKG_ROOT": {""}}
	// First pass: literal assignments and for-lists anywhere in the
	// script (their order does not matter for a superset).
	for _, l := range lines {
		l = stripComment(l)
		if m := assignRe().FindStringSubmatch(l); m != nil {
			if v, ok := literalValue(m[2]); ok {
				vars[m[1]] = appendUnique(vars[m[1]], v)
			}
		}
		if m := forRe().FindStringSubmatch(l); m != nil {
			for _, w := range strings.Fields(m[2]) {
				if v, ok := literalValue(w); ok {
					vars[m[1]] = appendUnique(vars[m[1]], v)
				} else {
					vars[m[1]] = append(vars[m[1]], "\x00") // unknown value
				}
			}
		}
	}
	seen := map[string]bool{}
	addPath := func(p string) {
		if !seen[p] {
			seen[p] = true
			sc.Paths = append(sc.Paths, p)
		}
	}
	for _, l := range lines {
		l = stripComment(l)
		toks := tokens(l)
		for _, t := range toks {
			if p, ok := literalPath(t); ok {
				addPath(p)
			}
		}
		cmd, args := helperCall(toks)
		switch {
		case cmd == "dpkg-divert" && hasWord(args, "--rename"),
			cmd == "dpkg-statoverride" && hasWord(args, "--update"):
			if _, after, _ := strings.Cut(l, cmd); strings.Contains(after, "$(") || strings.Contains(after, "`") {
				sc.Escalate = fmt.Sprintf("%s: %s with a command substitution", name, cmd)
			}
			for _, a := range args {
				if strings.HasPrefix(a, "-") || !strings.ContainsAny(a, "$`/") {
					continue // options and plain words (user, group, mode)
				}
				vals, ok := expand(a, vars)
				if !ok {
					sc.Escalate = fmt.Sprintf("%s: %s with a computed path %q", name, cmd, a)
					continue
				}
				for _, v := range vals {
					if p, ok := literalPath(v); ok {
						addPath(p)
					}
				}
			}
		case cmd == "dpkg-trigger":
			for _, a := range args {
				if strings.HasPrefix(a, "-") {
					continue
				}
				vals, ok := expand(a, vars)
				if !ok {
					sc.UnknownTriggers = true
					continue
				}
				sc.Triggers = append(sc.Triggers, vals...)
			}
		}
	}
	sort.Strings(sc.Paths)
	return sc
}

func isShell(body []byte) bool {
	first, _, _ := bytes.Cut(body, []byte("\n"))
	for _, sh := range []string{"/sh", "/bash", "/dash", "/ash"} {
		if bytes.Contains(first, []byte(sh)) {
			return true
		}
	}
	return false
}

// joinContinuations joins lines ending in a backslash.
func joinContinuations(s string) []string {
	raw := strings.Split(s, "\n")
	var out []string
	cur := ""
	for _, l := range raw {
		if strings.HasSuffix(l, "\\") {
			cur += strings.TrimSuffix(l, "\\") + " "
			continue
		}
		out = append(out, cur+l)
		cur = ""
	}
	if cur != "" {
		out = append(out, cur)
	}
	return out
}

func stripComment(l string) string {
	t := strings.TrimSpace(l)
	if strings.HasPrefix(t, "#") {
		return ""
	}
	if i := strings.Index(l, " #"); i >= 0 {
		return l[:i]
	}
	return l
}

// tokens splits a shell line on blanks and operators, removing quotes
// (a rough lexer: good enough to find words and paths).
func tokens(l string) []string {
	f := strings.FieldsFunc(l, func(r rune) bool {
		return r == ' ' || r == '\t' || r == ';' || r == '|' || r == '&' || r == '(' || r == ')' || r == '<' || r == '>' || r == '\n'
	})
	out := f[:0]
	for _, t := range f {
		t = strings.Trim(t, `"'`)
		if t != "" {
			out = append(out, t)
		}
	}
	return out
}

// helperCall finds a dpkg helper command in a line's tokens and returns it
// with the words after it.
func helperCall(toks []string) (string, []string) {
	for i, t := range toks {
		base := t[strings.LastIndexByte(t, '/')+1:]
		switch base {
		case "dpkg-divert", "dpkg-statoverride", "dpkg-trigger":
			return base, toks[i+1:]
		}
	}
	return "", nil
}

func hasWord(ws []string, w string) bool {
	for _, x := range ws {
		if x == w {
			return true
		}
	}
	return false
}

// literalValue returns the value of an assignment's right-hand side if it
// is a literal (quoted or not), without expansions.
func literalValue(v string) (string, bool) {
	v = strings.TrimSpace(v)
	if i := strings.IndexAny(v, ";&|"); i >= 0 {
		v = strings.TrimSpace(v[:i])
	}
	v = strings.Trim(v, `"'`)
	if strings.ContainsAny(v, "$`*?[ \t") {
		return "", false
	}
	return v, true
}

func literalPath(t string) (string, bool) {
	t = strings.TrimRight(t, ",.:")
	if len(t) < 2 || !pathTokRe().MatchString(t) {
		return "", false
	}
	p, err := debfmt.CleanPath(t)
	if err != nil || p == "/" {
		return "", false
	}
	return p, true
}

// expand substitutes variables in a word with every value they were
// assigned. It fails on positional or special parameters, command
// substitution, variables never assigned a literal, or too many
// combinations.
func expand(word string, vars map[string][]string) ([]string, bool) {
	if strings.ContainsAny(word, "`") || strings.Contains(word, "$(") {
		return nil, false
	}
	results := []string{word}
	for {
		loc := varRe().FindStringSubmatchIndex(results[0])
		if loc == nil {
			return results, true
		}
		name := results[0][loc[2]:loc[3]]
		vals, ok := vars[name]
		if !ok || len(vals) == 0 {
			return nil, false
		}
		var next []string
		for _, r := range results {
			l := varRe().FindStringSubmatchIndex(r)
			for _, v := range vals {
				if v == "\x00" {
					return nil, false
				}
				next = append(next, r[:l[0]]+v+r[l[1]:])
			}
		}
		if len(next) > maxExpansions {
			return nil, false
		}
		results = next
	}
}

func appendUnique(list []string, v string) []string {
	for _, x := range list {
		if x == v {
			return list
		}
	}
	return append(list, v)
}
