package mscript

import (
	"fmt"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// scanner holds one scan: the events the walk collects, the values the
// fixpoint gives variables, and the result being built.
type scanner struct {
	name       string
	bash       bool
	braces     int // brace expansions being expanded inside each other
	substDepth int // command substitutions being expanded inside each other

	assigns []assignEv
	cmds    []cmdEv
	redirs  []redirEv
	cds     []cmdEv
	funcs   map[string]*fnInfo
	topArgs []*syntax.Word // set -- at the top level
	topSet  bool

	vars        map[string]*valSet
	fieldCache  map[fieldKey][]string     // once solved
	bound       map[string]string         // variables with one value while a word expands
	wordNames   map[*syntax.Word][]string // the variables each word names
	work        int
	computedCmd bool // a command name is computed: it may call any function
	solving     bool // lookups of what has no value yet give nothing, not unknown

	res                                      Result
	paths, prefixes, triggers, statoverrides map[string]bool
	sources, packages, truenames, globs      map[string]bool
	cwds                                     []string
}

// ctx is where a node sits: its enclosing function ("" at the top
// level), the text positions refer to, and how deep it is.
type ctx struct {
	fn    string
	src   []byte
	depth int
	nest  int       // eval / sh -c strings around it
	loops *loopBind // for loops around it whose variable the body does not assign
}

// loopBind: inside "for name in items", name takes only the items'
// values (the body does not assign it).
type loopBind struct {
	name  string
	items []*syntax.Word
	ctx   *ctx
	next  *loopBind
}

func (c *ctx) child() *ctx {
	cc := *c
	cc.depth++
	return &cc
}

// assignEv is a variable assignment: word is its value, list a for
// loop's words (split into fields); neither means an unknown value
// (read, getopts, an array).
type assignEv struct {
	name string
	ctx  *ctx
	word *syntax.Word
	list []*syntax.Word
	for_ bool
	// read: from is the statement whose input a read takes (a pipe's
	// left side, or the statement with a here-document); idx and n are
	// the variable's position among read's names.
	read    bool
	from    *syntax.Stmt
	idx, n  int
	settled bool // a literal value: applied once
}

type cmdEv struct {
	call  *syntax.CallExpr
	ctx   *ctx
	stdin *syntax.Stmt // the statement whose output feeds this one (pipelines)
}

type redirEv struct {
	r    *syntax.Redirect
	ctx  *ctx
	stmt *syntax.Stmt
}

// fnInfo is a shell function: the values its positional parameters take
// at its call sites.
type fnInfo struct {
	called bool
	shifty bool // shift, set --, or a call whose arguments split: positions are unknown
	args   []*valSet
	all    *valSet
}

func newScanner(name string) *scanner {
	return &scanner{
		name: name, funcs: map[string]*fnInfo{}, vars: map[string]*valSet{},
		paths: map[string]bool{}, prefixes: map[string]bool{}, triggers: map[string]bool{},
		statoverrides: map[string]bool{}, sources: map[string]bool{}, packages: map[string]bool{}, truenames: map[string]bool{}, globs: map[string]bool{},
	}
}

func (s *scanner) fn(name string) *fnInfo {
	f := s.funcs[name]
	if f == nil {
		f = &fnInfo{all: &valSet{}}
		s.funcs[name] = f
	}
	return f
}

// where names a node for an Escalate reason: the script, the line, the
// text.
func (s *scanner) where(c *ctx, n syntax.Node) string {
	text := ""
	start, end := n.Pos().Offset(), n.End().Offset()
	if start <= end && int(end) <= len(c.src) {
		text = string(c.src[start:end])
	}
	if len(text) > 80 {
		text = text[:77] + "..."
	}
	if c.nest > 0 {
		return fmt.Sprintf("%s: in a string run as a script: %q", s.name, text)
	}
	return fmt.Sprintf("%s: line %d: %q", s.name, n.Pos().Line(), text)
}

func (s *scanner) walkStmts(stmts []*syntax.Stmt, c *ctx) {
	for _, st := range stmts {
		s.walkStmt(st, c, nil)
	}
}

// walkStmt collects a statement's events. stdin is the statement
// feeding it through a pipe, if any.
func (s *scanner) walkStmt(st *syntax.Stmt, c *ctx, stdin *syntax.Stmt) {
	if st == nil {
		return
	}
	if c.depth > maxDepth {
		s.escalate(s.where(c, st) + ": nested too deeply to analyse")
		return
	}
	c = c.child()
	for _, r := range st.Redirs {
		switch r.Op {
		case syntax.Hdoc, syntax.DashHdoc, syntax.WordHdoc, syntax.RdrIn:
			stdin = st // what reads standard input inside reads this
		}
		s.redirs = append(s.redirs, redirEv{r: r, ctx: c, stmt: st})
		s.substs(r.Word, c)
		s.substs(r.Hdoc, c)
		if r.Hdoc != nil {
			s.heredoc(r, st, c)
		}
	}
	switch x := st.Cmd.(type) {
	case nil:
	case *syntax.CallExpr:
		s.call(x, c, stdin)
	case *syntax.IfClause:
		for ; x != nil; x = x.Else {
			for _, cs := range x.Cond {
				s.walkStmt(cs, c, stdin)
			}
			s.walkStmts(x.Then, c)
		}
	case *syntax.WhileClause:
		for _, cs := range x.Cond {
			s.walkStmt(cs, c, stdin)
		}
		for _, cs := range x.Do {
			s.walkStmt(cs, c, stdin)
		}
	case *syntax.ForClause:
		if wi, ok := x.Loop.(*syntax.WordIter); ok && wi.Name != nil {
			for _, w := range wi.Items {
				s.substs(w, c)
			}
			ev := assignEv{name: wi.Name.Value, ctx: c, list: wi.Items, for_: true}
			if !wi.InPos.IsValid() { // for x; do: the positional parameters
				ev.list = []*syntax.Word{{Parts: []syntax.WordPart{&syntax.DblQuoted{Parts: []syntax.WordPart{&syntax.ParamExp{Param: &syntax.Lit{Value: "@"}}}}}}}
			}
			s.assigns = append(s.assigns, ev)
			if !assigns(x.Do, ev.name) {
				body := c.child()
				body.loops = &loopBind{name: ev.name, items: ev.list, ctx: c, next: c.loops}
				s.walkStmts(x.Do, body)
				return
			}
		} else {
			s.substs(x.Loop, c)
		}
		s.walkStmts(x.Do, c)
	case *syntax.CaseClause:
		s.substs(x.Word, c)
		for _, it := range x.Items {
			for _, p := range it.Patterns {
				s.substs(p, c)
			}
			s.walkStmts(it.Stmts, c)
		}
	case *syntax.Block:
		for _, cs := range x.Stmts {
			s.walkStmt(cs, c, stdin)
		}
	case *syntax.Subshell:
		for _, cs := range x.Stmts {
			s.walkStmt(cs, c, stdin)
		}
	case *syntax.BinaryCmd:
		s.walkStmt(x.X, c, stdin)
		if x.Op == syntax.Pipe || x.Op == syntax.PipeAll {
			s.walkStmt(x.Y, c, x.X)
		} else {
			s.walkStmt(x.Y, c, stdin)
		}
	case *syntax.FuncDecl:
		name := "()" // anonymous (zsh): nothing calls it by name
		if x.Name != nil {
			name = x.Name.Value
		}
		s.fn(name)
		fc := &ctx{fn: name, src: c.src, depth: c.depth, nest: c.nest}
		s.walkStmt(x.Body, fc, nil)
	case *syntax.DeclClause:
		for _, a := range x.Args {
			s.substs(a.Value, c)
			s.substs(a.Array, c)
			if a.Name == nil {
				continue
			}
			switch {
			case a.Array != nil:
				s.assigns = append(s.assigns, assignEv{name: a.Name.Value, ctx: c})
			case !a.Naked:
				s.assigns = append(s.assigns, assignEv{name: a.Name.Value, ctx: c, word: wordOrEmpty(a.Value)})
			}
		}
	case *syntax.TimeClause:
		s.walkStmt(x.Stmt, c, stdin)
	case *syntax.CoprocClause:
		s.walkStmt(x.Stmt, c, nil)
	case *syntax.TestDecl:
		s.walkStmt(x.Body, c, nil)
	default: // ArithmCmd, TestClause, LetClause: only substitutions run commands
		s.substs(x, c)
	}
}

// assigns: some statement in stmts may set name.
func assigns(stmts []*syntax.Stmt, name string) bool {
	found := false
	for _, st := range stmts {
		syntax.Walk(st, func(n syntax.Node) bool {
			switch x := n.(type) {
			case *syntax.Assign:
				found = found || x.Name != nil && x.Name.Value == name
			case *syntax.WordIter:
				found = found || x.Name.Value == name
			case *syntax.CallExpr:
				for _, a := range x.Args {
					// read NAME, eval, and the like
					found = found || a.Lit() == name || a.Lit() == "eval"
				}
			}
			return !found
		})
	}
	return found
}

func wordOrEmpty(w *syntax.Word) *syntax.Word {
	if w == nil {
		return &syntax.Word{}
	}
	return w
}

// substs walks the command substitutions inside a node (their commands
// run) and records ${V:=lit} assignments.
func (s *scanner) substs(n syntax.Node, c *ctx) {
	if n == nil {
		return
	}
	switch w := n.(type) {
	case *syntax.Word:
		if w == nil {
			return
		}
	case *syntax.ArrayExpr:
		if w == nil {
			return
		}
	}
	syntax.Walk(n, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.CmdSubst:
			s.walkStmts(x.Stmts, c.child())
			return false
		case *syntax.ProcSubst:
			s.walkStmts(x.Stmts, c.child())
			return false
		case *syntax.ParamExp:
			if x.Exp != nil && x.Param != nil && (x.Exp.Op == syntax.AssignUnset || x.Exp.Op == syntax.AssignUnsetOrNull) {
				s.assigns = append(s.assigns, assignEv{name: x.Param.Value, ctx: c, word: wordOrEmpty(x.Exp.Word)})
			}
		}
		return true
	})
}

