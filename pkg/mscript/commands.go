package mscript

import (
	"path"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// outside are the directories package files do not live in (conffiles
// and state, kernel and runtime file systems, users' files): a computed
// name a script changes under them never matters.
var outside = []string{"/etc", "/var", "/tmp", "/run", "/proc", "/sys", "/dev", "/home", "/root", "/srv"}

func isOutside(dir string) bool {
	for _, o := range outside {
		if dir == o || strings.HasPrefix(dir, o+"/") {
			return true
		}
	}
	return false
}

// analyse goes through the collected commands and redirections now that
// the values of variables are known.
func (s *scanner) analyse() {
	s.computeCwds()
	// What variables hold may be paths the script passes on.
	for _, set := range s.vars {
		for _, v := range set.vals {
			for _, f := range strings.FieldsFunc(v, func(r rune) bool { return r == ' ' || r == '\t' || r == '\n' || r == 2 }) {
				s.read(f)
			}
		}
	}
	for _, cm := range s.cmds {
		s.command(cm)
	}
	for _, r := range s.redirs {
		s.redirect(r)
	}
}

// computeCwds: dpkg runs scripts in "/"; a cd anywhere adds its target
// (relative paths then resolve against every directory the script may
// be in).
func (s *scanner) computeCwds() {
	s.cwds = []string{"/"}
	seen := map[string]bool{"/": true}
	for _, cm := range s.cds {
		args := stripWrappers(cm.call.Args)[1:]
		for len(args) > 0 && strings.HasPrefix(args[0].Lit(), "-") && args[0].Lit() != "-" {
			args = args[1:]
		}
		if len(args) > 0 && args[0].Lit() == "-" {
			continue // back to a directory already counted
		}
		var dirs []string
		if len(args) == 0 {
			dirs = []string{"/root"}
		} else {
			for _, f := range s.fields(args[0], cm.ctx) {
				if !strings.HasPrefix(f, "/") {
					f = unknown // cd - or a relative directory
				}
				dirs = append(dirs, f)
			}
		}
		for _, d := range dirs {
			if !seen[d] {
				seen[d] = true
				s.cwds = append(s.cwds, d)
			}
		}
	}
}

func (s *scanner) addPath(p string) {
	if c, ok := cleanAbs(p); ok {
		s.paths[c] = true
	}
}

// read records a path the script reads (or passes on): only what
// resolves completely is reported.
func (s *scanner) read(f string) {
	if hasMark(f) {
		return
	}
	if strings.ContainsAny(f, " \t") {
		return // a program or a message, not a path read (changes are all kept)
	}
	if strings.HasPrefix(f, "/") {
		s.addPath(f)
	} else if i := strings.Index(f, "=/"); i > 0 && strings.HasPrefix(f, "-") {
		s.addPath(f[i+1:]) // --option=/path
	}
}

// change records a path the script changes: a resolved path, the
// directory that bounds a computed one, or an escalation.
func (s *scanner) change(f string, c *ctx, n syntax.Node, what string) {
	if f == "" {
		return
	}
	if j := strings.Index(f, pkgOpen); j >= 0 {
		if k := strings.Index(f[j:], pkgClose); k > 2 {
			if f[j+1] == 'P' {
				s.packages[f[j+2:j+k]] = true
			} else {
				s.truenames[f[j+2:j+k]] = true
			}
			return
		}
	}
	i := strings.IndexAny(f, marks)
	if i < 0 {
		if f[0] == '/' {
			s.addPath(f)
			return
		}
		for _, cwd := range s.cwds {
			if cwd == unknown {
				s.escalate(s.where(c, n) + ": " + what + " a relative path after cd to a computed directory")
				continue
			}
			s.change(strings.TrimSuffix(cwd, "/")+"/"+f, c, n, what)
		}
		return
	}
	lit, rest := f[:i], f[i:]
	if !strings.HasPrefix(lit, "/") {
		if lit == "" && rest[0] == 0 {
			s.escalate(s.where(c, n) + ": " + what + " a path that cannot be resolved")
			return
		}
		for _, cwd := range s.cwds {
			if cwd == "/" && !strings.ContainsAny(f, "/\x00") {
				// One computed name in "/": what dpkg passes a script
				// ($1, $2) or a glob there; "/" holds no package file
				// such a name could reach.
				continue
			}
			if cwd == unknown {
				s.escalate(s.where(c, n) + ": " + what + " a relative path after cd to a computed directory")
				continue
			}
			s.change(strings.TrimSuffix(cwd, "/")+"/"+f, c, n, what)
		}
		return
	}
	dir := path.Clean(lit[:strings.LastIndexByte(lit, '/')+1])
	climbs := false
	for _, comp := range strings.Split(rest, "/") {
		if comp == ".." {
			// "/usr/lib/$v/../.." climbs out of the literal directory
			dir, climbs = path.Dir(dir), true
		}
	}
	switch {
	case isOutside(dir) || strings.Contains(dir, "\n"):
		// dpkg's database holds no path with a newline
	case !climbs && !strings.ContainsAny(rest, unknown+pkgOpen) && globOf(f) != "":
		// Only names without '/' are computed: a pattern.
		s.globs[globOf(f)] = true
	case dir == "/":
		s.escalate(s.where(c, n) + ": " + what + " a computed path in /")
	default:
		s.prefixes[dir] = true
	}
}

// changeTree records a path a command changes with everything under it
// (rm -r, chmod -R).
func (s *scanner) changeTree(f string, c *ctx, n syntax.Node, what string) {
	s.change(f, c, n, what)
	if !strings.HasPrefix(f, "/") && !strings.Contains(f, "/") && hasMark(f) {
		return // a computed name in the working directory (see change)
	}
	s.change(strings.TrimSuffix(f, "/")+"/"+unknown, c, n, what)
}

// globOf turns an expanded path whose computed parts hold no '/' into
// a path.Match pattern: nameMark becomes '*', literal metacharacters are
// escaped; "" when it cannot.
func globOf(f string) string {
	var b strings.Builder
	for i := 0; i < len(f); i++ {
		switch c := f[i]; c {
		case 1:
			b.WriteByte('*')
		case '*', '?', '[', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case 0, 2, 3, 4, '\n':
			return ""
		default:
			b.WriteByte(c)
		}
	}
	g := path.Clean(b.String())
	if _, err := path.Match(g, ""); err != nil {
		return ""
	}
	return g
}

// word is one argument: the fields it may give.
type word []string

func (w word) lit() string {
	if len(w) == 1 && !hasMark(w[0]) {
		return w[0]
	}
	return ""
}

// args is a command line split into options and operands.
type args struct {
	opts map[string][]string
	ops  []word
}

func (a args) has(names ...string) bool {
	for _, n := range names {
		if _, ok := a.opts[n]; ok {
			return true
		}
	}
	return false
}

func (a args) value(names ...string) []string {
	var out []string
	for _, n := range names {
		out = append(out, a.opts[n]...)
	}
	return out
}

// parseArgs splits words getopt-style: short options with a value are
// the letters in withValue, long ones those in longValue ("--divert").
func parseArgs(ws []word, withValue string, longValue ...string) args {
	a := args{opts: map[string][]string{}}
	for i := 0; i < len(ws); i++ {
		f := ws[i].lit()
		if len(ws[i]) == 1 && strings.HasPrefix(ws[i][0], "-") {
			f = ws[i][0] // an option with a computed value (--max-chars="$n")
		}
		switch {
		case f == "--":
			a.ops = append(a.ops, ws[i+1:]...)
			return a
		case strings.HasPrefix(f, "--"):
			name, val, ok := strings.Cut(f, "=")
			if !ok && contains(longValue, name) && i+1 < len(ws) {
				i++
				val = ws[i].lit()
				if val == "" && len(ws[i]) > 0 {
					val = ws[i][0]
				}
			}
			a.opts[name] = append(a.opts[name], val)
		case len(f) > 1 && f[0] == '-':
			for j := 1; j < len(f); j++ {
				o := "-" + f[j:j+1]
				if strings.IndexByte(withValue, f[j]) >= 0 {
					val := f[j+1:]
					if val == "" && i+1 < len(ws) {
						i++
						val = ws[i].lit()
						if val == "" && len(ws[i]) > 0 {
							val = ws[i][0]
						}
					}
					a.opts[o] = append(a.opts[o], val)
					break
				}
				a.opts[o] = append(a.opts[o], "")
			}
		default:
			a.ops = append(a.ops, ws[i])
		}
	}
	return a
}

func contains(l []string, s string) bool {
	for _, x := range l {
		if x == s {
			return true
		}
	}
	return false
}

// changers are the commands that change files their operands name
// (used for find -exec and xargs).
var changers = map[string]bool{
	"rm": true, "unlink": true, "shred": true, "mv": true, "cp": true, "ln": true,
	"install": true, "chmod": true, "chown": true, "chgrp": true, "chattr": true, "setfacl": true,
	"setcap": true, "touch": true, "truncate": true, "tee": true, "sed": true, "perl": true, "dd": true,
}

// command analyses one simple command.
func (s *scanner) command(cm cmdEv) {
	argWords := stripWrappers(cm.call.Args)
	if len(argWords) == 0 {
		return
	}
	c := cm.ctx
	ws := make([]word, 0, len(argWords)-1)
	for _, w := range argWords[1:] {
		fs := s.fields(w, c)
		for _, f := range fs {
			s.read(f)
		}
		if len(fs) > 0 {
			ws = append(ws, fs)
		}
	}
	names := s.fields(argWords[0], c)
	if len(argWords) > 1 && (len(names) < len(s.expand(argWords[0], c, true)) || len(names) == 0 || isWrapper(names)) {
		// "$SUDO rm -f x" with SUDO empty, or a wrapper in a variable:
		// the next word may be the command.
		s.command(cmdEv{call: &syntax.CallExpr{Args: argWords[1:]}, ctx: c, stdin: cm.stdin})
	}
	if len(names) == 0 {
		return
	}
	if len(names) != 1 || hasMark(names[0]) {
		if !mayBeChanger(names) {
			return // a hook from a package's directory (for h in /usr/share/x/*.rtupdate; do $h)
		}
		// A computed command: it may be any of the changers.
		for _, w := range ws {
			for _, f := range w {
				if !strings.HasPrefix(f, "-") {
					s.change(f, c, cm.call, "a computed command changes")
				}
			}
		}
		return
	}
	cmd := baseName(names[0])
	if _, ok := s.funcs[cmd]; ok {
		return // the function's body is analysed with its parameters' values
	}
	what := cmd + " changes"
	chg := func(w word) {
		for _, f := range w {
			s.change(f, c, cm.call, what)
		}
	}
	all := func(ops []word) {
		for _, w := range ops {
			chg(w)
		}
	}
	switch cmd {
	case "rmdir":
		// rmdir removes empty directories: no sealed file is in one, so
		// a computed name does not escalate.
		for _, w := range parseArgs(ws, "").ops {
			for _, f := range w {
				s.read(f)
			}
		}
	case "rm", "unlink", "shred", "tee":
		a := parseArgs(ws, "nsu")
		if cmd == "rm" && a.has("-r", "-R", "--recursive") {
			for _, w := range a.ops {
				for _, f := range w {
					s.changeTree(f, c, cm.call, what)
				}
			}
			return
		}
		all(a.ops)
	case "mv":
		// moving a directory moves what is under it
		a := parseArgs(ws, "tS", "--target-directory", "--suffix")
		targets, srcs := a.value("-t", "--target-directory"), a.ops
		if len(targets) == 0 && len(a.ops) > 1 {
			targets, srcs = a.ops[len(a.ops)-1], a.ops[:len(a.ops)-1]
		}
		for _, w := range srcs {
			for _, f := range w {
				s.changeTree(f, c, cm.call, what)
			}
		}
		s.intoTargets(targets, srcs, true, c, cm.call, what)
	case "cp", "ln", "install":
		a := parseArgs(ws, "tSmogb", "--target-directory", "--suffix", "--mode", "--owner", "--group")
		if cmd == "install" && a.has("-d", "--directory") {
			all(a.ops)
			return
		}
		targets := a.value("-t", "--target-directory")
		srcs := a.ops
		if len(targets) == 0 {
			if len(a.ops) < 2 {
				return
			}
			targets, srcs = a.ops[len(a.ops)-1], a.ops[:len(a.ops)-1]
		}
		s.intoTargets(targets, srcs, a.has("-r", "-R", "-a", "--recursive", "--archive"), c, cm.call, what)
	case "chmod", "chown", "chgrp":
		var rest []word
		for _, w := range ws {
			if l := w.lit(); cmd == "chmod" && len(l) > 1 && l[0] == '-' && strings.Trim(l[1:], "rwxXst") == "" {
				rest = append(rest, word{"mode"}) // chmod -x FILE: a mode, not an option
				continue
			}
			rest = append(rest, w)
		}
		a := parseArgs(rest, "", "--from")
		ops := a.ops
		if !a.has("--reference") && len(ops) > 0 {
			ops = ops[1:]
		}
		if a.has("-R", "--recursive") {
			for _, w := range ops {
				for _, f := range w {
					s.changeTree(f, c, cm.call, what)
				}
			}
			return
		}
		all(ops)
	case "chattr":
		for _, w := range ws {
			if l := w.lit(); l != "" && strings.IndexByte("-+=", l[0]) >= 0 {
				continue
			}
			chg(w)
		}
	case "setfacl":
		all(parseArgs(ws, "mxMX", "--modify", "--remove", "--set", "--set-file", "--modify-file", "--remove-file").ops)
	case "setcap":
		for _, w := range ws {
			if l := w.lit(); l == "-r" || l == "-q" || l == "-v" || strings.ContainsAny(l, "=+") && !strings.Contains(l, "/") {
				continue
			}
			chg(w)
		}
	case "touch":
		all(parseArgs(ws, "rdt", "--reference", "--date").ops)
	case "truncate":
		all(parseArgs(ws, "sr", "--size", "--reference").ops)
	case "dd":
		for _, w := range ws {
			for _, f := range w {
				if strings.HasPrefix(f, "of=") {
					s.change(f[3:], c, cm.call, what)
				}
			}
		}
	case "sed":
		a := s.inPlace(ws, "efl", []string{"--expression", "--file", "--line-length"}, c, cm.call, what)
		scripts := a.value("-e", "--expression")
		if len(scripts) == 0 && len(a.ops) > 0 {
			scripts = a.ops[0]
		}
		for _, sc := range scripts {
			if sedExecutes(sc) {
				// GNU sed's e runs its pattern space as a shell command:
				// names from a package's file list stay that package's.
				if out := s.output(cm.stdin, c); cm.stdin != nil && len(out) == 1 && strings.HasPrefix(out[0], pkgOpen) {
					s.change(out[0], c, cm.call, what)
				} else {
					s.escalate(s.where(c, cm.call) + ": sed runs commands it builds from its input")
				}
				break
			}
		}
	case "perl":
		a := s.inPlace(ws, "eEIMml", nil, c, cm.call, what)
		s.code(a.value("-e", "-E"), c, cm.call, "perl")
	case "python", "python3", "python2":
		a := parseArgs(ws, "cmWX")
		s.code(a.value("-c"), c, cm.call, "python")
	case "find":
		s.find(ws, c, cm.call)
	case "xargs":
		s.xargs(ws, c, cm)
	case "tar":
		s.tar(ws, c, cm.call)
	case "ucf":
		a := parseArgs(ws, "", "--three-way", "--src-dir", "--sum-file", "--state-dir")
		if a.has("--purge") || len(a.ops) == 1 {
			all(a.ops)
		} else if len(a.ops) > 1 {
			chg(a.ops[len(a.ops)-1])
		}
	case "patch":
		a := parseArgs(ws, "pdiorbBDFzVY", "--directory", "--input", "--output", "--reject-file", "--strip")
		if len(a.ops) == 0 {
			s.escalate(s.where(c, cm.call) + ": patch changes the files its input names")
		}
		if len(a.ops) > 0 {
			chg(a.ops[0])
		}
	case "rsync":
		a := parseArgs(ws, "e", "--rsh", "--exclude", "--include", "--files-from", "--filter", "--chmod", "--chown")
		if len(a.ops) > 1 {
			for _, f := range a.ops[len(a.ops)-1] {
				s.change(strings.TrimSuffix(f, "/")+"/"+unknown, c, cm.call, what)
			}
		}
	case ".", "source":
		if len(ws) == 0 {
			return
		}
		for _, f := range ws[0] {
			if p, ok := cleanAbs(f); ok && !hasMark(f) {
				s.sources[p] = true
				continue
			}
			s.escalate(s.where(c, cm.call) + ": sources a file that cannot be resolved")
		}
	case "dpkg-divert":
		s.divert(ws, c, cm.call)
	case "dpkg-statoverride":
		a := parseArgs(ws, "", "--admindir", "--instdir", "--root")
		if a.has("--add") && len(a.ops) >= 4 {
			for _, f := range a.ops[3] {
				if a.has("--update") {
					s.change(f, c, cm.call, "dpkg-statoverride --update changes")
					if p, ok := cleanAbs(f); ok && !hasMark(f) {
						s.statoverrides[p] = true
					}
				}
			}
		}
	case "dpkg-trigger":
		a := parseArgs(ws, "", "--admindir", "--by-package")
		if a.has("--check-supported") || len(a.ops) == 0 {
			return
		}
		for _, f := range a.ops[0] {
			if hasMark(f) {
				s.res.UnknownTriggers = true
				continue
			}
			s.triggers[f] = true
		}
	case "dpkg-maintscript-helper":
		s.maintscriptHelper(ws, c, cm.call)
	}
}

// isWrapper: the command runs the next words as a command.
func isWrapper(names []string) bool {
	for _, n := range names {
		w := &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{Value: n}}}
		if len(stripWrappers([]*syntax.Word{w, w})) != 2 {
			return true
		}
	}
	return false
}

