package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"

	"github.com/debseal/debseal/pkg/confined"
)

// DEBSEAL_FAULT_IO=ERRNO:N[:WORD] makes the N-th change this process
// makes to debseal's own files (a write, fsync, rename, mkdir, remove...
// see confined.Fault) fail with ERRNO (ENOSPC, EIO or EROFS), and says so
// on stderr; with WORD, only in a process whose arguments include it
// (dpkg-pre, dpkg-post). KILL instead of an errno kills the process with
// SIGKILL just before that change. The fault tests reach the hooks dpkg
// runs with it, and check that every failure (or kill) leaves a
// consistent state that recover and the next dpkg run repair. Like
// DEBSEAL_FAULT, anyone who can set dpkg's environment can already do far
// worse, so this opens nothing.
func init() {
	spec := os.Getenv("DEBSEAL_FAULT_IO")
	if spec == "" {
		return
	}
	name, nth, _ := strings.Cut(spec, ":")
	nth, word, _ := strings.Cut(nth, ":")
	if word != "" && !slices.Contains(os.Args, word) {
		return
	}
	errno, ok := map[string]syscall.Errno{"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO, "EROFS": syscall.EROFS}[name]
	n, err := strconv.ParseInt(nth, 10, 64)
	if !ok && name != "KILL" || err != nil || n < 1 {
		fmt.Fprintf(os.Stderr, "debseal: ignoring DEBSEAL_FAULT_IO=%q (want ENOSPC|EIO|EROFS|KILL:N)\n", spec)
		return
	}
	var count atomic.Int64
	confined.Fault = func(op, path string) error {
		if count.Add(1) != n {
			return nil
		}
		fmt.Fprintf(os.Stderr, "debseal: fault injected: %s at %s %s\n", name, op, path)
		if name == "KILL" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
		return errno
	}
}
