package mscript

import (
	"regexp"
	"strconv"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Expanded words are strings in which these bytes stand for what a
// static reading cannot know. Literal text never holds them: cleanText
// turns such bytes in the script into unknown.
const (
	unknown  = "\x00" // computed text that may hold any character, '/' too
	nameMark = "\x01" // computed text without '/': a glob, a dpkg argument, an architecture
	sep      = "\x02" // a field boundary (an unquoted expansion splits there)
	// pkgOpen+"P"+NAME+pkgClose is a name taken from package NAME's
	// file list (dpkg -L NAME), or derived from one; pkgOpen+"T"+PATH+
	// pkgClose is what dpkg-divert --truename PATH prints (PATH or where
	// the diversions database diverts it to).
	pkgOpen  = "\x03"
	pkgClose = "\x04"
	marks    = "\x00\x01\x02\x03\x04"
)

func hasMark(v string) bool { return strings.ContainsAny(v, marks) }

// valSet is the set of values a variable or parameter may take. Past
// maxAlts values, or when the fixpoint does not settle, it widens: it
// then holds wide+unknown, and takes a new value only when the value
// does not start with wide (shortening wide to their common prefix).
type valSet struct {
	vals    []string
	has     map[string]bool
	widened bool
	wide    string
	changed bool // in the last round
}

func (v *valSet) contains(x string) bool {
	if v.has != nil {
		return v.has[x]
	}
	for _, y := range v.vals {
		if y == x {
			return true
		}
	}
	return false
}

func (v *valSet) add(x string) bool {
	if v.contains(x) {
		return false
	}
	if v.widened {
		if strings.HasPrefix(x, v.wide) {
			return false
		}
		v.widen(x)
		return true
	}
	if len(v.vals) >= maxAlts {
		v.widen(x)
		return true
	}
	v.vals = append(v.vals, x)
	switch {
	case v.has != nil:
		v.has[x] = true
	case len(v.vals) > 8:
		// past a few values, a map answers contains faster
		v.has = make(map[string]bool, 2*len(v.vals))
		for _, y := range v.vals {
			v.has[y] = true
		}
	}
	v.changed = true
	return true
}

// widen makes the set every value starting with the common prefix of
// its values and x.
func (v *valSet) widen(x string) {
	p := x
	if v.widened {
		p = commonPrefix(v.wide, x)
	} else {
		for _, y := range v.vals {
			p = commonPrefix(p, y)
		}
	}
	v.widened, v.wide, v.changed = true, p, true
	// the values already there start with p: one entry stands for all
	v.vals = []string{p + unknown}
	v.has = nil
}

func commonPrefix(a, b string) string {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			return a[:i]
		}
	}
	return a[:n]
}

// envDefaults are the values of variables dpkg or the system give a
// maintainer script, when the script does not assign them itself. dpkg
// runs scripts chrooted into --root, so DPKG_ROOT names "/" there; dpkg's
// own values never hold a '/' (nameMark). TMPDIR and HOME are assumed
// to point outside package directories.
var envDefaults = map[string]string{
	"DPKG_ROOT":                         "",
	"DPKG_ADMINDIR":                     "/var/lib/dpkg",
	"DPKG_MAINTSCRIPT_PACKAGE":          nameMark,
	"DPKG_MAINTSCRIPT_PACKAGE_REFCOUNT": nameMark,
	"DPKG_MAINTSCRIPT_ARCH":             nameMark,
	"DPKG_MAINTSCRIPT_NAME":             nameMark,
	"DPKG_MAINTSCRIPT_DEBUG":            nameMark,
	"DPKG_RUNNING_VERSION":              nameMark,
	"DPKG_FORCE":                        nameMark,
	"DPKG_FRONTEND_LOCKED":              nameMark,
	"DEBIAN_FRONTEND":                   nameMark,
	"DEBCONF_REDIR":                     nameMark,
	"DEBCONF_RECONFIGURE":               nameMark,
	"TMPDIR":                            "/tmp",
	"HOME":                              "/root",
	"RANDOM":                            nameMark,
	"LINENO":                            nameMark,
	"UID":                               nameMark,
	"EUID":                              nameMark,
	"PPID":                              nameMark,
}