// mayBeChanger: a computed command name that may be one of the changers,
// or a program that none of them is.
func mayBeChanger(names []string) bool {
	for _, n := range names {
		if !hasMark(n) {
			if changers[baseName(n)] {
				return true
			}
			continue
		}
		if strings.ContainsAny(n, unknown+pkgOpen) {
			return true
		}
		if i := strings.LastIndexByte(n, '/'); i >= 0 {
			switch n[:i] {
			case "/bin", "/usr/bin", "/sbin", "/usr/sbin", "/usr/local/bin", "/usr/local/sbin":
			default:
				if !strings.Contains(n[:i], nameMark) {
					continue // a program in a package's own directory
				}
			}
		}
		base := baseName(n)
		i := strings.IndexAny(base, marks)
		if i < 0 {
			if changers[base] {
				return true
			}
			continue
		}
		lead := base[:i]
		for ch := range changers {
			if strings.HasPrefix(ch, lead) {
				return true
			}
		}
	}
	return false
}

// intoTargets: a target that is a directory receives each source's
// name.
// A recursive copy (cp -r, mv of a directory) changes everything under
// them.
func (s *scanner) intoTargets(targets []string, srcs []word, recursive bool, c *ctx, n syntax.Node, what string) {
	chg := s.change
	if recursive {
		chg = s.changeTree
	}
	for _, t := range targets {
		chg(t, c, n, what)
		if hasMark(t) && !strings.Contains(t, "/") {
			continue // a computed name in the working directory (see change)
		}
		for _, src := range srcs {
			for _, f := range src {
				chg(strings.TrimSuffix(t, "/")+"/"+baseOf(f), c, n, what)
			}
		}
	}
}