// call collects a simple command: assignments, the words' substitutions,
// and the command itself for the analysis once values are known.
func (s *scanner) call(x *syntax.CallExpr, c *ctx, stdin *syntax.Stmt) {
	for _, a := range x.Assigns {
		s.substs(a.Value, c)
		s.substs(a.Array, c)
		if a.Name == nil {
			continue
		}
		if a.Array != nil || a.Index != nil {
			s.assigns = append(s.assigns, assignEv{name: a.Name.Value, ctx: c})
			continue
		}
		if a.Append {
			// V+=x: every value of V followed by x.
			w := &syntax.Word{Parts: append([]syntax.WordPart{&syntax.DblQuoted{Parts: []syntax.WordPart{&syntax.ParamExp{Param: a.Name}}}}, wordOrEmpty(a.Value).Parts...)}
			s.assigns = append(s.assigns, assignEv{name: a.Name.Value, ctx: c, word: w})
			continue
		}
		s.assigns = append(s.assigns, assignEv{name: a.Name.Value, ctx: c, word: wordOrEmpty(a.Value)})
	}
	for _, w := range x.Args {
		s.substs(w, c)
	}
	if len(x.Args) == 0 {
		return
	}
	s.cmds = append(s.cmds, cmdEv{call: x, ctx: c, stdin: stdin})
	if x.Args[0].Lit() == "" {
		s.computedCmd = true
	}
	args := stripWrappers(x.Args)
	if len(args) == 0 {
		return
	}
	switch args[0].Lit() {
	case "local", "export", "readonly", "declare", "typeset":
		// POSIX grammar: declarations are plain commands.
		for _, w := range args[1:] {
			if name, val, ok := splitAssign(w); ok {
				s.assigns = append(s.assigns, assignEv{name: name, ctx: c, word: val})
			}
		}
	case "read":
		var names []string
		for i := 1; i < len(args); i++ {
			switch l := args[i].Lit(); {
			case l == "-p" || l == "-d" || l == "-t" || l == "-n" || l == "-N" || l == "-u" || l == "-a":
				i++ // an option's value
			case isName(l):
				names = append(names, l)
			}
		}
		for i, n := range names {
			s.assigns = append(s.assigns, assignEv{name: n, ctx: c, read: true, from: stdin, idx: i, n: len(names)})
		}
	case "getopts", "mapfile", "readarray", "select":
		for _, w := range args[1:] {
			if l := w.Lit(); isName(l) {
				s.assigns = append(s.assigns, assignEv{name: l, ctx: c})
			}
		}
	case "shift":
		s.fn(c.fn).shifty = true
	case "set":
		for i, w := range args[1:] {
			if w.Lit() == "--" {
				s.fn(c.fn).shifty = true
				if c.fn == "" {
					s.topSet = true
					s.topArgs = append(s.topArgs, args[i+2:]...)
				}
				break
			}
		}
	case "cd", "pushd":
		s.cds = append(s.cds, cmdEv{call: x, ctx: c})
	case "eval":
		s.evalArgs(x, args[1:], c)
	case "trap":
		if len(args) > 1 {
			s.evalArgs(x, args[1:2], c)
		}
	case "sh", "bash", "dash", "su", "runuser":
		for i, w := range args {
			if w.Lit() == "-c" && i+1 < len(args) {
				s.evalArgs(x, args[i+1:i+2], c)
				break
			}
		}
	}
}

