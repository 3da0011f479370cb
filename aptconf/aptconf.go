// Package aptconf holds the apt and dpkg configuration snippets debseal
// ships, one per integration mode, embedded so that "debseal setup" writes
// exactly these files. The files here are the source; tests check that
// each still tolerates a missing binary.
package aptconf

import (
	"embed"
	"fmt"
	"os"
	"sort"
	"strings"
)

//go:embed dpkg.cfg.d/debseal apt.conf.d/99debseal-hooks apt.conf.d/99debseal-wrapper lib/dpkg
var files embed.FS

// DefaultBinary is where the snippets expect debseal.
const DefaultBinary = "/usr/sbin/debseal"

// File is one snippet and where it goes (absolute, within the root).
type File struct {
	Path    string
	Content []byte
	Mode    os.FileMode // 0644 for configuration, 0755 for the wrapper script
}

// Snippets returns the configuration files of a mode, with the binary path
// replaced when debseal lives elsewhere. Modes without files (divert) return
// none.
func Snippets(mode, binary string) ([]File, error) {
	var names map[string]string
	switch mode {
	case "dpkg-hooks":
		names = map[string]string{"dpkg.cfg.d/debseal": "/etc/dpkg/dpkg.cfg.d/debseal"}
	case "apt-hooks":
		names = map[string]string{"apt.conf.d/99debseal-hooks": "/etc/apt/apt.conf.d/99debseal-hooks"}
	case "wrapper":
		names = map[string]string{"apt.conf.d/99debseal-wrapper": "/etc/apt/apt.conf.d/99debseal-wrapper",
			"lib/dpkg": WrapperPath}
	case "divert":
		return nil, nil
	default:
		return nil, fmt.Errorf("aptconf: unknown mode %q", mode)
	}
	var out []File
	for src, dst := range names {
		b, err := files.ReadFile(src)
		if err != nil {
			return nil, err
		}
		if dst == WrapperPath {
			b = wrapperScript(b, "/usr/bin/dpkg")
		}
		if binary != "" && binary != DefaultBinary {
			b = []byte(strings.ReplaceAll(string(b), DefaultBinary, binary))
		}
		if strings.HasPrefix(dst, "/etc/dpkg/") {
			for _, l := range strings.Split(string(b), "\n") {
				if len(l) > maxDpkgConfigLine {
					return nil, fmt.Errorf("aptconf: %s: a line of %d bytes with debseal at %s: dpkg reads at most %d (a longer line would stop every dpkg run with a configuration error)", dst, len(l), binary, maxDpkgConfigLine)
				}
			}
		}
		mode := os.FileMode(0o644)
		if dst == WrapperPath {
			mode = 0o755
		}
		out = append(out, File{Path: dst, Content: b, Mode: mode})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, nil
}

// maxDpkgConfigLine is the longest line dpkg reads from its configuration
// files (lib/dpkg/options.c reads lines with fgets into a 1024-byte
// buffer: the rest of a longer line is read as a line of its own, an
// unknown option, and every dpkg run fails; measured with dpkg 1.21).
const maxDpkgConfigLine = 1023

// WrapperPath is apt's Dir::Bin::dpkg in the wrapper mode.
const WrapperPath = "/usr/lib/debseal/dpkg"

// DivertScript is what the divert mode puts at /usr/bin/dpkg: the wrapper
// script, with the real dpkg at realDpkg (its diverted name).
func DivertScript(realDpkg, binary string) []byte {
	b, _ := files.ReadFile("lib/dpkg")
	b = wrapperScript(b, realDpkg)
	if binary != "" && binary != DefaultBinary {
		b = []byte(strings.ReplaceAll(string(b), DefaultBinary, binary))
	}
	return b
}

func wrapperScript(tmpl []byte, realDpkg string) []byte {
	return []byte(strings.ReplaceAll(string(tmpl), "@REAL_DPKG@", realDpkg))
}

// Modes lists the integration modes, the default first.
var Modes = []string{"dpkg-hooks", "apt-hooks", "wrapper", "divert"}