// sedExecutes: a sed script with GNU's e command or s///e flag.
func sedExecutes(sc string) bool {
	if hasMark(sc) {
		return strings.Contains(sc, "e") // cannot tell: assume it may
	}
	for _, cmd := range strings.FieldsFunc(sc, func(r rune) bool { return r == ';' || r == '\n' }) {
		cmd = strings.TrimLeft(cmd, " \t")
		// skip an address (/re/, a line number, $)
		if strings.HasPrefix(cmd, "/") {
			for i := 1; i < len(cmd); i++ {
				if cmd[i] == '\\' {
					i++
				} else if cmd[i] == '/' {
					cmd = cmd[i+1:]
					break
				}
			}
		}
		cmd = strings.TrimLeft(cmd, "0123456789$,! \t")
		switch {
		case strings.HasPrefix(cmd, "e"):
			return true
		case len(cmd) > 1 && cmd[0] == 's':
			d := string(cmd[1])
			parts := strings.Split(cmd[2:], d)
			if len(parts) >= 3 && strings.Contains(parts[len(parts)-1], "e") {
				return true
			}
		}
	}
	return false
}

func baseOf(f string) string {
	if strings.ContainsAny(f, unknown+pkgOpen) {
		return nameMark // a name, but not one that can be told
	}
	f = strings.TrimRight(f, "/")
	return f[strings.LastIndexByte(f, '/')+1:]
}