// solve gives every variable and function parameter the set of values
// its assignments and call sites produce, to a fixpoint. Not reaching
// one in maxRounds makes every computed variable unknown.
func (s *scanner) solve() {
	type site struct {
		f    *fnInfo
		args []*syntax.Word
		ctx  *ctx
	}
	var sites []site
	for _, cm := range s.cmds {
		args := stripWrappers(cm.call.Args)
		if len(args) == 0 {
			continue
		}
		if f, ok := s.funcs[args[0].Lit()]; ok && args[0].Lit() != "" {
			f.called = true
			sites = append(sites, site{f, args[1:], cm.ctx})
		}
	}
	top := s.fn("")
	top.called = true
	top.ensure()
	top.all.add(nameMark)
	top.all.add("")
	for _, a := range top.args {
		a.add(nameMark)
		a.add("")
	}
	if s.topSet {
		sites = append(sites, site{top, s.topArgs, &ctx{}})
	}
	for _, f := range s.funcs {
		f.ensure()
	}
	for _, a := range s.assigns {
		s.varSet(a.name)
	}
	s.solving = true
	defer func() { s.solving = false }()
	calls := func() bool {
		changed := false
		for _, st := range sites {
			changed = s.callSite(st.f, st.args, st.ctx) || changed
		}
		return changed
	}
	converged := s.rounds(calls)
	if converged {
		// A variable only ever assigned from itself ("X=$X:/a") keeps
		// its value from the environment: unknown.
		again := false
		for _, v := range s.vars {
			if len(v.vals) == 0 {
				again = v.add(unknown) || again
			}
		}
		if again {
			converged = s.rounds(calls)
		}
	}
	// Widen what still grows (X=$X/y) and settle again; what never
	// settles becomes unknown.
	for try := 0; !converged && try < 4; try++ {
		for _, v := range s.vars {
			if v.changed && !v.widened && len(v.vals) > 0 {
				v.widen(v.vals[0])
			}
		}
		for _, f := range s.funcs {
			for _, a := range append([]*valSet{f.all}, f.args...) {
				if a.changed && !a.widened && len(a.vals) > 0 {
					a.widen(a.vals[0])
				}
			}
		}
		converged = s.rounds(calls)
	}
	if !converged {
		for _, v := range s.vars {
			v.widen("")
		}
		for _, f := range s.funcs {
			f.all.widen("")
			for _, a := range f.args {
				a.widen("")
			}
		}
	}
}

// rounds applies every assignment (and calls, the call sites) until
// nothing changes; false when maxRounds pass first.
func (s *scanner) rounds(calls func() bool) bool {
	for round := 0; round < maxRounds; round++ {
		for _, v := range s.vars {
			v.changed = false
		}
		for _, f := range s.funcs {
			f.all.changed = false
			for _, a := range f.args {
				a.changed = false
			}
		}
		changed := false
		for i := range s.assigns {
			a := &s.assigns[i]
			if a.settled {
				continue
			}
			v := s.varSet(a.name)
			for _, x := range s.assignValues(*a) {
				changed = v.add(x) || changed
			}
			// a literal value is the same every round
			a.settled = a.word != nil && plain(a.word.Parts)
		}
		changed = calls() || changed
		if !changed {
			return true
		}
	}
	return false
}

// callSite gives a function's parameters the fields of one call's
// arguments. A word that may give other than one field (an unquoted
// expansion, "$@") shifts the positions after it: the function's
// parameters then each take every argument's values.
func (s *scanner) callSite(f *fnInfo, args []*syntax.Word, c *ctx) bool {
	changed := false
	for i, w := range args {
		quoted := hasQuoted(w)
		if !f.shifty && spreads(w) {
			f.shifty, changed = true, true
		}
		for _, a := range s.expand(w, c, true) {
			fs := strings.Split(a, sep)
			if !quoted {
				fs = nonEmpty(fs)
			}
			if len(fs) != 1 && !(len(fs) == 0 && i == len(args)-1) && !f.shifty {
				f.shifty, changed = true, true
			}
			if len(fs) == 0 && i < len(f.args) {
				changed = f.args[i].add("") || changed
			}
			for _, x := range fs {
				changed = f.all.add(x) || changed
				if len(fs) == 1 && i < len(f.args) {
					changed = f.args[i].add(x) || changed
				}
			}
		}
	}
	for i := len(args); i < len(f.args); i++ {
		changed = f.args[i].add("") || changed
	}
	return changed
}

func nonEmpty(fs []string) []string {
	out := fs[:0:0]
	for _, f := range fs {
		if f != "" {
			out = append(out, f)
		}
	}
	return out
}

func hasQuoted(w *syntax.Word) bool {
	for _, p := range w.Parts {
		switch p.(type) {
		case *syntax.DblQuoted, *syntax.SglQuoted:
			return true
		}
	}
	return false
}

// spreads: "$@" and "$*" stand for several arguments.
func spreads(w *syntax.Word) bool {
	found := false
	syntax.Walk(w, func(n syntax.Node) bool {
		if pe, ok := n.(*syntax.ParamExp); ok && pe.Param != nil && (pe.Param.Value == "@" || pe.Param.Value == "*") {
			found = true
		}
		return !found
	})
	return found
}

func (f *fnInfo) ensure() {
	if f.args == nil {
		f.args = make([]*valSet, 9)
		for i := range f.args {
			f.args[i] = &valSet{}
		}
	}
}

