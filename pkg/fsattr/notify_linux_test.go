//go:build linux

package fsattr

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// TestFlagChangeRaisesNoNotifyEvent records what the kernel tells
// inotify and fanotify watchers when a file's immutable flag changes: on
// this kernel, nothing. chmod raises IN_ATTRIB and FAN_ATTRIB (the
// control: the watches work), while the three system calls that reach
// vfs_fileattr_set (fs/file_attr.c) — FS_IOC_SETFLAGS as chattr makes
// it, FS_IOC_FSSETXATTR as xfs_io makes it, and file_setattr(2) — raise
// no event on ext4, xfs, btrfs or tmpfs: vfs_fileattr_set calls the
// filesystem's fileattr_set and never fsnotify, where chmod goes through
// notify_change (fs/attr.c), which calls fsnotify_change. So a watcher
// cannot see a flag lifted, and debseal relies on the audit (the lifted
// finding) and offers an auditd rule instead (README). If a kernel starts
// reporting these, this test fails: the README's paragraph and the
// decision against `debseal watch` must be revisited.
func TestFlagChangeRaisesNoNotifyEvent(t *testing.T) {
	testutil.RequireRoot(t)
	for _, fstype := range []string{"ext4", "xfs", "btrfs", "tmpfs"} {
		t.Run(fstype, func(t *testing.T) {
			mnt := filepath.Join(testutil.TempRoot(t), "mnt")
			testutil.Mount(t, fstype, mnt)
			path := filepath.Join(mnt, "f")
			if err := os.WriteFile(path, []byte("x"), 0o644); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() {
				if err := setImmutableBy(path, "FS_IOC_SETFLAGS", false); err != nil {
					t.Errorf("clearing the flag of %s: %v", path, err)
				}
			})
			w := newWatchers(t, mnt, path)

			// The control: chmod must be seen by both, or the rest
			// proves nothing.
			if err := os.Chmod(path, 0o600); err != nil {
				t.Fatal(err)
			}
			if in, fan := w.events(t); in&unix.IN_ATTRIB == 0 || fan&unix.FAN_ATTRIB == 0 {
				t.Fatalf("chmod: inotify mask %#x, fanotify mask %#x; want IN_ATTRIB and FAN_ATTRIB (the watches do not work)", in, fan)
			}
			for _, via := range []string{"FS_IOC_SETFLAGS", "FS_IOC_FSSETXATTR", "file_setattr"} {
				for _, on := range []bool{true, false} {
					err := setImmutableBy(path, via, on)
					if errors.Is(err, unix.ENOSYS) {
						t.Logf("%s: not in this kernel (%v)", via, err)
						continue
					}
					if err != nil {
						t.Fatalf("%s(immutable=%v): %v", via, on, err)
					}
					if got := testutil.IsImmutable(t, path); got != on {
						t.Fatalf("%s(immutable=%v): the flag is %v", via, on, got)
					}
					if in, fan := w.events(t); in != 0 || fan != 0 {
						t.Errorf("%s(immutable=%v) on %s: inotify mask %#x, fanotify mask %#x; this kernel reports flag changes: "+
							"revisit README (\"Is a lift seen when it happens?\") and consider debseal watch", via, on, fstype, in, fan)
					}
				}
			}
		})
	}
}

// watchers are an inotify watch on one file and a fanotify mark on its
// whole filesystem, both for attribute changes and writes.
type watchers struct{ in, fan int }

func newWatchers(t *testing.T, mnt, path string) *watchers {
	t.Helper()
	in, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatalf("inotify_init1: %v", err)
	}
	t.Cleanup(func() { unix.Close(in) })
	if _, err := unix.InotifyAddWatch(in, path, unix.IN_ATTRIB|unix.IN_MODIFY); err != nil {
		t.Fatalf("inotify_add_watch %s: %v", path, err)
	}
	// FAN_ATTRIB needs FAN_REPORT_FID; a filesystem mark sees every inode.
	fan, err := unix.FanotifyInit(unix.FAN_CLASS_NOTIF|unix.FAN_REPORT_FID|unix.FAN_NONBLOCK|unix.FAN_CLOEXEC, unix.O_RDONLY)
	if err != nil {
		t.Fatalf("fanotify_init(FAN_REPORT_FID): %v", err)
	}
	t.Cleanup(func() { unix.Close(fan) })
	if err := unix.FanotifyMark(fan, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_ATTRIB|unix.FAN_MODIFY, unix.AT_FDCWD, mnt); err != nil {
		t.Fatalf("fanotify_mark(FAN_MARK_FILESYSTEM) %s: %v", mnt, err)
	}
	w := &watchers{in: in, fan: fan}
	w.events(t) // the file's creation
	return w
}

