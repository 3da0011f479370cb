package mountinfo

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// fixture parses testdata/name and returns its mounts by mount point,
// below /tmp/debseal-mountinfo for the lines scripts/mkmountinfo.sh made.
func fixture(t *testing.T, name string) map[string]Mount {
	t.Helper()
	ms, err := ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]Mount{}
	for _, m := range ms {
		out[strings.TrimPrefix(m.MountPoint, "/tmp/debseal-mountinfo/")] = m
	}
	return out
}

// TestFixtures checks the fields of real lines, as the kernel printed them
// (testdata/README.md). IDs change with every rebuild of the fixtures, so
// they are checked against each other, not against numbers.
func TestFixtures(t *testing.T) {
	type want struct {
		root, fstype, source string
		anonymous            bool // major 0
		options, optional    []string
		super                []string // a prefix of the superblock options
	}
	tests := []struct {
		file  string
		mount map[string]want
	}{
		{"bind.txt", map[string]want{
			"bind-dir":  {root: "/dir", fstype: "tmpfs", source: "debseal-fixtures", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
			"bind-file": {root: "/file", fstype: "tmpfs", source: "debseal-fixtures", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
		}},
		{"overlay.txt", map[string]want{
			"merged": {root: "/", fstype: "overlay", source: "overlay", anonymous: true, options: []string{"rw", "relatime"},
				super: []string{"rw", "lowerdir=/tmp/debseal-mountinfo/lower", "upperdir=/tmp/debseal-mountinfo/upper", "workdir=/tmp/debseal-mountinfo/work"}},
		}},
		{"tmpfs.txt", map[string]want{
			"with space":       {root: "/", fstype: "tmpfs", source: "a source", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
			"tab\tnl\nbs\\end": {root: "/", fstype: "tmpfs", source: "tmpfs", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
			"empty":            {root: "/", fstype: "tmpfs", source: "", anonymous: true, options: []string{"rw", "relatime"}, optional: []string{"unbindable"}, super: []string{"rw"}},
		}},
		{"fuse.txt", map[string]want{
			"fuse": {root: "/", fstype: "fuse.fusefat", source: "fusefat", anonymous: true, options: []string{"rw", "nosuid", "nodev", "relatime"},
				super: []string{"rw", "user_id=0", "group_id=0"}},
		}},
		{"loop.txt", map[string]want{
			"ext4":        {root: "/", fstype: "ext4", source: "/dev/loop0", options: []string{"rw", "relatime"}, optional: []string{"shared:1"}, super: []string{"rw"}},
			"shared-bind": {root: "/", fstype: "ext4", source: "/dev/loop0", options: []string{"rw", "relatime"}, optional: []string{"master:1"}, super: []string{"rw"}},
			"btrfs":       {root: "/", fstype: "btrfs", source: "/dev/loop1", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
			"subvol":      {root: "/@sub", fstype: "btrfs", source: "/dev/loop1", anonymous: true, options: []string{"rw", "relatime"}, super: []string{"rw"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			got := fixture(t, tt.file)
			if len(got) != len(tt.mount) {
				t.Errorf("%s: %d mounts, want %d", tt.file, len(got), len(tt.mount))
			}
			for mp, w := range tt.mount {
				m, ok := got[mp]
				if !ok {
					t.Errorf("no mount at %q", mp)
					continue
				}
				if m.Root != w.root || m.FSType != w.fstype || m.Source != w.source {
					t.Errorf("%q: root %q, type %q, source %q; want %q, %q, %q", mp, m.Root, m.FSType, m.Source, w.root, w.fstype, w.source)
				}
				if (m.Major == 0) != w.anonymous {
					t.Errorf("%q: device %d:%d, want an anonymous one: %v", mp, m.Major, m.Minor, w.anonymous)
				}
				if !reflect.DeepEqual(m.Options, w.options) || !reflect.DeepEqual(m.Optional, w.optional) {
					t.Errorf("%q: options %q, optional %q; want %q, %q", mp, m.Options, m.Optional, w.options, w.optional)
				}
				if len(m.SuperOptions) < len(w.super) || !reflect.DeepEqual(m.SuperOptions[:len(w.super)], w.super) {
					t.Errorf("%q: superblock options %q, want them to start with %q", mp, m.SuperOptions, w.super)
				}
				if m.ID == m.Parent || m.ID == 0 {
					t.Errorf("%q: mount ID %d, parent %d", mp, m.ID, m.Parent)
				}
			}
		})
	}
	// Every mount of a fixture hangs off the fixtures' tmpfs.
	base := fixture(t, "bind.txt")["bind-dir"].Parent
	for _, f := range []string{"bind.txt", "overlay.txt", "tmpfs.txt", "fuse.txt", "loop.txt"} {
		for mp, m := range fixture(t, f) {
			if m.Parent != base {
				t.Errorf("%s: %q: parent %d, want %d (the fixtures' tmpfs)", f, mp, m.Parent, base)
			}
		}
	}
	loop := fixture(t, "loop.txt")
	if v, ok := loop["subvol"].SuperOption("subvol"); !ok || v != "/@sub" {
		t.Errorf("subvol: SuperOption(subvol) = %q, %v; want /@sub", v, ok)
	}
	if v, ok := loop["btrfs"].SuperOption("subvol"); !ok || v != "/" {
		t.Errorf("btrfs: SuperOption(subvol) = %q, %v; want /", v, ok)
	}
	if _, ok := loop["ext4"].SuperOption("subvol"); ok {
		t.Error("ext4: SuperOption(subvol) found one")
	}
	if loop["ext4"].Major != 7 || loop["ext4"].Major != loop["shared-bind"].Major || loop["ext4"].Minor != loop["shared-bind"].Minor {
		t.Errorf("ext4 %d:%d and its bind %d:%d: want one loop device (major 7)",
			loop["ext4"].Major, loop["ext4"].Minor, loop["shared-bind"].Major, loop["shared-bind"].Minor)
	}
}

// TestHost reads the development machine's own list: every mount point
// is absolute, exactly one is "/" and the API filesystems are there.
func TestHost(t *testing.T) {
	ms, err := ReadFile("testdata/host.txt")
	if err != nil {
		t.Fatal(err)
	}
	byPoint := map[string]Mount{}
	for _, m := range ms {
		byPoint[m.MountPoint] = m
	}
	root, ok := byPoint["/"]
	if !ok || root.FSType != "ext4" || root.Source != "/dev/vda" || root.Major != 254 || root.Root != "/" {
		t.Errorf("/ = %+v, want ext4 from /dev/vda (254:0)", root)
	}
	for mp, fstype := range map[string]string{"/proc": "proc", "/sys": "sysfs", "/dev": "devtmpfs", "/dev/pts": "devpts", "/sys/fs/cgroup/unified": "cgroup2"} {
		if byPoint[mp].FSType != fstype {
			t.Errorf("%s: type %q, want %q", mp, byPoint[mp].FSType, fstype)
		}
	}
	if got := byPoint["/sys/fs/cgroup/cpu"].SuperOptions; !reflect.DeepEqual(got, []string{"rw", "cpu"}) {
		t.Errorf("/sys/fs/cgroup/cpu: superblock options %q", got)
	}
}

// TestSelf reads this process's own mounts.
func TestSelf(t *testing.T) {
	if _, err := os.Stat("/proc/self/mountinfo"); err != nil {
		t.Skipf("no /proc here: %v", err)
	}
	ms, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) == 0 {
		t.Fatal("Self() = no mounts")
	}
	ids := map[int]bool{}
	for _, m := range ms {
		if ids[m.ID] {
			t.Errorf("mount ID %d twice", m.ID)
		}
		ids[m.ID] = true
		if !strings.HasPrefix(m.MountPoint, "/") {
			t.Errorf("mount point %q is not absolute", m.MountPoint)
		}
	}
}

func TestParseLine(t *testing.T) {
	tests := []struct {
		name, line string
		want       Mount
	}{
		{
			name: "no optional fields",
			line: "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard",
			want: Mount{ID: 26, Parent: 1, Major: 254, Root: "/", MountPoint: "/", Options: []string{"rw", "relatime"},
				FSType: "ext4", Source: "/dev/vda", SuperOptions: []string{"rw", "discard"}},
		},
		{
			name: "every optional field",
			line: "36 35 98:0 /mnt1 /mnt2 rw,noatime shared:2 master:1 propagate_from:3 unbindable - ext3 /dev/root rw,errors=continue",
			want: Mount{ID: 36, Parent: 35, Major: 98, Root: "/mnt1", MountPoint: "/mnt2", Options: []string{"rw", "noatime"},
				Optional: []string{"shared:2", "master:1", "propagate_from:3", "unbindable"},
				FSType:   "ext3", Source: "/dev/root", SuperOptions: []string{"rw", "errors=continue"}},
		},
		{
			name: "an escaped comma inside an option value",
			line: "40 26 0:50 / /merged ro - overlay overlay ro,lowerdir=/a\\054b:/c,redirect_dir=on",
			want: Mount{ID: 40, Parent: 26, Minor: 50, Root: "/", MountPoint: "/merged", Options: []string{"ro"},
				FSType: "overlay", Source: "overlay", SuperOptions: []string{"ro", "lowerdir=/a,b:/c", "redirect_dir=on"}},
		},
		{
			name: "a carriage return stays in the path",
			line: "41 26 0:51 / /mnt/x\r rw - tmpfs tmpfs rw",
			want: Mount{ID: 41, Parent: 26, Minor: 51, Root: "/", MountPoint: "/mnt/x\r", Options: []string{"rw"}, FSType: "tmpfs", Source: "tmpfs", SuperOptions: []string{"rw"}},
		},
		{
			name: "a deleted bind source (dentry_path's suffix)",
			line: "42 26 0:52 /gone//deleted /usr/bin/sudo rw - tmpfs tmpfs rw",
			want: Mount{ID: 42, Parent: 26, Minor: 52, Root: "/gone//deleted", MountPoint: "/usr/bin/sudo", Options: []string{"rw"}, FSType: "tmpfs", Source: "tmpfs", SuperOptions: []string{"rw"}},
		},
		{
			name: "a backslash a filesystem left unescaped in its source and options",
			line: "43 26 0:53 / /mnt/share rw - cifs \\\\server\\share rw,domain=A\\B",
			want: Mount{ID: 43, Parent: 26, Minor: 53, Root: "/", MountPoint: "/mnt/share", Options: []string{"rw"}, FSType: "cifs", Source: "\\\\server\\share", SuperOptions: []string{"rw", "domain=A\\B"}},
		},
		{
			name: "a blank a filesystem left unescaped in its options",
			line: "44 26 0:54 / /mnt/y rw - fuse.x x rw,label=a b",
			want: Mount{ID: 44, Parent: 26, Minor: 54, Root: "/", MountPoint: "/mnt/y", Options: []string{"rw"}, FSType: "fuse.x", Source: "x", SuperOptions: []string{"rw", "label=a b"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseLine(tt.line)
			if err != nil {
				t.Fatalf("ParseLine(%q) = %v", tt.line, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseLine(%q) =\n%+v, want\n%+v", tt.line, got, tt.want)
			}
			again, err := ParseLine(got.String())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("ParseLine(String()) = %+v, %v; want %+v", again, err, got)
			}
		})
	}
}

// TestParseErrors: a malformed line is an error that names the file and
// the line, and matches ErrMalformed; never a panic, never a partial list.
func TestParseErrors(t *testing.T) {
	good := "26 1 254:0 / / rw,relatime - ext4 /dev/vda rw\n"
	tests := []struct {
		name, line, msg string
	}{
		{"empty line", "", "want \"ID PARENT"},
		{"no separator", "26 1 254:0 / / rw,relatime ext4 /dev/vda rw", "want \"ID PARENT"},
		{"too few fields after the separator", "26 1 254:0 / / rw - ext4 /dev/vda", "want \"ID PARENT"},
		{"too few fields before it", "26 1 254:0 / - ext4 /dev/vda rw", "want \"ID PARENT"},
		{"mount ID not a number", "x 1 254:0 / / rw - ext4 /dev/vda rw", `mount ID: "x" is not a number`},
		{"negative parent", "26 -1 254:0 / / rw - ext4 /dev/vda rw", `parent ID: "-1" is not a number`},
		{"mount ID too big", "2147483648 1 254:0 / / rw - ext4 /dev/vda rw", "mount ID"},
		{"no colon in the device", "26 1 2540 / / rw - ext4 /dev/vda rw", "major:minor"},
		{"minor not a number", "26 1 254:x / / rw - ext4 /dev/vda rw", "major:minor"},
		{"relative root", "26 1 254:0 x / rw - ext4 /dev/vda rw", `root: "x" is not absolute`},
		{"relative mount point", "26 1 254:0 / mnt rw - ext4 /dev/vda rw", `mount point: "mnt" is not absolute`},
		{"bad escape in the mount point", "26 1 254:0 / /a\\9 rw - ext4 /dev/vda rw", `mount point: bad escape "\\9"`},
		{"truncated escape", "26 1 254:0 / /a\\04 rw - ext4 /dev/vda rw", "bad escape"},
		{"escape over 0377", "26 1 254:0 / /a\\400 rw - ext4 /dev/vda rw", "bad escape"},
		{"options without rw or ro", "26 1 254:0 / / relatime - ext4 /dev/vda rw", "mount options"},
		{"an empty mount option", "26 1 254:0 / / rw,,relatime - ext4 /dev/vda rw", "mount options: an empty option"},
		{"superblock options without rw or ro", "26 1 254:0 / / rw - ext4 /dev/vda discard", "superblock options"},
		{"two spaces among optional fields", "26 1 254:0 / / rw  shared:1 - ext4 /dev/vda rw", "optional fields"},
		{"empty type", "26 1 254:0 / / rw -  /dev/vda rw", "filesystem type: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := good + good + tt.line + "\n" + good
			ms, err := Parse(strings.NewReader(in), "mi")
			var pe *ParseError
			if !errors.As(err, &pe) || pe.Line != 3 || pe.Name != "mi" || !errors.Is(err, ErrMalformed) {
				t.Fatalf("Parse(%q) = %v, want a *ParseError on line 3", tt.line, err)
			}
			if !strings.HasPrefix(err.Error(), "mountinfo: mi:3: ") || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("error %q, want mountinfo: mi:3: …%s", err, tt.msg)
			}
			if ms != nil {
				t.Errorf("Parse returned %d mounts with its error", len(ms))
			}
		})
	}
	// A line longer than the parser takes: still an error naming it.
	long := "26 1 254:0 / /" + strings.Repeat("a", maxLine) + " rw - ext4 /dev/vda rw\n"
	if _, err := Parse(strings.NewReader(good+long), "mi"); err == nil || !strings.Contains(err.Error(), "mi:2:") {
		t.Errorf("Parse(long line) = %v, want an error on line 2", err)
	}
	if _, err := ReadFile(filepath.Join(t.TempDir(), "none")); err == nil || !strings.Contains(err.Error(), "mountinfo: open") {
		t.Errorf("ReadFile(missing) = %v", err)
	}
	// No trailing newline, and no input at all, are fine.
	if ms, err := Parse(strings.NewReader(strings.TrimSuffix(good, "\n")), "mi"); err != nil || len(ms) != 1 {
		t.Errorf("Parse(no final newline) = %d mounts, %v", len(ms), err)
	}
	if ms, err := Parse(strings.NewReader(""), "mi"); err != nil || len(ms) != 0 {
		t.Errorf("Parse(\"\") = %d mounts, %v", len(ms), err)
	}
}

func TestEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{"/usr/lib", "/usr/lib"},
		{"/a b", "/a\\040b"},
		{"/t\tn\nb\\", "/t\\011n\\012b\\134"},
		{"/ä\r", "/ä\r"}, // only the four bytes mangle escapes
	}
	for _, tt := range tests {
		if got := Escape(tt.in); got != tt.want {
			t.Errorf("Escape(%q) = %q, want %q", tt.in, got, tt.want)
		}
		if back, err := Unescape(tt.want); err != nil || back != tt.in {
			t.Errorf("Unescape(%q) = %q, %v; want %q", tt.want, back, err, tt.in)
		}
	}
	// Unescape reads any octal escape, not only those mangle writes.
	if got, err := Unescape("\\141\\000\\377"); err != nil || got != "a\x00\xff" {
		t.Errorf("Unescape = %q, %v", got, err)
	}
}
