package main

import (
	"bytes"
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	// No test may lock this machine's own files: every mutating command
	// refuses the process's own root unless --root points elsewhere.
	os.Setenv("DEBSEAL_REFUSE_HOST_ROOT", "1")
	os.Exit(m.Run())
}

// debseal runs the CLI in-process.
func debseal(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(append([]string{"debseal"}, args...), &out, &errb)
	return out.String(), errb.String(), code
}
