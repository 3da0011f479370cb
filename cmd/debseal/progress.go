package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/debseal/debseal/pkg/progress"
	"golang.org/x/sys/unix"
)

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

// newProgress returns a progress line on w when it is a terminal and the
// work is big enough to be worth one, and nothing otherwise.
func newProgress(w io.Writer, enabled bool) progress.Meter {
	if !enabled || !isTerminal(w) {
		return progress.None
	}
	return &ttyProgress{w: w}
}

// ttyProgress draws "phase: done/total unit" on one line, at most ten
// times a second, and erases it when done.
type ttyProgress struct {
	w     io.Writer
	mu    sync.Mutex
	phase string
	unit  progress.Unit
	total int
	done  int
	last  time.Time
}

func (p *ttyProgress) Start(phase string, unit progress.Unit, total int) {
	p.mu.Lock()
	p.phase, p.unit, p.total, p.done = phase, unit, total, 0
	p.last = time.Time{} // a new phase shows at its first count
	p.mu.Unlock()
}

func (p *ttyProgress) Add(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.done += n
	if time.Since(p.last) < 100*time.Millisecond {
		return
	}
	p.last = time.Now()
	fmt.Fprintf(p.w, "\r\033[K%s: %d/%d %s", p.phase, p.done, p.total, p.unit)
}

func (p *ttyProgress) Done() {
	p.mu.Lock()
	fmt.Fprint(p.w, "\r\033[K")
	p.mu.Unlock()
}