// evalArgs parses words run as shell code (eval, sh -c, trap). A literal
// string is walked like the script; a computed one escalates, except
// eval "$(apt-config shell VAR KEY …)", which only sets VARs.
func (s *scanner) evalArgs(x *syntax.CallExpr, ws []*syntax.Word, c *ctx) {
	var code strings.Builder
	for i, w := range ws {
		lit, ok := literalString(w)
		if !ok {
			if vars, ok := aptConfigShell(w); ok {
				for _, v := range vars {
					s.assigns = append(s.assigns, assignEv{name: v, ctx: c})
				}
				continue
			}
			if lit, ok = template(w, c.src); !ok {
				s.escalate(s.where(c, x) + ": runs a computed string as shell code")
				return
			}
		}
		if i > 0 {
			code.WriteByte(' ')
		}
		code.WriteString(lit)
	}
	if code.Len() == 0 {
		return
	}
	if c.nest >= maxEvalNest {
		s.escalate(s.where(c, x) + ": shell code nested too deeply to analyse")
		return
	}
	src := []byte(code.String())
	f, err := parse(src, s.bash)
	if err != nil {
		s.escalate(fmt.Sprintf("%s: shell code does not parse: %v", s.where(c, x), err))
		return
	}
	nc := c.child()
	nc.src, nc.nest = src, c.nest+1
	s.walkStmts(f.Stmts, nc)
}