// inPlace handles sed and perl: with -i the operands after the script
// are changed.
func (s *scanner) inPlace(ws []word, withValue string, longValue []string, c *ctx, n syntax.Node, what string) args {
	a := parseArgs(ws, withValue, longValue...)
	inplace := a.has("-i", "--in-place")
	if !inplace {
		return a
	}
	ops := a.ops
	if !a.has("-e", "-E", "-f", "--expression", "--file") && len(ops) > 0 {
		ops = ops[1:] // the script
	}
	for _, w := range ops {
		for _, f := range w {
			s.change(f, c, n, what)
		}
	}
	return a
}

// code scans a perl or python program given on the command line.
func (s *scanner) code(progs []string, c *ctx, n syntax.Node, lang string) {
	for _, p := range progs {
		s.scanLiteral([]byte(p))
		if strings.Contains(p, "dpkg-divert") || strings.Contains(p, "dpkg-statoverride") {
			s.escalate(s.where(c, n) + ": " + lang + " code that calls dpkg-divert or dpkg-statoverride")
		}
		if strings.Contains(p, "dpkg-trigger") {
			s.res.UnknownTriggers = true
		}
	}
}

// find changes what it finds under its roots with -delete or an -exec
// of a changer.
func (s *scanner) find(ws []word, c *ctx, n syntax.Node) {
	i := 0
	for i < len(ws) && (ws[i].lit() == "-H" || ws[i].lit() == "-L" || ws[i].lit() == "-P") {
		i++
	}
	var roots []word
	for ; i < len(ws); i++ {
		l := ws[i].lit()
		if strings.HasPrefix(l, "-") || l == "(" || l == "!" || l == "\\(" {
			break
		}
		roots = append(roots, ws[i])
	}
	changes := false
	for j := i; j < len(ws); j++ {
		switch ws[j].lit() {
		case "-delete", "-fprint", "-fprint0", "-fprintf", "-fls":
			changes = true
		case "-exec", "-execdir", "-ok", "-okdir":
			if j+1 < len(ws) {
				prog := ws[j+1].lit()
				if prog == "" || changers[baseName(prog)] {
					changes = true
				}
			}
		}
	}
	if !changes {
		return
	}
	if len(roots) == 0 {
		roots = []word{{"."}}
	}
	for _, r := range roots {
		for _, f := range r {
			s.changeTree(f, c, n, "find changes")
		}
	}
}

