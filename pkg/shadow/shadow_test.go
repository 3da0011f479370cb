package shadow

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/mountinfo"
	"github.com/debseal/debseal/pkg/policy"
)

func parse(t *testing.T, lines ...string) []mountinfo.Mount {
	t.Helper()
	ms, err := mountinfo.Parse(strings.NewReader(strings.Join(lines, "\n")), "test")
	if err != nil {
		t.Fatal(err)
	}
	return ms
}

// TestUnexpected decides, line by line as the kernel prints them, which
// mounts below the root a normal system has and which are candidates.
func TestUnexpected(t *testing.T) {
	const rootfs = "1 0 8:1 / / rw,relatime - ext4 /dev/sda1 rw"
	tests := []struct {
		name, line string
		candidate  bool
	}{
		{"proc", "2 1 0:20 / /proc rw - proc proc rw", false},
		{"binfmt_misc below /proc", "3 2 0:21 / /proc/sys/fs/binfmt_misc rw - autofs systemd-1 rw", false},
		{"devpts", "4 1 0:23 / /dev/pts rw - devpts devpts rw", false},
		{"a user's runtime directory", "5 1 0:25 / /run/user/0 rw - tmpfs tmpfs rw", false},
		{"cgroup2", "6 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw", false},
		{"a separate /usr", "7 1 8:2 / /usr rw - ext4 /dev/sda2 rw", false},
		{"the EFI system partition", "8 1 259:1 / /boot/efi rw - vfat /dev/nvme0n1p1 rw", false},
		{"a separate /var/log on LVM", "9 1 253:3 / /var/log rw - xfs /dev/mapper/vg-log rw", false},
		{"a ZFS dataset at /home", "10 1 0:30 / /home rw - zfs rpool/home rw,xattr", false},
		{"a btrfs subvolume at /usr", "11 1 0:31 /@usr /usr rw - btrfs /dev/sda3 rw,subvolid=257,subvol=/@usr", false},
		{"a btrfs top level at /srv", "12 1 0:32 / /srv rw - btrfs /dev/sdb1 rw,subvolid=5,subvol=/", false},
		{"tmpfs at /tmp", "13 1 0:43 / /tmp rw - tmpfs tmpfs rw", false},
		{"an automount at /boot", "14 1 0:45 / /boot rw - autofs systemd-1 rw,fd=48", false},
		{"/usr bound onto itself (ProtectSystem=)", "15 1 8:1 /usr /usr ro - ext4 /dev/sda1 rw", false},
		{"a file bound onto itself", "16 1 8:1 /usr/bin/sudo /usr/bin/sudo ro - ext4 /dev/sda1 rw", false},

		{"a directory of a btrfs subvolume at /usr", "20 1 0:31 /@usr/lib /usr rw - btrfs /dev/sda3 rw,subvolid=257,subvol=/@usr", true},
		{"a bind of another directory at /usr", "21 1 8:1 /usr-evil /usr rw - ext4 /dev/sda1 rw", true},
		{"a subdirectory of another disk at /usr", "22 1 8:2 /lib /usr rw - ext4 /dev/sda2 rw", true},
		{"tmpfs at /usr", "23 1 0:40 / /usr rw - tmpfs tmpfs rw", true},
		{"overlay at /usr", "24 1 0:41 / /usr rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c", true},
		{"sshfs at /usr", "25 1 0:42 / /usr rw - fuse.sshfs host:/usr rw,user_id=0,group_id=0", true},
		{"ntfs-3g at /opt (fuseblk)", "26 1 8:17 / /opt rw - fuseblk /dev/sdb1 rw,user_id=0,group_id=0", true},
		{"tmpfs at /var/tmp", "27 1 0:44 / /var/tmp rw - tmpfs tmpfs rw", true},
		{"btrfs from no device", "28 1 0:33 / /var rw - btrfs none rw,subvol=/", true},
		{"a file bound over /usr/bin/sudo", "29 1 8:1 /tmp/sudo /usr/bin/sudo rw - ext4 /dev/sda1 rw", true},
		{"a loop-mounted ext4 over /usr/lib/x", "30 1 7:0 / /usr/lib/x rw - ext4 /dev/loop0 rw", true},
		{"a whole disk, but at /usr/bin", "31 1 8:4 / /usr/bin rw - ext4 /dev/sda4 rw", true},
		{"NFS at /opt", "32 1 0:46 / /opt rw - nfs4 server:/opt rw", true},
		{"tmpfs over /etc", "33 1 0:47 / /etc rw - tmpfs tmpfs rw", true},
		{"a container's layers below /var/lib", "34 1 0:48 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Unexpected(parse(t, rootfs, tt.line), "/", nil)
			if tt.candidate != (len(got) == 1) {
				m, _ := mountinfo.ParseLine(tt.line)
				ok, why := Expected(Mount{Mount: m, Point: m.MountPoint}, nil)
				t.Errorf("Unexpected(%q) = %d mounts, want a candidate: %v (Expected without the parent: %v, %q)", tt.line, len(got), tt.candidate, ok, why)
			}
		})
	}
}

