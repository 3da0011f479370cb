package seal

import (
	"bytes"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync"
	"syscall"

	"github.com/debseal/debseal/pkg/fsattr"
)

// fakeFS is an in-memory filesystem for planning tests: paths map to
// nodes (two paths to one node is a hard link), directory symlinks are
// prefix rewrites (merged /usr), and every changing ioctl is counted.
type fakeFS struct {
	mu          sync.Mutex
	nodes       map[string]*fakeNode
	dirLinks    map[string]string // "/lib" -> "/usr/lib"
	unsupported map[uint64]bool   // devices without flag support
	noVerity    map[uint64]bool   // devices without fs-verity
	verityOn    int               // files fs-verity was enabled on
	fail        map[string]error  // Set on these paths fails
	sets        int               // ioctls that changed a flag
	gets        int               // files opened for Set/Flags
	nextIno     uint64
	onSet       func(path string) // called before each Set (tests cancel contexts from it)
	clock       int64             // the last ctime given
}

type fakeNode struct {
	info    fsattr.Info
	flags   uint32
	content []byte
	verity  bool
}

func newFakeFS() *fakeFS {
	return &fakeFS{nodes: map[string]*fakeNode{}, dirLinks: map[string]string{}, unsupported: map[uint64]bool{}, noVerity: map[uint64]bool{}, fail: map[string]error{}, nextIno: 100}
}

func (f *fakeFS) add(p string, mode uint32, dev uint64, content string) *fakeNode {
	f.nextIno++
	n := &fakeNode{info: fsattr.Info{Ident: fsattr.Ident{Dev: dev, Ino: f.nextIno}, Mode: mode, Nlink: 1, AttrsKnown: 0x30, Size: int64(len(content))},
		content: []byte(content)}
	f.nodes[p] = n
	return n
}

func (f *fakeFS) file(p, content string) *fakeNode { return f.add(p, 0o100644, 1, content) }
func (f *fakeFS) link(p, existing string)          { f.nodes[p] = f.nodes[existing] }

func (f *fakeFS) resolve(dir string) string {
	for from, to := range f.dirLinks {
		if dir == from || strings.HasPrefix(dir, from+"/") {
			return to + strings.TrimPrefix(dir, from)
		}
	}
	return dir
}

func (f *fakeFS) OpenDir(dir string) (Dir, error) {
	real := f.resolve(dir)
	for p := range f.nodes {
		if real == "/" || strings.HasPrefix(p, real+"/") {
			return &fakeDir{fs: f, dir: real}, nil
		}
	}
	return nil, &fs.PathError{Op: "open", Path: dir, Err: syscall.ENOENT}
}

type fakeDir struct {
	fs  *fakeFS
	dir string
}

func (d *fakeDir) node(name string) (*fakeNode, error) {
	n := d.fs.nodes[path.Join(d.dir, name)]
	if n == nil {
		return nil, &fs.PathError{Op: "statx", Path: path.Join(d.dir, name), Err: syscall.ENOENT}
	}
	return n, nil
}

func (d *fakeDir) Lstat(name string) (fsattr.Info, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return fsattr.Info{}, err
	}
	info := n.info
	info.Attrs = uint64(n.flags & 0x30)
	info.AttrsKnown |= fakeAttrVerity
	if n.verity {
		info.Attrs |= fakeAttrVerity
	}
	if d.fs.unsupported[info.Dev] {
		info.AttrsKnown = 0
	}
	return info, nil
}

const fakeAttrVerity = 0x100000 // STATX_ATTR_VERITY

// EnableVerity is the kernel's FS_IOC_ENABLE_VERITY as far as the engine
// can tell: EPERM on an immutable file, unsupported on a device without
// it, nothing to do on a file that has it.
func (d *fakeDir) EnableVerity(name string, want fsattr.Ident) (bool, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return false, err
	}
	p := path.Join(d.dir, name)
	d.fs.gets++
	switch {
	case !n.info.IsRegular():
		return false, &fs.PathError{Op: "ioctl", Path: p, Err: fsattr.ErrNotRegular}
	case d.fs.noVerity[n.info.Dev] || d.fs.unsupported[n.info.Dev]:
		return false, &fsattr.UnsupportedError{Path: p, FS: "ext4", Err: syscall.EOPNOTSUPP}
	case n.verity:
		return false, nil
	case n.flags&(fsattr.Immutable|0x20) != 0: // immutable or append-only
		return false, &fs.PathError{Op: "ioctl", Path: p, Err: syscall.EPERM}
	}
	n.verity = true
	d.fs.verityOn++
	return true, nil
}

