package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/debseal/debseal/pkg/seal"
)

// Exit codes. Commands return errors and only exitCode decides the code;
// the table below is the only list of what each code means, and every
// command's --help is generated from it (exitHelp). The man page's EXIT
// STATUS and the README say the same (TestExitTableDocumented).
const (
	exitOK       = 0  // done, nothing to report
	exitFindings = 1  // done, but something is wrong with the files: audit findings, verify mismatches
	exitError    = 2  // failed: bad input, unreadable database or config, I/O errors, lock held
	exitPartial  = 3  // done, except for some files or packages (each listed)
	exitRefused  = 4  // a dpkg run refused: sealed files it would replace are tampered (refuse-tampered-upgrade)
	exitUsage    = 64 // bad command line (EX_USAGE)
)

// exitRow is one line of the table: a code, what it means, and the
// commands that can end with it (nil: every command).
type exitRow struct {
	code    int
	meaning string
	cmds    []string
}

var exitTable = []exitRow{
	{exitOK, "success", nil},
	{exitFindings, "findings: files differ from what their packages or manifests say, a mount hides sealed files, or an md5sums file is malformed (audit, lock, manifest), or recover found orphans or mismatches; each is listed",
		[]string{"audit", "lock", "manifest", "recover"}},
	{exitError, "error: the command could not do its work: an unreadable or corrupt database, configuration, state or journal, an I/O error, another debseal or dpkg holding the lock, or standard output that cannot be written",
		nil},
	{exitPartial, "partial: done, except for some files or packages that could not be changed, examined or recorded; each is listed on standard error",
		[]string{"lock", "unlock", "status", "manifest", "recover"}},
	{exitRefused, "refused: refuse-tampered-upgrade is on and sealed files the dpkg run would replace are tampered (each is listed, and kept as evidence); nothing was unlocked and dpkg did not run (debseal dpkg, and the hook that stops dpkg or apt)",
		[]string{"dpkg"}},
	{exitUsage, "usage: an unknown command or option, missing or extra arguments, an empty --root, a --config that does not exist",
		nil},
	{130, "stopped by SIGINT (143: by SIGTERM)", nil},
}

// exitHelp is the EXIT CODES section of a command's --help ("" for the
// program's own).
func exitHelp(cmd string) string {
	var b strings.Builder
	b.WriteString("EXIT CODES:")
	for _, r := range exitTable {
		if cmd != "" && r.cmds != nil && !slices.Contains(r.cmds, cmd) {
			continue
		}
		fmt.Fprintf(&b, "\n   %-3d", r.code)
		n := 0
		for _, w := range strings.Fields(r.meaning) {
			if n > 0 && n+1+len(w) > 80 {
				b.WriteString("\n      ")
				n = 0
			}
			b.WriteString(" " + w)
			n += 1 + len(w)
		}
	}
	return b.String()
}

// outcome is how a command that ran ends when it is not plain success or
// failure: findings, partial, or a usage error. The message says what
// happened (it is printed as "debseal: MESSAGE").
type outcome struct {
	code int
	msg  string
}

func (e *outcome) Error() string { return e.msg }

// usagef is a bad command line (exit 64).
func usagef(format string, args ...any) error {
	return &outcome{code: exitUsage, msg: fmt.Sprintf(format, args...)}
}

// findingsf is a run that completed and found files that differ from
// what their packages say (exit 1).
func findingsf(format string, args ...any) error {
	return &outcome{code: exitFindings, msg: fmt.Sprintf(format, args...)}
}

// partialf is a run that completed except for some files or packages, each
// of which was listed (exit 3).
func partialf(format string, args ...any) error {
	return &outcome{code: exitPartial, msg: fmt.Sprintf(format, args...)}
}

// exitStatus is an exact status to pass through (the wrapped dpkg's). The
// table never changes it.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// outputError is standard output that could not be written or flushed:
// whatever the command did, its report is lost (exit 2).
type outputError struct{ err error }

func (e *outputError) Error() string { return fmt.Sprintf("writing to standard output: %v", e.err) }

func (e *outputError) Unwrap() error { return e.err }

// exitCode maps an error returned by a command to the process exit code.
// Anything that is not an outcome (a corrupt database, a policy error, an
// I/O error, debseal's or dpkg's lock held, a lost standard output) is an
// error: the command could not do its work.
func exitCode(err error) int {
	var oc *outcome
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &oc):
		return oc.code
	case errors.Is(err, seal.ErrTampered):
		return exitRefused
	default:
		return exitError
	}
}

// exitResult is how a run ends: the exit code, and the messages to print,
// given the command's error and the first error writing its standard
// output. A run whose report could not be written failed (exit 2),
// whatever it found; an error or a usage error keeps its code. The
// wrapped dpkg's status passes through untouched, with no message.
func exitResult(err, werr error) (int, []error) {
	var st exitStatus
	if errors.As(err, &st) {
		return int(st), nil
	}
	if werr != nil && errors.Is(err, werr) {
		err = nil // the command returned the write error itself: one message
	}
	code := exitCode(err)
	var msgs []error
	if err != nil && code != exitOK {
		msgs = append(msgs, err)
	}
	if werr != nil {
		msgs = append(msgs, &outputError{werr})
		if code == exitOK || code == exitFindings || code == exitPartial {
			code = exitError
		}
	}
	return code, msgs
}
