package dpkgdb

import (
	"os"

	"github.com/debseal/debseal/pkg/regfile"
)

// ErrNotRegular is matched by the error for a database file that exists
// but is not a regular file (a FIFO, a device, a socket, a directory).
var ErrNotRegular = regfile.ErrNotRegular

// openRegular opens a database file for reading. dpkg writes every file
// of its database as a regular file; anything else in its place is refused
// without being read (pkg/regfile). Symbolic links are followed, as dpkg
// follows them.
func openRegular(path string) (*os.File, error) { return regfile.Open(path, "dpkgdb") }

// readRegular is os.ReadFile with openRegular's checks.
func readRegular(path string) ([]byte, error) { return regfile.ReadFile(path, "dpkgdb", nil) }
