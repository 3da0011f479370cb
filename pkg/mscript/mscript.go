// Package mscript tells what a Debian maintainer script may touch: the
// paths it reads or changes, the directories and patterns under which it
// changes computed names, the diversions, stat overrides and triggers it
// asks dpkg for, and, when that cannot be told, why.
//
// Shell scripts are parsed (mvdan.cc/sh/v3/syntax) and every command,
// assignment, redirection, here-document, function, case arm, loop and
// command substitution is walked. Words are expanded to the set of
// values they may take: a variable assigned anywhere in the script
// (local, export, readonly, read from a here-document or a find), a for
// list, a function's parameters at its call sites, ${V:-x}, ${V%pat},
// $(dirname …), $(mktemp) and the like. The analysis is
// flow-insensitive: a superset, computed to a bounded fixpoint.
//
// What cannot be resolved escalates only where it matters, in a word a
// command changes (rm, mv, cp, ln, install, chmod, chown, sed -i, tee,
// truncate, touch, dd of=, a > or >> target, find -delete, xargs rm,
// dpkg-divert --rename, dpkg-statoverride --update …):
//   - bounded by a literal absolute directory, it is reported there
//     instead: Globs when only names without '/' are computed
//     (/usr/bin/*-pkg-config), Prefixes otherwise (/usr/lib/x/$v);
//   - under /etc, /var, /tmp, /run, /proc, /sys, /dev, /home, /root or
//     /srv it never matters: package files do not live there;
//   - otherwise Escalate says why.
//
// Decisions a reader should know:
//   - At the top level, $1, $2 … are dpkg's arguments (an action, a
//     version, a package name): never a '/' in them. "rm -f $1" names a
//     file in "/", where no package file such a name could reach lives,
//     and does not escalate; "/usr/share/doc/$1" is a pattern.
//   - A function's parameters take the values of its call sites; a
//     function nothing calls never runs (unless a command name is
//     computed, when its parameters are unknown).
//   - Variables the script does not assign come from the environment:
//     unknown, except dpkg's (DPKG_ROOT is "": dpkg runs scripts chrooted;
//     DPKG_MAINTSCRIPT_* hold no '/'), TMPDIR (/tmp) and HOME (/root).
//   - Files a script sources (. /usr/share/debconf/confmodule) are
//     reported in Sources, not scanned: Scan reads no file.
//   - dpkg-maintscript-helper rm_conffile and mv_conffile only move
//     files the package owns, which the run unlocks anyway; their
//     computed arguments do not escalate. symlink_to_dir and
//     dir_to_symlink change a package directory: Prefixes.
//   - Commands not known to change files (update-alternatives, ucfr,
//     systemctl, hooks in a package's directory …) read their arguments;
//     directories are not sealed by default, so mkdir changes nothing
//     sealed.
//   - Computed text is trusted not to hold "..": the scripts are the
//     packages' own code, run as root; the concern is breaking them,
//     not containing them.
//   - Other interpreters (perl, python, binaries) get a literal scan:
//     their absolute path tokens, an escalation when they call
//     dpkg-divert or dpkg-statoverride, UnknownTriggers for dpkg-trigger.
//
// The work is bounded (values per word and variable, fixpoint rounds,
// nesting, bytes built), so a hostile script escalates instead of
// costing time or memory. The package only reads the bytes it is given;
// it does not know which paths are sealed and does not decide what to
// unlock. Its callers resolve what it reports against the sealed set and
// ignore what is not a package file.
package mscript

import (
	"bytes"
	"fmt"
	"path"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"mvdan.cc/sh/v3/syntax"
)

// Divert is a dpkg-divert call that adds or removes a diversion.
type Divert struct {
	Remove bool // --remove (else --add)
	Rename bool // --rename: the file is moved on disk
	// From is the diverted path; To the divert-to path, "" when the call
	// does not give one (dpkg then uses From+".distrib" on --add, what
	// its database records on --remove).
	From, To string
	Package  string // --package, "" for --local or none
}