func (d *fakeDir) Set(name string, want fsattr.Ident, flag uint32, on bool) (fsattr.Result, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return fsattr.Result{}, err
	}
	d.fs.gets++
	if d.fs.onSet != nil {
		d.fs.onSet(path.Join(d.dir, name))
	}
	if err := d.fs.fail[path.Join(d.dir, name)]; err != nil {
		if ue, ok := err.(*fsattr.UnsupportedError); ok {
			return fsattr.Result{}, ue
		}
		return fsattr.Result{}, &fs.PathError{Op: "ioctl", Path: path.Join(d.dir, name), Err: err}
	}
	if !n.info.IsRegular() && !n.info.IsDir() {
		return fsattr.Result{}, fsattr.ErrNotRegular
	}
	if !want.IsZero() && want != n.info.Ident {
		return fsattr.Result{}, fsattr.ErrChanged
	}
	if d.fs.unsupported[n.info.Dev] {
		return fsattr.Result{}, &fsattr.UnsupportedError{Path: path.Join(d.dir, name), FS: "vfat", Err: syscall.ENOTTY}
	}
	nv := n.flags &^ flag
	if on {
		nv |= flag
	}
	changed := nv != n.flags
	if changed {
		d.fs.sets++
		n.flags = nv
		d.fs.clock++
		n.info.Ctime = d.fs.clock // as the kernel does on FS_IOC_SETFLAGS
	}
	return fsattr.Result{Changed: changed, Flags: nv, Info: n.info}, nil
}

func (d *fakeDir) Flags(name string, want fsattr.Ident) (uint32, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return 0, err
	}
	return n.flags, nil
}

func (d *fakeDir) Open(name string, want fsattr.Ident) (io.ReadCloser, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(n.content)), nil
}

func (d *fakeDir) Readlink(name string) (string, error) {
	d.fs.mu.Lock()
	defer d.fs.mu.Unlock()
	n, err := d.node(name)
	if err != nil {
		return "", err
	}
	return string(n.content), nil
}

func (d *fakeDir) Close() error { return nil }

func (d *fakeDir) Real() (string, error) { return d.dir, nil }

// admindir writes a minimal dpkg database: status stanzas and lists.
type fakePkg struct {
	name, arch, ma, state string
	want                  string   // "install" when empty
	conffiles             []string // "path md5"
	files                 []string
	md5sums               string
	awaits                string // Triggers-Awaited of a triggers-awaited package
}

func writeAdmindir(dir string, pkgs []fakePkg, diversions string) error {
	var st strings.Builder
	if err := os.MkdirAll(path.Join(dir, "info"), 0o755); err != nil {
		return err
	}
	for _, p := range pkgs {
		arch := p.arch
		if arch == "" {
			arch = "amd64"
		}
		state := p.state
		if state == "" {
			state = "installed"
		}
		want := p.want
		if want == "" {
			want = "install"
		}
		st.WriteString("Package: " + p.name + "\nStatus: " + want + " ok " + state + "\nArchitecture: " + arch + "\nVersion: 1\n")
		if p.ma != "" {
			st.WriteString("Multi-Arch: " + p.ma + "\n")
		}
		// dpkg refuses these states without the fields that explain them.
		switch state {
		case "triggers-pending":
			st.WriteString("Triggers-Pending: fake-trigger\n")
		case "triggers-awaited":
			aw := p.awaits
			if aw == "" {
				aw = "fake-awaiter"
			}
			st.WriteString("Triggers-Awaited: " + aw + "\n")
		}
		if len(p.conffiles) > 0 {
			st.WriteString("Conffiles:\n")
			for _, c := range p.conffiles {
				st.WriteString(" " + c + "\n")
			}
		}
		st.WriteString("\n")
		base := p.name
		if p.ma == "same" {
			base += ":" + arch
		}
		if p.files != nil {
			if err := os.WriteFile(path.Join(dir, "info", base+".list"), []byte(strings.Join(append([]string{"/."}, p.files...), "\n")+"\n"), 0o644); err != nil {
				return err
			}
		}
		if p.md5sums != "" {
			if err := os.WriteFile(path.Join(dir, "info", base+".md5sums"), []byte(p.md5sums), 0o644); err != nil {
				return err
			}
		}
	}
	if err := os.WriteFile(path.Join(dir, "info", "format"), []byte("1\n"), 0o644); err != nil {
		return err
	}
	if diversions != "" {
		if err := os.WriteFile(path.Join(dir, "diversions"), []byte(diversions), 0o644); err != nil {
			return err
		}
	}
	return os.WriteFile(path.Join(dir, "status"), []byte(st.String()), 0o644)
}