// events drains both queues and returns the union of their event masks.
// fsnotify queues an event before the system call that caused it
// returns, so what is not there now never will be.
func (w *watchers) events(t *testing.T) (in uint32, fan uint64) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for {
		n, err := unix.Read(w.in, buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatalf("read inotify: %v", err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			in |= ev.Mask
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
	for {
		n, err := unix.Read(w.fan, buf)
		if err == unix.EAGAIN {
			break
		}
		if err != nil {
			t.Fatalf("read fanotify: %v", err)
		}
		for off := 0; off+int(unsafe.Sizeof(unix.FanotifyEventMetadata{})) <= n; {
			md := (*unix.FanotifyEventMetadata)(unsafe.Pointer(&buf[off]))
			fan |= md.Mask
			if md.Fd >= 0 {
				unix.Close(int(md.Fd)) // FAN_REPORT_FID gives none; be safe
			}
			if md.Event_len == 0 {
				break
			}
			off += int(md.Event_len)
		}
	}
	return in, fan
}

// The three ways into vfs_fileattr_set. FS_IOC_FSSETXATTR and
// file_setattr(2) speak FS_XFLAG_* flags (struct fsxattr, struct
// file_attr); not in golang.org/x/sys yet.
const (
	fsIocFSGetXattr  = 0x801c581f // _IOR('X', 31, struct fsxattr)
	fsIocFSSetXattr  = 0x401c5820 // _IOW('X', 32, struct fsxattr)
	fsXflagImmutable = 0x8
	sysFileGetattr   = 468 // amd64, Linux 6.17
	sysFileSetattr   = 469
)

func setImmutableBy(path, via string, on bool) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	switch via {
	case "FS_IOC_SETFLAGS":
		v, err := getFlags(fd)
		if err != nil {
			return err
		}
		if on {
			v |= Immutable
		} else {
			v &^= Immutable
		}
		return setFlags(fd, v)
	case "FS_IOC_FSSETXATTR":
		var fsx [28]byte // struct fsxattr: fsx_xflags first
		if err := ioctlPtr(fd, fsIocFSGetXattr, unsafe.Pointer(&fsx[0])); err != nil {
			return fmt.Errorf("FS_IOC_FSGETXATTR: %w", err)
		}
		x := binary.NativeEndian.Uint32(fsx[:4])
		if on {
			x |= fsXflagImmutable
		} else {
			x &^= fsXflagImmutable
		}
		binary.NativeEndian.PutUint32(fsx[:4], x)
		return ioctlPtr(fd, fsIocFSSetXattr, unsafe.Pointer(&fsx[0]))
	case "file_setattr":
		if runtime.GOARCH != "amd64" {
			return fmt.Errorf("file_setattr: numbered for amd64 only: %w", unix.ENOSYS)
		}
		var fa [24]byte // struct file_attr: fa_xflags (u64) first
		empty := []byte{0}
		if _, _, e := unix.Syscall6(sysFileGetattr, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), uintptr(unsafe.Pointer(&fa[0])), 24, unix.AT_EMPTY_PATH, 0); e != 0 {
			return fmt.Errorf("file_getattr: %w", e)
		}
		x := binary.NativeEndian.Uint64(fa[:8])
		if on {
			x |= fsXflagImmutable
		} else {
			x &^= fsXflagImmutable
		}
		binary.NativeEndian.PutUint64(fa[:8], x)
		if _, _, e := unix.Syscall6(sysFileSetattr, uintptr(fd), uintptr(unsafe.Pointer(&empty[0])), uintptr(unsafe.Pointer(&fa[0])), 24, unix.AT_EMPTY_PATH, 0); e != 0 {
			return fmt.Errorf("file_setattr: %w", e)
		}
		return nil
	}
	return fmt.Errorf("unknown way %q", via)
}