func (s *scanner) varSet(name string) *valSet {
	v := s.vars[name]
	if v == nil {
		v = &valSet{}
		s.vars[name] = v
	}
	return v
}

func (s *scanner) assignValues(a assignEv) []string {
	switch {
	case a.word != nil:
		return s.expand(a.word, a.ctx, false)
	case a.read:
		return s.readValues(a)
	case a.for_:
		var out []string
		for _, w := range a.list {
			out = append(out, s.fields(w, a.ctx)...)
		}
		return out
	}
	return []string{unknown}
}

// readValues: what read NAME… gives a variable, from a here-document's
// lines or a pipeline's known output.
func (s *scanner) readValues(a assignEv) []string {
	if a.from == nil {
		return []string{unknown}
	}
	var lines []string
	for _, r := range a.from.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc:
			for _, v := range s.expand(r.Hdoc, a.ctx, false) {
				lines = append(lines, strings.Split(strings.TrimSuffix(v, "\n"), "\n")...)
			}
		case syntax.WordHdoc:
			lines = append(lines, s.expand(r.Word, a.ctx, false)...)
		case syntax.RdrIn:
			return []string{unknown}
		}
	}
	if lines == nil {
		lines = s.output(a.from, a.ctx)
	}
	out := make([]string, 0, len(lines))
	for _, l := range lines {
		f := strings.Fields(l)
		switch {
		case a.idx >= len(f):
			out = append(out, "")
		case a.idx < a.n-1:
			out = append(out, f[a.idx])
		default:
			out = append(out, strings.Join(f[a.idx:], " "))
		}
	}
	return out
}

// lookup is the set of values a parameter may have where c is.
func (s *scanner) lookup(name string, c *ctx) []string {
	if v, ok := s.bound[name]; ok {
		return []string{v}
	}
	if name == "" {
		return []string{unknown}
	}
	for b := c.loops; b != nil; b = b.next {
		if b.name == name {
			var out []string
			for _, w := range b.items {
				out = append(out, s.fields(w, b.ctx)...)
			}
			return out
		}
	}
	if name[0] >= '0' && name[0] <= '9' {
		n, err := strconv.Atoi(name)
		if err != nil || n > 1<<20 {
			return []string{unknown}
		}
		if n == 0 {
			return []string{"/var/lib/dpkg/" + unknown} // the script's own path
		}
		f := s.funcs[c.fn]
		if f != nil && !f.called && !s.computedCmd {
			return nil // a function nothing calls never runs
		}
		if f == nil || !f.called || f.args == nil {
			return []string{unknown}
		}
		if f.shifty || n > len(f.args) {
			return append(f.all.vals[:len(f.all.vals):len(f.all.vals)], "")
		}
		if len(f.args[n-1].vals) == 0 && !s.solving {
			return []string{unknown}
		}
		return f.args[n-1].vals
	}
	switch name {
	case "@", "*":
		f := s.funcs[c.fn]
		if f != nil && !f.called && !s.computedCmd {
			return nil
		}
		if f == nil || !f.called || f.args == nil {
			return []string{unknown}
		}
		return append(f.all.vals[:len(f.all.vals):len(f.all.vals)], "")
	case "#", "?", "$", "!", "-":
		return []string{nameMark}
	}
	d, isEnv := envDefaults[name]
	if v := s.vars[name]; v != nil && len(v.vals) == 0 && s.solving {
		return nil // not known yet
	}
	if v := s.vars[name]; v != nil && len(v.vals) > 0 {
		if isEnv && !v.contains(d) {
			return append(v.vals[:len(v.vals):len(v.vals)], d)
		}
		return v.vals
	}
	if isEnv {
		return []string{d}
	}
	return []string{unknown}
}

// fields expands a word as a command argument: the fields it may give,
// after splitting and globbing, without empty ones.
func (s *scanner) fields(w *syntax.Word, c *ctx) []string {
	if len(w.Parts) == 1 {
		// the common case: one literal word
		if l, ok := w.Parts[0].(*syntax.Lit); ok && !strings.ContainsAny(l.Value, "\\*?[{~\x00\x01\x02\x03\x04") {
			if l.Value == "" {
				return nil
			}
			return []string{l.Value}
		}
	}
	if s.solving || s.bound != nil {
		return s.fieldsOf(w, c)
	}
	// Values are settled: a word expands the same wherever it is used.
	k := fieldKey{w, c.fn, c.loops}
	if fs, ok := s.fieldCache[k]; ok {
		return fs
	}
	fs := s.fieldsOf(w, c)
	if s.fieldCache == nil {
		s.fieldCache = make(map[fieldKey][]string, 2*len(s.cmds))
	}
	s.fieldCache[k] = fs
	return fs
}