// xargs runs a command on names read from its input: bounded when the
// input is a find's output.
func (s *scanner) xargs(ws []word, c *ctx, cm cmdEv) {
	a := parseArgs(ws, "IiLlnPsdEea", "--max-args", "--max-lines", "--max-procs", "--delimiter", "--arg-file", "--replace", "--eof", "--max-chars")
	if len(a.ops) == 0 || !changers[baseName(a.ops[0].lit())] && a.ops[0].lit() != "" {
		return
	}
	what := "xargs " + a.ops[0].lit() + " changes"
	for _, w := range a.ops[1:] {
		for _, f := range w {
			if !strings.HasPrefix(f, "-") {
				s.change(f, c, cm.call, what)
			}
		}
	}
	roots, ok := s.findRoots(cm.stdin, c)
	if !ok {
		s.escalate(s.where(c, cm.call) + ": " + what + " names read from its input")
		return
	}
	for _, r := range roots {
		s.changeTree(r, c, cm.call, what)
	}
}

// findRoots: the directories a pipeline's names come from when it starts
// with find, through filters that only drop lines.
func (s *scanner) findRoots(st *syntax.Stmt, c *ctx) ([]string, bool) {
	for st != nil {
		switch x := st.Cmd.(type) {
		case *syntax.BinaryCmd:
			if x.Op != syntax.Pipe && x.Op != syntax.PipeAll {
				return nil, false
			}
			// every stage after the first must only select lines
			if !isFilter(x.Y) {
				return nil, false
			}
			st = x.X
			continue
		case *syntax.CallExpr:
			args := stripWrappers(x.Args)
			if len(args) == 0 || baseName(args[0].Lit()) != "find" {
				return nil, false
			}
			var ops []string
			for _, w := range args[1:] {
				ops = append(ops, s.fields(w, c)...)
			}
			return findRootsOf(ops), true
		}
		return nil, false
	}
	return nil, false
}

