package deb

import (
	"os"

	"github.com/debseal/debseal/pkg/regfile"
)

// ErrNotRegular is matched by the error OpenFile returns for a path that
// is not a regular file.
var ErrNotRegular = regfile.ErrNotRegular

// OpenFile opens a .deb for reading, refusing anything but a regular file
// (pkg/regfile): a FIFO would block the reader, a device may act when
// opened. Symbolic links are followed.
func OpenFile(path string) (*os.File, error) { return regfile.Open(path, "deb") }
