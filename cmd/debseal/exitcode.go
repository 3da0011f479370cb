package main

import (
	"errors"
	"fmt"
)

// Exit codes. This is the only place that maps errors to codes; commands
// return errors and main decides. Each command's help repeats the codes that
// apply to it (exitCodesHelp).
const (
	exitOK       = 0  // done, nothing to report
	exitFindings = 1  // done, but something is wrong with the files: audit findings, verify mismatches
	exitError    = 2  // failed: bad input, unreadable database or config, I/O errors
	exitPartial  = 3  // done for most files, but some could not be changed (errors listed)
	exitUsage    = 64 // bad command line
)

const exitCodesHelp = `EXIT CODES:
   0   success
   1   findings: mismatching or tampered files were reported (audit, lock --verify)
   2   error: bad input, unreadable database or configuration, nothing trustworthy done
   3   partial: some files could not be changed; the others were (each error is listed)
   64  usage error`

// errFindings marks a run that completed but found problems in the files.
var errFindings = errors.New("findings reported")

// errPartial marks a run that completed but could not change every file.
var errPartial = errors.New("some files could not be changed")

// usageError is a bad command line.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{msg: fmt.Sprintf(format, args...)}
}

// exitStatus is an exact status to pass through (the wrapped dpkg's).
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// exitCode maps an error returned by a command to the process exit code.
func exitCode(err error) int {
	var us *usageError
	var st exitStatus
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &st):
		return int(st)
	case errors.As(err, &us):
		return exitUsage
	case errors.Is(err, errFindings):
		return exitFindings
	case errors.Is(err, errPartial):
		return exitPartial
	default:
		return exitError
	}
}