func isFilter(st *syntax.Stmt) bool {
	ce, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || len(ce.Args) == 0 {
		return false
	}
	switch baseName(ce.Args[0].Lit()) {
	case "grep", "egrep", "fgrep", "sort", "uniq", "head", "tail", "tac":
		return true
	}
	return false
}

// tar -x writes under -C DIR (or the working directory).
func (s *scanner) tar(ws []word, c *ctx, n syntax.Node) {
	extract := false
	if len(ws) > 0 {
		if l := ws[0].lit(); l != "" && !strings.HasPrefix(l, "-") && strings.ContainsAny(l, "x") {
			extract = true
		}
	}
	a := parseArgs(ws, "CfbFgKLNTVX", "--directory", "--file")
	if a.has("-x", "--extract", "--get") {
		extract = true
	}
	if !extract {
		return
	}
	dirs := a.value("-C", "--directory")
	if len(dirs) == 0 {
		dirs = []string{"."}
	}
	for _, d := range dirs {
		s.change(strings.TrimSuffix(d, "/")+"/"+unknown, c, n, "tar extracts")
	}
}

// divert records a dpkg-divert call.
func (s *scanner) divert(ws []word, c *ctx, n syntax.Node) {
	a := parseArgs(ws, "", "--divert", "--package", "--admindir", "--instdir", "--root")
	if a.has("--list", "--listpackage", "--truename", "--help", "--version") || a.has("--test") || len(a.ops) == 0 {
		return
	}
	// --rename with --no-rename too: the move is assumed (it may happen)
	d := Divert{Remove: a.has("--remove"), Rename: a.has("--rename")}
	if p := a.value("--package"); len(p) > 0 && !a.has("--local") {
		d.Package = p[len(p)-1]
	}
	tos := []string{""}
	if t := a.value("--divert"); len(t) > 0 {
		tos = t[len(t)-1:]
	}
	what := "dpkg-divert --rename moves"
	for _, from := range a.ops[0] {
		for _, to := range tos {
			if d.Rename {
				s.change(from, c, n, what)
				if to != "" {
					s.change(to, c, n, what)
				} else if !hasMark(from) {
					s.addPath(from + ".distrib")
				}
			} else {
				s.read(from)
				s.read(to)
			}
			if hasMark(from) || hasMark(to) {
				continue
			}
			f, ok := cleanAbs(from)
			if !ok {
				continue
			}
			dd := d
			dd.From = f
			if to != "" {
				if dd.To, ok = cleanAbs(to); !ok {
					continue
				}
			}
			if !containsDivert(s.res.Diverts, dd) {
				s.res.Diverts = append(s.res.Diverts, dd)
			}
		}
	}
}