func ioctlPtr(fd int, req uintptr, p unsafe.Pointer) error {
	if _, _, e := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(p)); e != 0 {
		return e
	}
	return nil
}

// TestAuditdRuleNumbers checks the auditd rules shipped as an example
// (packaging/auditd/debseal-setflags.rules) against the kernel's ioctl
// encoding: one rule per way into vfs_fileattr_set and per system call
// table, each with the number that way has there.
func TestAuditdRuleNumbers(t *testing.T) {
	iow := func(typ byte, nr, size uint32) uint64 { return 1<<30 | uint64(size)<<16 | uint64(typ)<<8 | uint64(nr) }
	if runtime.GOARCH == "amd64" && iow('f', 2, 8) != unix.FS_IOC_SETFLAGS {
		t.Fatalf("_IOW('f', 2, long) = %#x, x/sys says FS_IOC_SETFLAGS = %#x", iow('f', 2, 8), unix.FS_IOC_SETFLAGS)
	}
	if iow('X', 32, 28) != fsIocFSSetXattr {
		t.Fatalf("_IOW('X', 32, struct fsxattr) = %#x, want %#x", iow('X', 32, 28), fsIocFSSetXattr)
	}
	want := map[string]bool{
		fmt.Sprintf("b64 ioctl %#x", iow('f', 2, 8)):   true, // FS_IOC_SETFLAGS, long is 8 bytes
		fmt.Sprintf("b32 ioctl %#x", iow('f', 2, 4)):   true, // FS_IOC32_SETFLAGS
		fmt.Sprintf("b64 ioctl %#x", iow('X', 32, 28)): true,
		fmt.Sprintf("b32 ioctl %#x", iow('X', 32, 28)): true,
		fmt.Sprintf("b64 %d -", sysFileSetattr):        true,
		fmt.Sprintf("b32 %d -", sysFileSetattr):        true, // the same number in i386's table
	}
	b, err := os.ReadFile(filepath.Join(testutil.RepoRoot(t), "packaging/auditd/debseal-setflags.rules"))
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, l := range strings.Split(string(b), "\n") {
		if l == "" || strings.HasPrefix(l, "#") {
			continue
		}
		f := strings.Fields(l)
		var arch, sys, a1, key string
		for i := 0; i+1 < len(f); i++ {
			switch v := f[i+1]; f[i] {
			case "-S":
				sys = v
			case "-k":
				key = v
			case "-F":
				if s, ok := strings.CutPrefix(v, "arch="); ok {
					arch = s
				}
				if s, ok := strings.CutPrefix(v, "a1="); ok {
					a1 = s
				}
			}
		}
		if f[0] != "-a" || f[1] != "always,exit" || key != "debseal-setflags" {
			t.Errorf("rule %q: want -a always,exit ... -k debseal-setflags", l)
		}
		if a1 == "" {
			a1 = "-"
		} else if n, err := strconv.ParseUint(a1, 0, 64); err == nil {
			a1 = fmt.Sprintf("%#x", n)
		}
		got[arch+" "+sys+" "+a1] = true
	}
	for k := range want {
		if !got[k] {
			t.Errorf("no rule for %s", k)
		}
	}
	for k := range got {
		if !want[k] {
			t.Errorf("unexpected rule %s", k)
		}
	}
	if runtime.GOARCH == "amd64" && (unix.SYS_FILE_SETATTR != sysFileSetattr || unix.SYS_FILE_GETATTR != sysFileGetattr) {
		t.Errorf("file_setattr/file_getattr are %d/%d in x/sys, %d/%d here", unix.SYS_FILE_SETATTR, unix.SYS_FILE_GETATTR, sysFileSetattr, sysFileGetattr)
	}
}