type fieldKey struct {
	w     *syntax.Word
	fn    string
	loops *loopBind
}

func (s *scanner) fieldsOf(w *syntax.Word, c *ctx) []string {
	alts := s.expand(w, c, true)
	var out []string
	seen := map[string]bool{}
	for _, a := range alts {
		for _, f := range strings.Split(a, sep) {
			if f != "" && !seen[f] {
				seen[f] = true
				out = append(out, f)
			}
		}
	}
	if len(out) > maxAlts {
		return []string{unknown}
	}
	return out
}

// expand is the set of strings a word may give; with split (an argument,
// not an assignment's value) unquoted expansions are split at sep and
// globs become nameMark.
func (s *scanner) expand(w *syntax.Word, c *ctx, split bool) []string {
	if w == nil {
		return []string{""}
	}
	if s.bound != nil || plain(w.Parts) {
		return s.concat(w.Parts, c, false, split)
	}
	// A variable used twice in one word has one value at a time
	// ("$i.1.gz $i"): enumerate the variables' values together rather
	// than each occurrence's.
	names, combos := s.wordVars(w, c)
	if combos <= 1 || combos > maxAlts {
		return s.concat(w.Parts, c, false, split)
	}
	var out []string
	seen := map[string]bool{}
	bound := make(map[string]string, len(names))
	var each func(i int)
	each = func(i int) {
		if i == len(names) {
			s.bound = bound
			alts := s.concat(w.Parts, c, false, split)
			s.bound = nil
			for _, a := range alts {
				if !seen[a] {
					seen[a] = true
					out = append(out, a)
				}
			}
			return
		}
		for _, v := range names[i].vals {
			bound[names[i].name] = v
			each(i + 1)
		}
	}
	each(0)
	return out
}

// plain: parts without expansions, which need no variable enumeration.
func plain(parts []syntax.WordPart) bool {
	for _, p := range parts {
		switch x := p.(type) {
		case *syntax.Lit, *syntax.SglQuoted:
		case *syntax.DblQuoted:
			if !plain(x.Parts) {
				return false
			}
		default:
			return false
		}
	}
	return true
}

type wordVar struct {
	name string
	vals []string
}

// wordVars are the distinct variables a word expands with more than one
// value, and the number of their combinations.
func (s *scanner) wordVars(w *syntax.Word, c *ctx) ([]wordVar, int) {
	names, ok := s.wordNames[w]
	if !ok {
		syntax.Walk(w, func(n syntax.Node) bool {
			switch x := n.(type) {
			case *syntax.CmdSubst, *syntax.ProcSubst:
				return false // expanded on their own
			case *syntax.ParamExp:
				if x.Param != nil && isName(x.Param.Value) && !contains(names, x.Param.Value) {
					names = append(names, x.Param.Value)
				}
			}
			return true
		})
		if s.wordNames == nil {
			s.wordNames = map[*syntax.Word][]string{}
		}
		s.wordNames[w] = names
	}
	var out []wordVar
	combos := 1
	for _, n := range names {
		if vals := s.lookup(n, c); len(vals) > 1 {
			out = append(out, wordVar{n, vals})
			if combos *= len(vals); combos > maxAlts {
				return nil, combos
			}
		}
	}
	return out, combos
}

func (s *scanner) concat(parts []syntax.WordPart, c *ctx, quoted, split bool) []string {
	acc := []string{""}
	for i, p := range parts {
		acc = s.cross(acc, s.part(p, c, quoted, split, i == 0))
	}
	return acc
}

// cross is every a+v; past maxAlts the part becomes unknown.
func (s *scanner) cross(acc, vals []string) []string {
	if len(vals) == 1 {
		for i := range acc {
			acc[i] += vals[0]
			s.work += len(acc[i])
		}
		return acc
	}
	if len(acc)*len(vals) > maxAlts || s.work > maxWork {
		vals = []string{unknown}
	}
	for _, a := range acc {
		for _, v := range vals {
			s.work += len(a) + len(v)
		}
	}
	out := make([]string, 0, len(acc)*len(vals))
	seen := make(map[string]bool, len(acc)*len(vals))
	for _, a := range acc {
		for _, v := range vals {
			if !seen[a+v] {
				seen[a+v] = true
				out = append(out, a+v)
			}
		}
	}
	return out
}

