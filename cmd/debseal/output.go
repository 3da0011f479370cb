package main

import (
	"io"
	"sync"
)

// checkedWriter is standard output as every command sees it: it keeps the
// first write error, and run turns it into the exit code once the command
// returns. Commands print with fmt.Fprintf and bufio, whose errors are
// easy to drop; here none can be, whatever the command (a report sent to
// a full disk must not exit 0). After an error, writes fail at once.
type checkedWriter struct {
	w   io.Writer
	mu  sync.Mutex
	err error
}

func (c *checkedWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.w.Write(p)
	if err == nil && n < len(p) {
		err = io.ErrShortWrite
	}
	c.err = err
	return n, err
}

// Err is the first write error, or nil.
func (c *checkedWriter) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}
