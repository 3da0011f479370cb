// Package testutil holds what debseal's tests share: skips that turn into
// failures under CI, sandbox roots whose immutable flags are always cleared
// again, and an independent reader of the flag (it does not use pkg/fsattr,
// so tests of that package check it against something else).
//
// It is imported by tests only.
package testutil

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// CI reports whether the tests run under CI (CI=true), where a skipped test
// is a failure: the suite must prove everything on the CI machine.
func CI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason, or fails it under CI.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	if CI() {
		t.Fatalf("not skipping under CI=true: "+format, args...)
	}
	t.Skipf(format, args...)
}

// RequireRoot skips (fails under CI) unless the test runs as root with
// CAP_LINUX_IMMUTABLE.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skip(t, "needs root (CAP_LINUX_IMMUTABLE); run make test as root")
	}
}

// RequireCommand skips (fails under CI) unless name is on PATH.
func RequireCommand(t testing.TB, names ...string) {
	t.Helper()
	for _, name := range names {
		if _, err := exec.LookPath(name); err != nil {
			Skip(t, "needs %s (apt-get install the package that provides it; .ci/run does)", name)
		}
	}
}

const (
	flImmutable = 0x10
	flAppend    = 0x20
)

// Flags reads a path's inode flags with FS_IOC_GETFLAGS, independently of
// pkg/fsattr. Symlinks are not followed (they have no flags: 0 is returned).
func Flags(path string) (uint32, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return 0, err
	}
	if !fi.Mode().IsRegular() && !fi.IsDir() {
		return 0, nil
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	v, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		return 0, &os.PathError{Op: "FS_IOC_GETFLAGS", Path: path, Err: err}
	}
	return v, nil
}

// IsImmutable reports whether path carries the immutable flag.
func IsImmutable(t testing.TB, path string) bool {
	t.Helper()
	v, err := Flags(path)
	if err != nil {
		t.Fatalf("read flags of %s: %v", path, err)
	}
	return v&flImmutable != 0
}

// clearFlags removes the immutable and append-only flags from one path.
func clearFlags(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	v, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		if errors.Is(err, unix.ENOTTY) || errors.Is(err, unix.EOPNOTSUPP) || errors.Is(err, unix.EINVAL) {
			return nil // the filesystem has no flags, so none to clear
		}
		return &os.PathError{Op: "FS_IOC_GETFLAGS", Path: path, Err: err}
	}
	if v&(flImmutable|flAppend) == 0 {
		return nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(v&^(flImmutable|flAppend))); err != nil {
		return &os.PathError{Op: "FS_IOC_SETFLAGS", Path: path, Err: err}
	}
	return nil
}

// clearTree clears the immutable and append-only flags of every regular
// file and directory under dir, by path. It returns every error.
func clearTree(dir string) error {
	var errs []error
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			errs = append(errs, err)
			return nil
		}
		if d.Type().IsRegular() || d.IsDir() {
			if err := clearFlags(path); err != nil {
				errs = append(errs, err)
			}
		}
		return nil
	})
	if err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// cleanupFlags registers a t.Cleanup that clears every flag under dir and
// fails the test if that is not possible. Register it after creating dir
// with t.TempDir, so it runs before the directory is removed.
func cleanupFlags(t testing.TB, dir string) {
	t.Helper()
	t.Cleanup(func() {
		if err := clearTree(dir); err != nil {
			t.Errorf("clearing immutable flags under %s: %v", dir, err)
		}
	})
}

// TempRoot returns a fresh temporary directory whose flags are cleared when
// the test ends.
func TempRoot(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	cleanupFlags(t, dir)
	return dir
}

// RepoRoot returns the repository's top directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("cannot locate testutil source")
	}
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

var (
	binOnce sync.Once
	binPath string
	binErr  error
)

// Binary returns the path of a static debseal binary: $DEBSEAL_BIN when
// make test built one, otherwise one built once per test process.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("DEBSEAL_BIN"); p != "" {
		return p
	}
	binOnce.Do(func() {
		// One fixed place, replaced atomically: concurrent test
		// processes build the same source, and nothing piles up in /tmp.
		dir := filepath.Join(os.TempDir(), "debseal-testbin")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			binErr = err
			return
		}
		tmp, err := os.CreateTemp(dir, "debseal-*")
		if err != nil {
			binErr = err
			return
		}
		tmp.Close()
		// The Makefile's flags: the package test ships this binary.
		cmd := exec.Command("go", "build", "-trimpath", "-tags", "urfave_cli_no_docs", "-ldflags", "-s -w", "-o", tmp.Name(), "./cmd/debseal")
		cmd.Dir = RepoRoot(t)
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			os.Remove(tmp.Name())
			binErr = errors.New("go build: " + strings.TrimSpace(string(out)))
			return
		}
		binPath = filepath.Join(dir, "debseal")
		binErr = os.Rename(tmp.Name(), binPath)
	})
	if binErr != nil {
		t.Fatalf("building debseal: %v", binErr)
	}
	return binPath
}

// copyTree copies the directory src to dst (which must not exist), turning
// "%3a" in file names back into ":" (fixtures store Multi-Arch info files
// that way because Go module zips refuse ':' in names).
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(src, path)
		if err != nil {
			return err
		}
		target := filepath.Join(dst, strings.ReplaceAll(rel, "%3a", ":"))
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			return os.MkdirAll(target, info.Mode().Perm()|0o700)
		case d.Type()&fs.ModeSymlink != 0:
			l, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(l, target)
		default:
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			return os.WriteFile(target, b, info.Mode().Perm())
		}
	})
	if err != nil {
		t.Fatalf("copying %s: %v", src, err)
	}
}

// Fixture copies testdata/<name> into a fresh temporary directory and
// returns its path.
func Fixture(t testing.TB, name string) string {
	t.Helper()
	dst := filepath.Join(t.TempDir(), filepath.Base(name))
	copyTree(t, filepath.Join(RepoRoot(t), "testdata", name), dst)
	return dst
}

// Output runs cmd and returns its combined output and exit code; failing
// to start it at all fails the test.
func Output(t testing.TB, cmd *exec.Cmd) (string, int) {
	t.Helper()
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case err == nil:
		return string(out), 0
	case errors.As(err, &ee):
		return string(out), ee.ExitCode()
	}
	t.Fatalf("%s: %v", strings.Join(cmd.Args, " "), err)
	return "", -1
}