func (s *scanner) part(p syntax.WordPart, c *ctx, quoted, split bool, first bool) []string {
	if s.work > maxWork {
		s.escalate(s.name + ": too complex to analyse")
		return []string{unknown}
	}
	switch x := p.(type) {
	case *syntax.Lit:
		v := x.Value
		if !quoted && first && strings.HasPrefix(v, "~") {
			switch user, rest, _ := strings.Cut(v[1:], "/"); user {
			case "", "root":
				v = "/root/" + rest
			default:
				v = "/home/" + user + "/" + rest
			}
		}
		if quoted || !split {
			return []string{cleanText(unescape(v, quoted))}
		}
		if s.bash && s.braces < 8 && strings.Contains(v, "{") {
			// bash expands a/{b,c} in arguments (dash does not)
			w := &syntax.Word{Parts: []syntax.WordPart{&syntax.Lit{Value: v}}}
			if syntax.SplitBraces(w) {
				s.braces++
				defer func() { s.braces-- }()
				return s.concat(w.Parts, c, quoted, split)
			}
		}
		return []string{globText(cleanText(v))}
	case *syntax.SglQuoted:
		if x.Dollar && strings.Contains(x.Value, `\`) {
			return []string{unknown}
		}
		return []string{cleanText(x.Value)}
	case *syntax.DblQuoted:
		return s.concat(x.Parts, c, true, false)
	case *syntax.ParamExp:
		vals := s.param(x, c, quoted)
		if !quoted && split {
			vals = splitVals(vals)
		}
		return vals
	case *syntax.CmdSubst:
		vals := s.cmdSubst(x, c)
		if !quoted && split {
			vals = splitVals(vals)
		}
		return vals
	case *syntax.ArithmExp, *syntax.ExtGlob:
		return []string{nameMark}
	case *syntax.ProcSubst:
		return []string{"/dev/fd/" + nameMark}
	case *syntax.BraceExp:
		if x.Sequence {
			return []string{nameMark}
		}
		var out []string
		for _, e := range x.Elems {
			out = append(out, s.concat(e.Parts, c, quoted, split)...)
		}
		return out
	}
	return []string{unknown}
}

// cleanText keeps the marker bytes out of literal text.
func cleanText(v string) string {
	if !hasMark(v) {
		return v
	}
	return strings.Map(func(r rune) rune {
		if r <= 4 {
			return 0
		}
		return r
	}, v)
}

// unescape removes the backslashes quoting does: any character outside
// quotes, $ ` " \ and newline inside double quotes.
func unescape(v string, quoted bool) string {
	if !strings.Contains(v, `\`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] == '\\' && i+1 < len(v) && (!quoted || strings.IndexByte("$`\"\\\n", v[i+1]) >= 0) {
			i++
			if v[i] == '\n' {
				continue
			}
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// globText is unquoted literal text: backslashes removed, glob
// characters turned into nameMark (a match never crosses a '/'). The
// caller cleans literal text first: markers already there are kept.
func globText(v string) string {
	if !strings.ContainsAny(v, `\*?[`) {
		return v
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		switch v[i] {
		case '\\':
			if i+1 < len(v) {
				i++
				b.WriteByte(v[i])
			}
		case '*', '?':
			b.WriteString(nameMark)
		case '[':
			if j := strings.IndexByte(v[i+1:], ']'); j >= 0 {
				b.WriteString(nameMark)
				i += j + 1
			} else {
				b.WriteByte('[')
			}
		default:
			b.WriteByte(v[i])
		}
	}
	return b.String()
}

// splitVals applies field splitting and globbing to unquoted expanded
// values.
func splitVals(vals []string) []string {
	var out []string
	for i, v := range vals {
		if !strings.ContainsAny(v, " \t\n*?[") {
			continue
		}
		if out == nil {
			out = append([]string(nil), vals...)
		}
		b := []byte(v)
		for j, ch := range b {
			if ch == ' ' || ch == '\t' || ch == '\n' {
				b[j] = sep[0]
			}
		}
		v = string(b)
		if strings.ContainsAny(v, "*?[") {
			v = globText(strings.ReplaceAll(v, `\`, `\\`))
		}
		out[i] = v
	}
	if out == nil {
		return vals
	}
	return out
}

// param expands ${…}.
func (s *scanner) param(x *syntax.ParamExp, c *ctx, quoted bool) []string {
	if x.Param == nil || x.Excl || x.Index != nil || x.Slice != nil || x.Names != 0 || x.Width || x.IsSet || x.NestedParam != nil {
		return []string{unknown}
	}
	if x.Length {
		return []string{nameMark}
	}
	base := s.lookup(x.Param.Value, c)
	if x.Repl != nil {
		orig, ok1 := literalString(x.Repl.Orig)
		with, ok2 := literalString(x.Repl.With)
		if !ok1 || !ok2 || orig == "" || strings.ContainsAny(orig, "*?[") {
			return []string{unknown}
		}
		out := make([]string, 0, len(base))
		for _, v := range base {
			switch {
			case hasMark(v):
				out = append(out, unknown)
			case x.Repl.All:
				out = append(out, strings.ReplaceAll(v, orig, with))
			default:
				out = append(out, strings.Replace(v, orig, with, 1))
			}
		}
		return out
	}
	if x.Exp == nil {
		return base
	}
	word := func() []string { return s.expand(x.Exp.Word, c, false) }
	switch x.Exp.Op {
	case syntax.DefaultUnset, syntax.DefaultUnsetOrNull, syntax.AssignUnset, syntax.AssignUnsetOrNull:
		return append(base[:len(base):len(base)], word()...)
	case syntax.AlternateUnset, syntax.AlternateUnsetOrNull:
		return append([]string{""}, word()...)
	case syntax.ErrorUnset, syntax.ErrorUnsetOrNull:
		return base
	case syntax.RemSmallPrefix, syntax.RemLargePrefix, syntax.RemSmallSuffix, syntax.RemLargeSuffix:
		pat, lead, tail, wild, ok := pattern(x.Exp.Word)
		if !ok {
			return []string{unknown}
		}
		out := make([]string, 0, len(base))
		for _, v := range base {
			out = append(out, trim(v, pat, lead, tail, wild, x.Exp.Op)...)
		}
		return out
	}
	return []string{unknown}
}

// pattern turns a ${V%pattern} word into a regular expression, with
// its literal text before the first wildcard (lead) and after the last
// (tail); for a pattern without wildcards both are the whole text. false
// when it is not literal or uses brackets.
func pattern(w *syntax.Word) (*regexp.Regexp, string, string, bool, bool) {
	var b, lit strings.Builder
	lead, wild := "", false
	literal := func(t string) {
		b.WriteString(regexp.QuoteMeta(t))
		lit.WriteString(t)
	}
	wildcard := func(re string) {
		if !wild {
			lead, wild = lit.String(), true
		}
		lit.Reset()
		b.WriteString(re)
	}
	if w != nil {
		for _, p := range w.Parts {
			switch x := p.(type) {
			case *syntax.Lit:
				v := x.Value
				for i := 0; i < len(v); i++ {
					switch v[i] {
					case '*':
						wildcard(`(?s:.*)`)
					case '?':
						wildcard(`(?s:.)`)
					case '[':
						return nil, "", "", false, false
					case '\\':
						if i+1 < len(v) {
							i++
						}
						literal(v[i : i+1])
					default:
						literal(v[i : i+1])
					}
				}
			case *syntax.SglQuoted:
				literal(x.Value)
			case *syntax.DblQuoted:
				l, ok := literalString(&syntax.Word{Parts: []syntax.WordPart{x}})
				if !ok {
					return nil, "", "", false, false
				}
				literal(l)
			default:
				return nil, "", "", false, false
			}
		}
	}
	if b.Len() > 256 {
		return nil, "", "", false, false
	}
	tail := lit.String()
	if !wild {
		lead = tail
	}
	re, err := regexp.Compile(`^(?:` + b.String() + `)$`)
	return re, lead, tail, wild, err == nil
}

// trim applies # ## % %% to one value: the values the result may take.
func trim(v string, pat *regexp.Regexp, lead, tail string, wild bool, op syntax.ParExpOperator) []string {
	if len(v) > 512 {
		return []string{unknown}
	}
	if hasMark(v) {
		return trimMarked(v, lead, tail, wild, op)
	}
	switch op {
	case syntax.RemSmallPrefix:
		for i := 0; i <= len(v); i++ {
			if pat.MatchString(v[:i]) {
				return []string{v[i:]}
			}
		}
	case syntax.RemLargePrefix:
		for i := len(v); i >= 0; i-- {
			if pat.MatchString(v[:i]) {
				return []string{v[i:]}
			}
		}
	case syntax.RemSmallSuffix:
		for i := len(v); i >= 0; i-- {
			if pat.MatchString(v[i:]) {
				return []string{v[:i]}
			}
		}
	case syntax.RemLargeSuffix:
		for i := 0; i <= len(v); i++ {
			if pat.MatchString(v[i:]) {
				return []string{v[:i]}
			}
		}
	}
	return []string{v}
}

// trimMarked trims a value holding computed parts, as a superset: a
// suffix removal cuts where the pattern's leading literal occurs in the
// literal head, or somewhere in the computed rest; ##*/ keeps what
// follows the last '/'. lead and tail are the pattern's literal ends
// ("" when it starts or ends with a wildcard); wild is false for a
// pattern without wildcards.
func trimMarked(v, lead, tail string, wild bool, op syntax.ParExpOperator) []string {
	if strings.Contains(v, pkgOpen) {
		return []string{v} // still a name from the package's list
	}
	i := strings.IndexAny(v, marks)
	head := v[:i]
	switch op {
	case syntax.RemSmallSuffix, syntax.RemLargeSuffix:
		if lead == "" {
			return []string{unknown}
		}
		out := []string{head + unknown}
		for k := 0; k < len(head); k++ {
			if strings.HasPrefix(v[k:], lead) || strings.HasPrefix(lead, v[k:i]) {
				out = append(out, v[:k])
			}
		}
		return out
	case syntax.RemLargePrefix:
		if lead == "" && tail == "/" {
			// ##*/: what follows the last '/', which has none
			last := v[strings.LastIndexByte(v, '/')+1:]
			if strings.Contains(last, unknown) {
				return []string{nameMark}
			}
			return []string{last}
		}
		fallthrough
	case syntax.RemSmallPrefix:
		if !wild && lead != "" && strings.HasPrefix(head, lead) {
			// a literal pattern (${f#/usr/}) the head starts with
			return []string{v[len(lead):]}
		}
		if lead != "" && !strings.HasPrefix(head, lead) && !strings.HasPrefix(lead, head) {
			return []string{v} // cannot match at the start
		}
	}
	return []string{unknown}
}

// cmdSubst is what $(…) may print, for the few commands whose output
// is known in shape; anything else is unknown.
func (s *scanner) cmdSubst(x *syntax.CmdSubst, c *ctx) []string {
	if len(x.Stmts) != 1 || s.substDepth >= maxSubst {
		return []string{unknown}
	}
	s.substDepth++
	defer func() { s.substDepth-- }()
	return s.output(x.Stmts[0], c)
}

// output is what a statement may print, one value per line or word.
func (s *scanner) output(st *syntax.Stmt, c *ctx) []string {
	if bc, ok := st.Cmd.(*syntax.BinaryCmd); ok && (bc.Op == syntax.Pipe || bc.Op == syntax.PipeAll) {
		in := s.output(bc.X, c)
		if len(in) == 0 && s.solving {
			return nil // not known yet
		}
		if len(in) == 1 && strings.HasPrefix(in[0], pkgOpen) {
			return in // whatever a pipeline makes of a package's file list derives from it
		}
		ce, ok := bc.Y.Cmd.(*syntax.CallExpr)
		if !ok {
			return []string{unknown}
		}
		args := stripWrappers(ce.Args)
		if len(args) == 0 {
			return []string{unknown}
		}
		switch baseName(args[0].Lit()) {
		case "grep", "egrep", "fgrep", "sort", "uniq", "head", "tail", "tac":
			return in // lines selected, not changed
		case "sed":
			return s.sedSubst(in, args[1:], c)
		}
		return []string{unknown}
	}
	ce, ok := st.Cmd.(*syntax.CallExpr)
	if !ok {
		return []string{unknown}
	}
	args := stripWrappers(ce.Args)
	if len(args) == 0 {
		return []string{""}
	}
	var ops []string
	for _, w := range args[1:] {
		fs := s.fields(w, c)
		if len(fs) == 0 && s.solving {
			return nil // not known yet
		}
		ops = append(ops, fs...)
	}
	switch baseName(args[0].Lit()) {
	case "mktemp", "tempfile":
		return mktemp(ops)
	case "dirname":
		var out []string
		for _, o := range ops {
			if !strings.HasPrefix(o, "-") {
				out = append(out, dirName(o))
			}
		}
		return out
	case "basename":
		for _, o := range ops {
			if !strings.HasPrefix(o, "-") {
				if b := o[strings.LastIndexByte(o, '/')+1:]; !strings.ContainsAny(b, unknown+pkgOpen) {
					return []string{b}
				}
				return []string{nameMark}
			}
		}
	case "dpkg-architecture", "uname", "id", "hostname", "whoami", "nproc", "arch", "date":
		return []string{nameMark}
	case "dpkg-divert":
		for i, o := range ops {
			if o == "--truename" && i+1 < len(ops) {
				if p, ok := cleanAbs(ops[i+1]); ok && !hasMark(ops[i+1]) {
					return []string{pkgOpen + "T" + p + pkgClose}
				}
			}
		}
	case "dpkg", "dpkg-query":
		for i, o := range ops {
			switch {
			case o == "--control-path":
				return []string{"/var/lib/dpkg/info/" + nameMark} // the admindir's info/
			case (o == "-f" || o == "--showformat") && i+1 < len(ops) && slashlessFormat(ops[i+1]),
				strings.HasPrefix(o, "--showformat=") && slashlessFormat(strings.TrimPrefix(o, "--showformat=")),
				strings.HasPrefix(o, "-f") && len(o) > 2 && slashlessFormat(o[2:]):
				return []string{nameMark}
			case o == "--print-architecture" || o == "--print-foreign-architectures":
				return []string{nameMark}
			case (o == "-L" || o == "--listfiles") && i+1 < len(ops) && !hasMark(ops[i+1]):
				return []string{pkgOpen + "P" + ops[i+1] + pkgClose}
			}
		}
	case "find":
		var out []string
		for _, r := range findRootsOf(ops) {
			out = append(out, r, strings.TrimSuffix(r, "/")+"/"+unknown)
		}
		return out
	case "ls":
		var out []string
		for _, o := range ops {
			if !strings.HasPrefix(o, "-") {
				out = append(out, o, strings.TrimSuffix(o, "/")+"/"+nameMark)
			}
		}
		if len(out) == 0 {
			out = []string{nameMark} // names in the working directory
		}
		return out
	case "echo":
		if len(args) == 2 && !strings.HasPrefix(args[1].Lit(), "-") {
			return ops // one line per value
		}
	}
	return []string{unknown}
}

// slashlessFormat: a dpkg-query format whose fields never hold a '/'
// (versions, architectures, package names, states).
func slashlessFormat(f string) bool {
	if hasMark(f) || strings.Contains(f, "/") {
		return false
	}
	for {
		i := strings.Index(f, "${")
		if i < 0 {
			return true
		}
		j := strings.IndexByte(f[i:], '}')
		if j < 0 {
			return false
		}
		field, _, _ := strings.Cut(f[i+2:i+j], ";") // ${Package;-20}
		switch field {
		case "Package", "binary:Package", "Version", "Architecture", "Status", "db:Status-Abbrev",
			"db:Status-Want", "db:Status-Status", "db:Status-Eflag", "Source", "source:Package",
			"source:Version", "Essential", "Priority", "Multi-Arch", "Installed-Size":
		default:
			return false
		}
		f = f[i+j+1:]
	}
}

// findRootsOf: find's starting points in its expanded arguments.
func findRootsOf(ops []string) []string {
	var roots []string
	for _, o := range ops {
		if o == "-H" || o == "-L" || o == "-P" {
			continue
		}
		if strings.HasPrefix(o, "-") || o == "(" || o == "!" {
			break
		}
		roots = append(roots, o)
	}
	if len(roots) == 0 {
		roots = []string{"."}
	}
	return roots
}

// sedSubst applies sed s/A/B/[g] with literal A and B to known lines.
func (s *scanner) sedSubst(in []string, args []*syntax.Word, c *ctx) []string {
	var scripts []string
	for _, w := range args {
		fs := s.fields(w, c)
		switch {
		case len(fs) == 1 && fs[0] == "-e":
			continue
		case len(fs) == 1 && strings.HasPrefix(fs[0], "-"), scripts != nil:
			return []string{unknown} // an option or a file operand
		}
		scripts = fs
	}
	var out []string
	for _, script := range scripts {
		if len(script) < 4 || script[0] != 's' || hasMark(script) {
			return []string{unknown}
		}
		d := script[1:2]
		f := strings.Split(script[2:], d)
		if len(f) != 3 || f[2] != "" && f[2] != "g" || f[0] == "" || strings.ContainsAny(f[0], `.*[]^$\&`) || strings.ContainsAny(f[1], `\&`) {
			return []string{unknown}
		}
		for _, v := range in {
			switch {
			case hasMark(v):
				// a match may straddle the computed part
				out = append(out, unknown)
			case f[2] == "g":
				out = append(out, strings.ReplaceAll(v, f[0], f[1]))
			default:
				out = append(out, strings.Replace(v, f[0], f[1], 1))
			}
		}
	}
	return out
}

// dirName is dirname(1) on an expanded value.
func dirName(v string) string {
	if strings.Contains(v, pkgOpen) {
		return v // a directory of the package's files: still derived from its list
	}
	v = strings.TrimRight(v, "/")
	i := strings.LastIndexByte(v, '/')
	switch {
	case strings.Contains(v[i+1:], unknown):
		return v[:i+1] + unknown // the unknown part may hold more directories
	case i < 0:
		return "."
	case i == 0:
		return "/"
	}
	return v[:i]
}

// mktemp is where mktemp's file is: under -p/--tmpdir, TMPDIR (/tmp),
// or the template's directory.
func mktemp(ops []string) []string {
	dir, tmpl, tflag := "", "", false
	for i := 0; i < len(ops); i++ {
		o := ops[i]
		switch {
		case o == "-p" && i+1 < len(ops):
			dir = ops[i+1]
			i++
		case strings.HasPrefix(o, "--tmpdir="):
			dir = strings.TrimPrefix(o, "--tmpdir=")
		case o == "-t" || o == "--tmpdir":
			tflag = true
		case strings.HasPrefix(o, "-"):
		default:
			tmpl = o
		}
	}
	if dir == "" && (tflag || tmpl == "") {
		dir = "/tmp"
	}
	name := strings.TrimRight(tmpl, "X") + nameMark
	if tmpl == "" {
		name = nameMark
	}
	if dir != "" && !strings.HasPrefix(tmpl, "/") {
		return []string{strings.TrimSuffix(dir, "/") + "/" + name}
	}
	return []string{name}
}