// TestBelow: only mounts strictly below the root count, named within it.
func TestBelow(t *testing.T) {
	ms := parse(t,
		"1 0 8:1 / / rw - ext4 /dev/sda1 rw",
		"2 1 0:40 / /tmp rw - tmpfs tmpfs rw",
		"3 2 0:41 / /tmp/sb rw - overlay overlay rw",
		"4 3 0:42 / /tmp/sb/proc rw - proc proc rw",
		"5 3 7:1 / /tmp/sb/usr rw - ext4 /dev/loop1 rw",
		"6 3 0:43 / /tmp/sb/usr/lib/x rw - tmpfs tmpfs rw",
		"7 2 0:44 / /tmp/sbx/usr rw - tmpfs tmpfs rw",
		"8 3 0:45 /dir /tmp/sb/with\\040space rw - tmpfs tmpfs rw",
	)
	var got []string
	for _, m := range Below(ms, "/tmp/sb") {
		got = append(got, fmt.Sprintf("%d %s", m.ID, m.Point))
	}
	want := []string{"4 /proc", "5 /usr", "6 /usr/lib/x", "8 /with space"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Below(/tmp/sb) = %q, want %q", got, want)
	}
	if n := len(Below(ms, "/")); n != 7 {
		t.Errorf("Below(/) = %d mounts, want every one but the root's (7)", n)
	}
	var cands []string
	for _, m := range Unexpected(ms, "/tmp/sb/", nil) {
		cands = append(cands, m.Point)
	}
	if want := []string{"/usr/lib/x", "/with space"}; !reflect.DeepEqual(cands, want) {
		t.Errorf("Unexpected(/tmp/sb) = %q, want %q (the sandbox's proc and /usr are expected)", cands, want)
	}
	pol, err := policy.Parse(strings.NewReader("mount-allow = /usr/lib/x\nmount-allow = /with*\n"), "c")
	if err != nil {
		t.Fatal(err)
	}
	if got := Unexpected(ms, "/tmp/sb", pol.MountAllowed); len(got) != 0 {
		t.Errorf("with mount-allow, Unexpected = %+v, want none", got)
	}
}

