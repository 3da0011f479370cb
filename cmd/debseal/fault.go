package main

import (
	"os"
	"syscall"
	"time"
)

// lockWait is how long a hook or the wrapper waits for another debseal
// (they serialise on debseal's own lock).
const lockWait = 2 * time.Minute

// fault kills this process with SIGKILL at a named point when
// DEBSEAL_FAULT names it. The crash tests use it to stop debseal exactly
// after it unlocked files ("after-unlock"), while dpkg runs under the
// wrapper ("during-dpkg"), or before it relocks ("before-relock"), and then
// check that recovery leaves the system fully locked. Anyone who can set
// dpkg's environment can already do far worse, so this opens nothing.
func fault(point string) {
	if os.Getenv("DEBSEAL_FAULT") == point {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