func containsDivert(l []Divert, d Divert) bool {
	for _, x := range l {
		if x == d {
			return true
		}
	}
	return false
}

// maintscriptHelper: dpkg-maintscript-helper's commands name the paths
// they move.
func (s *scanner) maintscriptHelper(ws []word, c *ctx, n syntax.Node) {
	if len(ws) < 2 {
		return
	}
	what := "dpkg-maintscript-helper " + ws[0].lit() + " changes"
	switch ws[0].lit() {
	case "rm_conffile", "mv_conffile":
		// The helper only moves files the package owns (it checks), and
		// the run unlocks the package's own files: a computed name needs
		// no escalation.
		for _, w := range ws[1:min(3, len(ws))] {
			for _, f := range w {
				s.read(f)
			}
		}
	case "symlink_to_dir", "dir_to_symlink":
		for _, f := range ws[1] {
			s.changeTree(f, c, n, what)
		}
	}
}

// redirect analyses a redirection: > >> <> &> targets change.
func (s *scanner) redirect(r redirEv) {
	if r.r.Word == nil || r.r.Hdoc != nil {
		return
	}
	switch r.r.Op {
	case syntax.RdrOut, syntax.AppOut, syntax.RdrInOut, syntax.RdrAll, syntax.AppAll, syntax.RdrClob, syntax.RdrAllClob, syntax.AppAllClob:
		for _, f := range s.fields(r.r.Word, r.ctx) {
			s.change(f, r.ctx, r.r, "a redirection writes")
		}
	case syntax.DplOut, syntax.DplIn:
		for _, f := range s.fields(r.r.Word, r.ctx) {
			if f != "-" && strings.Trim(f, "0123456789") != "" && !strings.HasPrefix(f, nameMark) {
				s.change(f, r.ctx, r.r, "a redirection writes")
			}
		}
	case syntax.RdrIn:
		for _, f := range s.fields(r.r.Word, r.ctx) {
			s.read(f)
		}
	}
}