// Result is what one maintainer script may touch.
type Result struct {
	// Paths are clean absolute paths the script may read or change:
	// literal, or expanded from variables with literal values
	// (DPKG_ROOT expands to ""). Most are not package files at all
	// (/proc/1/environ, /etc/default/x): callers ignore those.
	Paths []string
	// Prefixes are clean absolute directories under which the script
	// changes a computed name (rm -rf /usr/lib/x/$v gives /usr/lib/x).
	Prefixes []string
	// Globs are path.Match patterns of paths the script changes where
	// only names without '/' are computed (rm -f /usr/bin/*-pkg-config):
	// '*' stands for any part of one name.
	Globs []string
	// Escalate, when not empty, says why what the script changes cannot
	// be told (the first reason found): callers unlock everything.
	Escalate string
	// Triggers are the trigger names the script activates with
	// dpkg-trigger; UnknownTriggers is set when a name is computed.
	Triggers        []string
	UnknownTriggers bool
	// Diverts are the dpkg-divert --add/--remove calls whose paths
	// resolve.
	Diverts []Divert
	// Statoverrides are paths given to dpkg-statoverride --update --add.
	Statoverrides []string
	// Packages are packages from whose file list (dpkg -L) the script
	// computes names it changes: the names are the package's files or
	// derived from them (a .pyc beside a .py, a __pycache__ under its
	// directory). A caller treats the directories holding the package's
	// files as Prefixes.
	Packages []string
	// Truenames are paths whose dpkg-divert --truename the script
	// changes: the path itself, or where the diversions database diverts
	// it to.
	Truenames []string
	// Sources are the files the script sources with "." or "source"
	// (/usr/share/debconf/confmodule): their code runs in the script
	// and is not part of this scan.
	Sources []string
}

// Limits: a hostile script must not cost more than a normal one by
// orders of magnitude.
const (
	maxBody     = 4 << 20 // bytes of script parsed; more escalates
	maxAlts     = 64      // values one word or variable may take
	maxDepth    = 100     // nesting of commands, functions, eval strings
	maxNesting  = 1000    // brackets nested in the text
	maxRounds   = 8       // fixpoint rounds over assignments
	maxWork     = 8 << 20 // bytes of expanded words built in one scan (real scripts: < 200 KB)
	maxSubst    = 8       // $(…) whose output is modelled, inside each other
	maxEvalNest = 4       // sh -c / eval strings inside each other
)

// Scan reads one maintainer script. name is used in Escalate reasons
// ("procps.postinst").
func Scan(name string, body []byte) Result {
	s := newScanner(name)
	switch kind := interpreter(body); kind {
	case "sh", "bash":
		if len(body) > maxBody {
			s.escalate(fmt.Sprintf("%s: %d bytes is too large to parse", name, len(body)))
			break
		}
		if d := nesting(body); d > maxNesting {
			// the parser recurses per level: refuse before it does
			s.escalate(fmt.Sprintf("%s: brackets nested %d deep: too deep to parse", name, d))
			s.scanLiteral(body)
			break
		}
		s.bash = kind == "bash"
		// The shell reads bytes; the parser wants UTF-8. A Latin-1 byte
		// in a comment or a message (exim4-config's config script) must
		// not stop the analysis: such bytes become U+FFFD, and a path
		// that holds one cannot be named exactly, which escalates below.
		body := body
		if !utf8.Valid(body) {
			body = bytes.ToValidUTF8(body, []byte(badByte))
		}
		f, err := parse(body, s.bash)
		if err != nil {
			s.escalate(fmt.Sprintf("%s: does not parse: %v", name, err))
			// The literal scan still finds the paths it names.
			s.scanLiteral(body)
			break
		}
		s.walkStmts(f.Stmts, &ctx{src: body})
		s.solve()
		s.analyse()
	default:
		s.scanLiteral(body)
		if bytes.Contains(body, []byte("dpkg-divert")) || bytes.Contains(body, []byte("dpkg-statoverride")) {
			s.escalate(name + ": a " + kind + " script that calls dpkg-divert or dpkg-statoverride")
		}
		if bytes.Contains(body, []byte("dpkg-trigger")) {
			s.res.UnknownTriggers = true
		}
	}
	return checkBadBytes(name, s.result())
}

// badByte stands for bytes that are not UTF-8 in a shell script.
const badByte = "\uFFFD"

// checkBadBytes escalates when a path, directory or pattern the script
// changes holds a byte that was not UTF-8: it cannot be named exactly.
func checkBadBytes(name string, r Result) Result {
	if r.Escalate != "" {
		return r
	}
	for _, set := range [][]string{r.Paths, r.Prefixes, r.Globs, r.Statoverrides, r.Truenames} {
		for _, p := range set {
			if strings.Contains(p, badByte) {
				r.Escalate = fmt.Sprintf("%s: a path with bytes that are not UTF-8: %q", name, p)
				return r
			}
		}
	}
	return r
}