// tree writes files and symlinks under root: "name" a file, "name ->
// target" a symlink.
func tree(t *testing.T, root string, entries ...string) {
	t.Helper()
	for _, e := range entries {
		name, target, link := strings.Cut(e, " -> ")
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		var err error
		if link {
			err = os.Symlink(target, p)
		} else {
			err = os.WriteFile(p, []byte(name), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
}

// admindir writes a dpkg database: status paragraphs, and per package its
// list (every path a line; a "*" suffix marks a regular file, which goes
// to md5sums too).
func admindir(t *testing.T, root, status string, lists map[string][]string, diversions string) *dpkgdb.DB {
	t.Helper()
	admin := filepath.Join(root, "var/lib/dpkg")
	if err := os.MkdirAll(filepath.Join(admin, "info"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(admin, name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("status", status)
	write("diversions", diversions)
	for pkg, paths := range lists {
		var list, sums strings.Builder
		for _, p := range paths {
			p, file := strings.CutSuffix(p, "*")
			list.WriteString(p + "\n")
			if file {
				sums.WriteString("d41d8cd98f00b204e9800998ecf8427e  " + strings.TrimPrefix(p, "/") + "\n")
			}
		}
		write("info/"+pkg+".list", list.String())
		write("info/"+pkg+".md5sums", sums.String())
	}
	db, err := dpkgdb.Open(admin)
	if err != nil {
		t.Fatal(err)
	}
	return db
}

func pkgStanza(name, state string, extra ...string) string {
	s := "Package: " + name + "\nStatus: install ok " + state + "\nArchitecture: all\nVersion: 1\n"
	for _, e := range extra {
		s += e + "\n"
	}
	return s + "\n"
}

// TestCheck counts what mounts hide, on a hand-made merged-/usr root with
// mount lines as the kernel would print them: nothing is mounted, so it
// needs no privileges (cmd/debseal's tests mount for real).
func TestCheck(t *testing.T) {
	root := t.TempDir()
	tree(t, root,
		"bin -> usr/bin",
		"usr/bin/a", "usr/bin/b.distrib", "usr/bin/b",
		"usr/lib/x/f1", "usr/lib/x/f2", "usr/lib/x/sub/f3", "usr/lib/x/q1", "usr/lib/x/r1",
		// As if a mount over /usr/lib/w put a symlink there: the
		// file behind it is what that mount says.
		"usr/lib/w/sub -> /opt/elsewhere", "opt/elsewhere/w1",
		"usr/share/doc/p/copyright", "etc/p.conf", "var/lib/p/data",
	)
	status := pkgStanza("p", "installed", "Conffiles:\n /etc/p.conf d41d8cd98f00b204e9800998ecf8427e") +
		pkgStanza("q", "installed") + pkgStanza("r", "unpacked") + pkgStanza("s", "installed") + pkgStanza("t", "installed")
	db := admindir(t, root, status, map[string][]string{
		"p": {"/bin", "/bin/a*", "/usr", "/usr/bin", "/usr/bin/b*", "/usr/lib/x/f1*", "/usr/lib/x/f2*", "/usr/lib/x/sub", "/usr/lib/x/sub/f3*",
			"/usr/share/doc/p/copyright*", "/etc/p.conf", "/var/lib/p/data*"},
		"q": {"/usr/lib/x/q1*"},                    // not sealed
		"r": {"/usr/lib/x/r1*"},                    // not configured yet
		"s": {"/usr/lib/w/sub/w1*"},                // behind the symlink
		"t": {"/usr/bin/a*", "/usr/lib/x/sub/f3*"}, // the same files as p's, by other names: counted once
	}, "/usr/bin/b\n/usr/bin/b.distrib\n:\n")
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	real := fsys.Real()
	line := func(id int, fstype, point string) string {
		return fmt.Sprintf("%d 1 0:%d / %s rw - %s none rw", id, id, mountinfo.Escape(real+point), fstype)
	}
	mounts := parse(t,
		"1 0 8:1 / / rw - ext4 /dev/sda1 rw",
		line(2, "proc", "/proc"),
		line(3, "tmpfs", "/usr/lib/x"),
		line(4, "tmpfs", "/usr/bin/a"),
		line(5, "tmpfs", "/usr/bin/b.distrib"),
		line(6, "tmpfs", "/var/lib/p"), // excluded by the policy: hides nothing sealed
		line(7, "tmpfs", "/etc"),       // conffiles only
		line(8, "overlay", "/usr/lib/w"),
		line(9, "tmpfs", "/usr/share/doc"),
		line(10, "tmpfs", "/usr/bin/b"), // the diverted name: p's file is b.distrib
		line(11, "tmpfs", "/usr/lib/x"), // stacked on 3
	)
	sealed := func(p string) bool { return p != "q" }
	c := &Checker{FS: fsys, DB: db, Policy: policy.Default(), Sealed: sealed}
	got, err := c.Check(context.Background(), mounts, nil)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	for _, s := range got {
		lines = append(lines, fmt.Sprintf("%s %d %s %d %v", s.Point, s.ID, s.FSType, s.Hidden, s.Packages))
	}
	want := []string{
		"/usr/bin/a 4 tmpfs 1 [p t]",
		"/usr/bin/b.distrib 5 tmpfs 1 [p]",
		"/usr/lib/w 8 overlay 1 [s]",
		"/usr/lib/x 3 tmpfs 3 [p t]",
		"/usr/lib/x 11 tmpfs 3 [p t]",
		"/usr/share/doc 9 tmpfs 1 [p]",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("Check() =\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}

	// A subset of packages counts only theirs.
	got, err = c.Check(context.Background(), mounts, db.Lookup("s"))
	if err != nil || len(got) != 1 || got[0].Point != "/usr/lib/w" {
		t.Errorf("Check(s) = %+v, %v; want /usr/lib/w only", got, err)
	}
	// mount-allow, and policy exclusions, take mounts out.
	pol, err := policy.Parse(strings.NewReader("mount-allow = /usr/lib/*\nexclude-path = /usr/share/doc\nexclude-package = t\n"), "c")
	if err != nil {
		t.Fatal(err)
	}
	c.Policy = pol
	got, _ = c.Check(context.Background(), mounts, nil)
	lines = nil
	for _, s := range got {
		lines = append(lines, fmt.Sprintf("%s %d %v", s.Point, s.Hidden, s.Packages))
	}
	if want := []string{"/usr/bin/a 1 [p]", "/usr/bin/b.distrib 1 [p]"}; !reflect.DeepEqual(lines, want) {
		t.Errorf("with mount-allow and exclusions, Check() = %q, want %q", lines, want)
	}
	// Nothing sealed, nothing hidden.
	c.Policy, c.Sealed = policy.Default(), func(string) bool { return false }
	if got, err := c.Check(context.Background(), mounts, nil); err != nil || len(got) != 0 {
		t.Errorf("nothing sealed: Check() = %+v, %v", got, err)
	}
}

// TestCheckReadsNothingWithoutCandidates: when every mount below the root
// is expected, the database is not even opened for diversions (the
// check costs nothing on a normal system).
func TestCheckReadsNothingWithoutCandidates(t *testing.T) {
	root := t.TempDir()
	db := admindir(t, root, pkgStanza("p", "installed"), map[string][]string{"p": {"/usr/bin/a*"}}, "")
	// A diversions file that does not parse: reading it would fail.
	if err := os.WriteFile(filepath.Join(root, "var/lib/dpkg/diversions"), []byte("/a\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	c := &Checker{FS: fsys, DB: db, Policy: policy.Default(), Sealed: func(string) bool { return true }}
	mounts := parse(t, "1 0 8:1 / / rw - ext4 /dev/sda1 rw",
		fmt.Sprintf("2 1 0:20 / %s/proc rw - proc proc rw", mountinfo.Escape(fsys.Real())))
	if got, err := c.Check(context.Background(), mounts, nil); err != nil || got != nil {
		t.Errorf("Check() = %+v, %v; want nothing, without reading the database", got, err)
	}
	mounts = append(mounts, parse(t, fmt.Sprintf("3 1 0:21 / %s/usr/bin rw - tmpfs tmpfs rw", mountinfo.Escape(fsys.Real())))...)
	if _, err := c.Check(context.Background(), mounts, nil); err == nil {
		t.Error("with a candidate, Check() did not read the (corrupt) diversions")
	}
}

// A tree of symlinks costs a lookup at most maxSymlinks follows, as in
// the kernel, however it branches.
func TestSymlinkBudget(t *testing.T) {
	root := t.TempDir()
	var entries []string
	for i := 0; i < 30; i++ {
		// l<i> -> l<i+1>/l<i+1>/l<i+1>/l<i+1>: 4^30 follows without a budget.
		n := fmt.Sprintf("l%d", i+1)
		entries = append(entries, fmt.Sprintf("d/l%d -> %s/%s/%s/%s", i, n, n, n, n))
	}
	tree(t, root, entries...)
	fsys, err := fsattr.OpenRoot(root)
	if err != nil {
		t.Fatal(err)
	}
	defer fsys.Close()
	r := &resolver{fs: fsys, dirs: map[string]walked{}}
	defer r.close()
	if canon, _ := r.file("/d/l0/x"); canon == "" {
		t.Error("no path")
	}
	if r.budget < 0 {
		t.Errorf("budget %d", r.budget)
	}
}