// template is the code of a string with parameter expansions run as
// shell code ("rm -rf $tmp"): its text, parsed, expands the same
// parameters. Values holding shell syntax would parse differently; a
// computed command in them is analysed as a computed command.
func template(w *syntax.Word, src []byte) (string, bool) {
	parts := w.Parts
	quoted := false
	if len(parts) == 1 {
		if dq, ok := parts[0].(*syntax.DblQuoted); ok && !dq.Dollar {
			parts, quoted = dq.Parts, true
		}
	}
	if len(parts) == 0 {
		return "", true
	}
	for _, p := range parts {
		switch x := p.(type) {
		case *syntax.Lit:
		case *syntax.SglQuoted:
			if quoted {
				return "", false
			}
		case *syntax.ParamExp:
			if x.Exp != nil || x.Repl != nil || x.Slice != nil {
				return "", false
			}
		default:
			return "", false
		}
	}
	start, end := parts[0].Pos().Offset(), parts[len(parts)-1].End().Offset()
	if start > end || int(end) > len(src) {
		return "", false
	}
	code := string(src[start:end])
	if quoted {
		code = unescape(code, true)
	}
	return code, true
}

// aptConfigShell recognises $(apt-config shell VAR Key …) and returns
// the VARs it sets.
func aptConfigShell(w *syntax.Word) ([]string, bool) {
	parts := w.Parts
	if len(parts) == 1 {
		if dq, ok := parts[0].(*syntax.DblQuoted); ok {
			parts = dq.Parts
		}
	}
	if len(parts) != 1 {
		return nil, false
	}
	cs, ok := parts[0].(*syntax.CmdSubst)
	if !ok || len(cs.Stmts) != 1 {
		return nil, false
	}
	ce, ok := cs.Stmts[0].Cmd.(*syntax.CallExpr)
	if !ok || len(ce.Args) < 4 || ce.Args[0].Lit() != "apt-config" || ce.Args[1].Lit() != "shell" {
		return nil, false
	}
	var vars []string
	for i := 2; i < len(ce.Args); i += 2 {
		v := ce.Args[i].Lit()
		if !isName(v) {
			return nil, false
		}
		vars = append(vars, v)
	}
	return vars, true
}

