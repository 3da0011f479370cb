package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/debseal/debseal/pkg/deb"
	"github.com/debseal/debseal/pkg/debfmt"
	"github.com/urfave/cli/v2"
)

func init() { register(inspectCommand) }

type inspectOpts struct {
	JSON   bool
	Files  bool // list the data member's entries
	Hashes bool // SHA-256 and MD5 of every regular file (implies Files)
	Jobs   int  // .debs read at once; 0: GOMAXPROCS
}

const inspectDescription = `Shows what dpkg-deb --info and dpkg-deb --contents show about each FILE.deb:
the format, the control member's files (size, lines, interpreter) and the control
paragraph; with --files, every entry of the data member (mode, owner, size, mtime,
path as dpkg records it, link target); with --hashes, the SHA-256 of every regular
file too. The .deb is read by debseal itself (no dpkg-deb), and only as far as
needed: without --files the data member is not decompressed.

Several FILE arguments are read in parallel (as apt hands them over in batches);
the output keeps the order of the arguments. A file that cannot be read is reported
on stderr and the others are still shown.

With --json, one JSON object per FILE, one per line (JSON Lines), as documented in
docs/json.md ("inspect"):
   {"file", "size", "format", "package", "version", "architecture", "multi_arch",
    "control": {field: value}, "control_member": {"name", "size"},
    "data_member": {"name", "size"}, "control_files": [{"name", "type", "mode",
    "size", "lines", "interpreter"}], "conffiles": [{"path", "remove_on_upgrade"}],
    "md5sums": [{"path", "md5"}] | null, "scripts": {name: {"size", "sha256",
    "text" | "base64"}}, "triggers": [{"directive", "name"}] | null,
    "warnings": [string], "files": [{"path", "type", "mode", "uid", "gid", "user",
    "group", "size", "mtime", "link", "device", "sha256", "md5"}], "error"}

`

func inspectCommand() *cli.Command {
	return &cli.Command{
		Name:        "inspect",
		Usage:       "show what a .deb contains (like dpkg-deb --info and --contents, with hashes)",
		ArgsUsage:   "FILE.deb...",
		Description: inspectDescription + exitHelp("inspect"),
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "json", Usage: "one JSON object per file, one per line (docs/json.md, \"inspect\")"},
			&cli.BoolFlag{Name: "files", Usage: "list the files of the data member (like dpkg-deb --contents)"},
			&cli.BoolFlag{Name: "hashes", Usage: "with the SHA-256 (and, in JSON, MD5) of every regular file; implies --files"},
			&cli.IntFlag{Name: "jobs", Usage: "read at most `N` files at once", DefaultText: "the number of CPUs"},
		},
		Action: func(c *cli.Context) error {
			if c.NArg() == 0 {
				return usagef("inspect: no FILE.deb given (see debseal inspect --help)")
			}
			o := inspectOpts{JSON: c.Bool("json"), Files: c.Bool("files"), Hashes: c.Bool("hashes"), Jobs: c.Int("jobs")}
			return runInspect(c.Context, o, c.Args().Slice(), c.App.Writer)
		},
	}
}

// inspected is one file's result: its rendered output, or an error.
type inspected struct {
	out []byte
	err error
}

func runInspect(ctx context.Context, o inspectOpts, files []string, out io.Writer) error {
	if o.Hashes {
		o.Files = true
	}
	jobs := o.Jobs
	if jobs <= 0 {
		jobs = runtime.GOMAXPROCS(0)
	}
	jobs = min(jobs, len(files))
	// The cores go to files first; what is left decodes the blocks of one
	// file's xz member in parallel.
	opt := deb.Options{Hashes: o.Hashes, Concurrency: max(1, runtime.GOMAXPROCS(0)/jobs)}

	results := make([]chan inspected, len(files))
	for i := range results {
		results[i] = make(chan inspected, 1)
	}
	work := make(chan int)
	var wg sync.WaitGroup
	for range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				var r inspected
				if err := ctx.Err(); err != nil {
					r.err = err
				} else {
					r.out, r.err = inspectFile(ctx, o, opt, files[i], len(files) > 1)
				}
				results[i] <- r
			}
		}()
	}
	go func() {
		defer close(work)
		for i := range files {
			select {
			case work <- i:
			case <-ctx.Done():
				for ; i < len(files); i++ {
					results[i] <- inspected{err: ctx.Err()}
				}
				return
			}
		}
	}()
	defer wg.Wait()

	// Print in argument order as results come in.
	var errs []error
	for i := range files {
		r := <-results[i]
		if r.err != nil {
			errs = append(errs, r.err)
			if ctx.Err() != nil {
				break
			}
		}
		if len(r.out) > 0 {
			if _, err := out.Write(r.out); err != nil {
				return err
			}
		}
	}
	return errors.Join(errs...)
}