// interpreter names the language of a script: "sh", "bash", or the
// shebang's program for anything else ("binary" without one). dpkg
// execs scripts; a text file without "#!" runs under /bin/sh.
func interpreter(body []byte) string {
	if !bytes.HasPrefix(body, []byte("#!")) {
		if bytes.IndexByte(body, 0) >= 0 {
			return "binary"
		}
		return "sh"
	}
	line, _, _ := bytes.Cut(body[2:], []byte("\n"))
	f := strings.Fields(string(line))
	if len(f) == 0 {
		return "sh"
	}
	prog := path.Base(f[0])
	if prog == "env" {
		for _, a := range f[1:] {
			if !strings.HasPrefix(a, "-") && !strings.Contains(a, "=") {
				prog = path.Base(a)
				break
			}
		}
	}
	switch prog {
	case "sh", "dash", "ash", "posh", "ksh", "mksh", "busybox":
		return "sh"
	case "bash":
		return "bash"
	}
	return prog
}

// nesting is how deep ( and { nest in a text, quotes not considered: an
// upper bound on what the parser will recurse through.
func nesting(body []byte) int {
	d, max := 0, 0
	for _, c := range body {
		switch c {
		case '(', '{':
			d++
			if d > max {
				max = d
			}
		case ')', '}':
			if d > 0 {
				d--
			}
		}
	}
	return max
}

// Parsers are reused: each holds buffers worth keeping across scans.
var (
	bashParsers  = sync.Pool{New: func() any { return syntax.NewParser(syntax.Variant(syntax.LangBash)) }}
	posixParsers = sync.Pool{New: func() any { return syntax.NewParser(syntax.Variant(syntax.LangPOSIX)) }}
)

// parse parses a shell script. Bash's grammar is tried first even for
// /bin/sh scripts: it is a superset for what maintainer scripts use and
// gives local/export/readonly as declarations; POSIX is the fallback.
func parse(body []byte, bash bool) (*syntax.File, error) {
	bp := bashParsers.Get().(*syntax.Parser)
	f, err := bp.Parse(bytes.NewReader(body), "")
	bashParsers.Put(bp)
	if err == nil {
		return f, nil
	}
	if bash {
		return nil, err
	}
	pp := posixParsers.Get().(*syntax.Parser)
	f, err2 := pp.Parse(bytes.NewReader(body), "")
	posixParsers.Put(pp)
	if err2 != nil {
		return nil, err2
	}
	return f, nil
}

// scanLiteral adds the literal absolute paths in a text: what a perl or
// python script names.
func (s *scanner) scanLiteral(body []byte) {
	isSep := func(r rune) bool {
		switch r {
		case ' ', '\t', '\n', '\r', ';', '|', '&', '(', ')', '<', '>', '"', '\'', '`', ',', '[', ']', '{', '}', '=', 0:
			return true
		}
		return false
	}
	for _, t := range bytes.FieldsFunc(body, isSep) {
		if len(t) < 2 || t[0] != '/' {
			continue
		}
		t = bytes.TrimRight(t, ".:")
		ok := true
		for _, c := range t {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("/._+-@:%~", c) >= 0) {
				ok = false
				break
			}
		}
		if ok {
			s.addPath(string(t))
		}
	}
}

func (s *scanner) escalate(why string) {
	if s.res.Escalate == "" {
		s.res.Escalate = why
	}
}

func (s *scanner) result() Result {
	r := s.res
	r.Paths = sortedKeys(s.paths)
	r.Prefixes = sortedKeys(s.prefixes)
	r.Globs = sortedKeys(s.globs)
	r.Triggers = sortedKeys(s.triggers)
	r.Statoverrides = sortedKeys(s.statoverrides)
	r.Sources = sortedKeys(s.sources)
	r.Packages = sortedKeys(s.packages)
	r.Truenames = sortedKeys(s.truenames)
	sort.Slice(r.Diverts, func(i, j int) bool {
		a, b := r.Diverts[i], r.Diverts[j]
		if a.From != b.From {
			return a.From < b.From
		}
		return fmt.Sprint(a) < fmt.Sprint(b)
	})
	return r
}

func sortedKeys(m map[string]bool) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// cleanAbs returns p cleaned if it is a usable absolute path: no NUL or
// newline (dpkg's lists cannot hold them), not "/" itself.
func cleanAbs(p string) (string, bool) {
	if len(p) < 2 || p[0] != '/' || strings.ContainsAny(p, "\x00\x01\x02\x03\n") {
		return "", false
	}
	c := path.Clean(p)
	return c, c != "/"
}