// heredoc handles a here-document fed to an interpreter: its body is
// the code that runs.
func (s *scanner) heredoc(r *syntax.Redirect, st *syntax.Stmt, c *ctx) {
	ce, ok := st.Cmd.(*syntax.CallExpr)
	if !ok || len(ce.Args) == 0 {
		return
	}
	args := stripWrappers(ce.Args)
	if len(args) == 0 {
		return
	}
	prog := baseName(args[0].Lit())
	switch {
	case isShellName(prog):
		for _, a := range args[1:] {
			if l := a.Lit(); l != "-s" && l != "-e" && l != "-x" && l != "-" && !strings.HasPrefix(l, "-") {
				return // sh FILE: stdin is data
			}
		}
		lit, ok := literalString(r.Hdoc)
		if !ok {
			s.escalate(s.where(c, st) + ": a here-document with expansions run as shell code")
			return
		}
		if c.nest >= maxEvalNest {
			s.escalate(s.where(c, st) + ": shell code nested too deeply to analyse")
			return
		}
		src := []byte(lit)
		f, err := parse(src, s.bash)
		if err != nil {
			s.escalate(fmt.Sprintf("%s: shell code does not parse: %v", s.where(c, st), err))
			return
		}
		nc := c.child()
		nc.src, nc.nest = src, c.nest+1
		s.walkStmts(f.Stmts, nc)
	case isInterpreter(prog):
		lit := rawText(r.Hdoc)
		s.scanLiteral([]byte(lit))
		if strings.Contains(lit, "dpkg-divert") || strings.Contains(lit, "dpkg-statoverride") {
			s.escalate(s.where(c, st) + ": " + prog + " code that calls dpkg-divert or dpkg-statoverride")
		}
		if strings.Contains(lit, "dpkg-trigger") {
			s.res.UnknownTriggers = true
		}
	}
}

func isShellName(p string) bool {
	switch p {
	case "sh", "bash", "dash", "ash", "ksh", "mksh", "posh":
		return true
	}
	return false
}

func isInterpreter(p string) bool {
	return strings.HasPrefix(p, "perl") || strings.HasPrefix(p, "python") || p == "ruby" || p == "awk" || p == "gawk" || p == "mawk" || p == "php"
}

// literalString is a word's value when it has no expansion.
func literalString(w *syntax.Word) (string, bool) {
	if w == nil {
		return "", true
	}
	var b strings.Builder
	var add func(parts []syntax.WordPart, quoted bool) bool
	add = func(parts []syntax.WordPart, quoted bool) bool {
		for _, p := range parts {
			switch x := p.(type) {
			case *syntax.Lit:
				b.WriteString(unescape(x.Value, quoted))
			case *syntax.SglQuoted:
				if x.Dollar {
					return false
				}
				b.WriteString(x.Value)
			case *syntax.DblQuoted:
				if !add(x.Parts, true) {
					return false
				}
			default:
				return false
			}
		}
		return true
	}
	if !add(w.Parts, false) {
		return "", false
	}
	return b.String(), true
}

// rawText is the literal text of a word, expansions left out.
func rawText(w *syntax.Word) string {
	var b strings.Builder
	syntax.Walk(w, func(n syntax.Node) bool {
		switch x := n.(type) {
		case *syntax.Lit:
			b.WriteString(x.Value)
		case *syntax.SglQuoted:
			b.WriteString(x.Value)
		case *syntax.CmdSubst, *syntax.ParamExp:
			b.WriteByte(' ')
			return false
		}
		return true
	})
	return b.String()
}

// splitAssign splits a POSIX-grammar declaration word NAME=value.
func splitAssign(w *syntax.Word) (string, *syntax.Word, bool) {
	if len(w.Parts) == 0 {
		return "", nil, false
	}
	l, ok := w.Parts[0].(*syntax.Lit)
	if !ok {
		return "", nil, false
	}
	name, rest, ok := strings.Cut(l.Value, "=")
	if !ok || !isName(name) {
		return "", nil, false
	}
	parts := append([]syntax.WordPart{&syntax.Lit{Value: rest}}, w.Parts[1:]...)
	return name, &syntax.Word{Parts: parts}, true
}

func isName(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if !(c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

func baseName(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// stripWrappers drops the commands that run their arguments as a command
// (command, exec, env VAR=x, nice -n 5, timeout 10 …) with their options.
func stripWrappers(args []*syntax.Word) []*syntax.Word {
	for len(args) > 0 {
		switch baseName(args[0].Lit()) {
		case "command", "exec", "builtin", "nohup", "setsid", "time", "stdbuf", "eatmydata", "fakeroot", "sudo":
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0].Lit(), "-") {
				args = args[1:]
			}
		case "env":
			args = args[1:]
			for len(args) > 0 && (strings.HasPrefix(args[0].Lit(), "-") || strings.Contains(args[0].Lit(), "=")) {
				args = args[1:]
			}
		case "nice", "ionice":
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0].Lit(), "-") {
				opt := args[0].Lit()
				args = args[1:]
				if (opt == "-n" || opt == "-c") && len(args) > 0 {
					args = args[1:]
				}
			}
		case "timeout", "chrt":
			// their first operand is a duration or a priority
			args = args[1:]
			for len(args) > 0 && strings.HasPrefix(args[0].Lit(), "-") {
				args = args[1:]
			}
			if len(args) > 0 {
				args = args[1:]
			}
		default:
			return args
		}
	}
	return args
}