// inspectFile reads one .deb and renders it. In JSON mode a failure is
// also rendered, as an object with "error".
func inspectFile(ctx context.Context, o inspectOpts, opt deb.Options, path string, several bool) ([]byte, error) {
	var buf bytes.Buffer
	j, err := inspectRead(ctx, o, opt, path)
	if o.JSON {
		var v any = j
		if err != nil {
			v = inspectErrorJSON{File: path, Error: err.Error()}
		}
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if jerr := enc.Encode(v); jerr != nil {
			return nil, jerr
		}
		return buf.Bytes(), err
	}
	if err != nil {
		return nil, err
	}
	if several {
		fmt.Fprintf(&buf, "==> %s <==\n", path)
	}
	inspectRender(&buf, j, o)
	if several {
		buf.WriteByte('\n')
	}
	return buf.Bytes(), nil
}

// The JSON document (docs/json.md, "inspect"). The text output is
// rendered from it too, so both show the same facts.
type inspectJSON struct {
	File          string                       `json:"file"`
	Size          int64                        `json:"size,omitempty"`
	Format        string                       `json:"format,omitempty"`
	Package       string                       `json:"package,omitempty"`
	Version       string                       `json:"version,omitempty"`
	Architecture  string                       `json:"architecture,omitempty"`
	MultiArch     string                       `json:"multi_arch,omitempty"`
	Control       map[string]string            `json:"control,omitempty"`
	ControlMember *inspectMemberJSON           `json:"control_member,omitempty"`
	DataMember    *inspectMemberJSON           `json:"data_member,omitempty"`
	ControlFiles  []inspectControlFileJSON     `json:"control_files,omitempty"`
	Conffiles     *[]inspectConffileJSON       `json:"conffiles,omitempty"`
	MD5Sums       *[]inspectMD5SumJSON         `json:"md5sums"`
	Scripts       map[string]inspectScriptJSON `json:"scripts"`
	Triggers      *[]inspectTriggerJSON        `json:"triggers"`
	Warnings      []string                     `json:"warnings,omitempty"`
	Files         *[]inspectFileJSON           `json:"files,omitempty"`

	fields []string // control field names in file order, for the text output
}

// inspectErrorJSON stands for a file that could not be read.
type inspectErrorJSON struct {
	File  string `json:"file"`
	Error string `json:"error"`
}

type inspectMemberJSON struct {
	Name string `json:"name"`
	Size int64  `json:"size"`
}

type inspectControlFileJSON struct {
	Name        string `json:"name"`
	Type        string `json:"type"`
	Mode        string `json:"mode"`
	Size        int64  `json:"size"`
	Lines       int    `json:"lines"`
	Interpreter string `json:"interpreter,omitempty"`
}

type inspectConffileJSON struct {
	Path            string `json:"path"`
	RemoveOnUpgrade bool   `json:"remove_on_upgrade"`
}

type inspectMD5SumJSON struct {
	Path string `json:"path"`
	MD5  string `json:"md5"`
}

type inspectScriptJSON struct {
	Size   int    `json:"size"`
	SHA256 string `json:"sha256"`
	Text   string `json:"text,omitempty"`   // the script, when it is valid UTF-8
	Base64 string `json:"base64,omitempty"` // otherwise
}

type inspectTriggerJSON struct {
	Directive string `json:"directive"`
	Name      string `json:"name"`
}

type inspectFileJSON struct {
	Path   string `json:"path"`
	Type   string `json:"type"`
	Mode   string `json:"mode"`
	UID    int    `json:"uid"`
	GID    int    `json:"gid"`
	User   string `json:"user"`
	Group  string `json:"group"`
	Size   int64  `json:"size"`
	Mtime  string `json:"mtime"`
	Link   string `json:"link,omitempty"`
	Device string `json:"device,omitempty"` // "c 1,3", "b 8,0" or "p" for TypeOther
	SHA256 string `json:"sha256,omitempty"`
	MD5    string `json:"md5,omitempty"`
}

func inspectRead(ctx context.Context, o inspectOpts, opt deb.Options, path string) (*inspectJSON, error) {
	f, err := deb.OpenFile(path) // a FIFO or a device is refused, never read
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	j := &inspectJSON{File: path, Size: st.Size()}
	var info *deb.Info
	if o.Files {
		files := []inspectFileJSON{}
		info, err = deb.Walk(f, path, opt, func(e *deb.Entry) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			files = append(files, inspectEntry(e))
			return nil
		})
		j.Files = &files
	} else {
		info, err = deb.ReadInfoOptions(f, path, opt)
	}
	if err != nil {
		return nil, err
	}
	j.Format, j.Package, j.Version, j.Architecture, j.MultiArch = info.Format, info.Package, info.Version, info.Architecture, info.MultiArch
	j.Control = map[string]string{}
	for _, fl := range info.Control.Fields {
		j.Control[fl.Name] = fl.Value
		j.fields = append(j.fields, fl.Name)
	}
	j.ControlMember = &inspectMemberJSON{info.ControlMember, info.ControlSize}
	j.DataMember = &inspectMemberJSON{info.DataMember, info.DataSize}
	for _, ce := range info.ControlEntries {
		j.ControlFiles = append(j.ControlFiles, inspectControlFileJSON{Name: ce.Name, Type: ce.Type.String(), Mode: inspectOctalMode(ce.Mode), Size: ce.Size, Lines: ce.Lines, Interpreter: ce.Interpreter})
	}
	conffiles := []inspectConffileJSON{}
	for _, c := range info.Conffiles {
		conffiles = append(conffiles, inspectConffileJSON{c.Path, c.RemoveOnUpgrade})
	}
	j.Conffiles = &conffiles
	if info.MD5Sums != nil {
		sums := make([]inspectMD5SumJSON, 0, len(info.MD5Sums))
		for _, s := range info.MD5Sums {
			sums = append(sums, inspectMD5SumJSON{s.Path, hex.EncodeToString(s.MD5[:])})
		}
		j.MD5Sums = &sums
	}
	j.Scripts = map[string]inspectScriptJSON{}
	for name, b := range info.Scripts {
		sum := sha256.Sum256(b)
		s := inspectScriptJSON{Size: len(b), SHA256: hex.EncodeToString(sum[:])}
		if utf8.Valid(b) {
			s.Text = string(b)
		} else {
			s.Base64 = base64.StdEncoding.EncodeToString(b)
		}
		j.Scripts[name] = s
	}
	if info.Triggers != nil {
		ts := make([]inspectTriggerJSON, 0, len(info.Triggers))
		for _, t := range info.Triggers {
			ts = append(ts, inspectTriggerJSON{t.Directive, t.Name})
		}
		j.Triggers = &ts
	}
	for _, w := range info.Warnings {
		j.Warnings = append(j.Warnings, w.Error())
	}
	return j, nil
}

func inspectEntry(e *deb.Entry) inspectFileJSON {
	f := inspectFileJSON{
		Path: e.Path, Type: e.Type.String(), Mode: inspectOctalMode(e.Mode), UID: e.Uid, GID: e.Gid,
		User: e.Uname, Group: e.Gname, Size: e.Size, Mtime: e.ModTime.UTC().Format("2006-01-02T15:04:05Z"),
		Link: e.Linkname,
	}
	if e.Type == deb.TypeOther {
		switch e.Typeflag {
		case '3':
			f.Device = fmt.Sprintf("c %d,%d", e.Devmajor, e.Devminor)
		case '4':
			f.Device = fmt.Sprintf("b %d,%d", e.Devmajor, e.Devminor)
		default:
			f.Device = "p"
		}
	}
	if e.Hashed {
		f.SHA256 = hex.EncodeToString(e.SHA256[:])
		f.MD5 = hex.EncodeToString(e.MD5[:])
	}
	return f
}

// inspectOctalMode renders permission bits the way chmod takes them: "0755",
// "4755" with setuid.
func inspectOctalMode(m fs.FileMode) string {
	return fmt.Sprintf("%04o", debfmt.UnixMode(m))
}

// inspectLsMode renders a mode as ls and tar -tv do ("-rwsr-xr-x").
func inspectLsMode(typ, mode string) string {
	var v uint32
	fmt.Sscanf(mode, "%o", &v)
	b := []byte("?rwxrwxrwx")
	switch typ {
	case "file":
		b[0] = '-'
	case "dir":
		b[0] = 'd'
	case "symlink":
		b[0] = 'l'
	case "hardlink":
		b[0] = 'h'
	}
	for i := 0; i < 9; i++ {
		if v&(1<<(8-i)) == 0 {
			b[i+1] = '-'
		}
	}
	special := func(bit uint32, pos int, set, unset byte) {
		if v&bit != 0 {
			if b[pos] == '-' {
				b[pos] = unset
			} else {
				b[pos] = set
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

// inspectRender writes what dpkg-deb --info (and --contents) would, plus
// hashes.
func inspectRender(w *bytes.Buffer, j *inspectJSON, o inspectOpts) {
	major, minor, _ := strings.Cut(j.Format, ".")
	fmt.Fprintf(w, " new Debian package, version %s.%s.\n", major, minor)
	fmt.Fprintf(w, " size %d bytes: control archive=%d bytes.\n", j.Size, j.ControlMember.Size)
	for _, c := range j.ControlFiles {
		exec := ' '
		if c.Type == "file" && strings.ContainsAny(c.Mode[1:], "1357") {
			exec = '*'
		}
		interp := ""
		if c.Interpreter != "" {
			interp = "#!" + c.Interpreter
		}
		fmt.Fprintf(w, " %7d bytes, %5d lines   %c  %-20s %s\n", c.Size, c.Lines, exec, c.Name, interp)
	}
	for _, name := range j.fields {
		v := j.Control[name]
		sep := " "
		if strings.HasPrefix(v, "\n") {
			sep = ""
		}
		fmt.Fprintf(w, " %s:%s%s\n", name, sep, strings.ReplaceAll(v, "\n", "\n  "))
	}
	for _, warn := range j.Warnings {
		fmt.Fprintf(w, " warning: %s\n", warn)
	}
	if j.Files == nil {
		return
	}
	for _, f := range *j.Files {
		if o.Hashes {
			h := f.SHA256
			if h == "" {
				h = strings.Repeat("-", 64)
			}
			fmt.Fprintf(w, "%s  ", h)
		}
		size := fmt.Sprint(f.Size)
		if f.Device != "" && f.Device != "p" {
			size = f.Device[2:]
		}
		mode := inspectLsMode(f.Type, f.Mode)
		if f.Device != "" {
			mode = f.Device[:1] + mode[1:]
		}
		user, group := f.User, f.Group
		if user == "" {
			user = fmt.Sprint(f.UID)
		}
		if group == "" {
			group = fmt.Sprint(f.GID)
		}
		fmt.Fprintf(w, "%s %s/%s %9s %s %s", mode, user, group, size, strings.Replace(f.Mtime[:16], "T", " ", 1), f.Path)
		switch f.Type {
		case "symlink":
			fmt.Fprintf(w, " -> %s", f.Link)
		case "hardlink":
			fmt.Fprintf(w, " link to %s", f.Link)
		}
		w.WriteByte('\n')
	}
}
