package dpkghook

import (
	"fmt"
	"path/filepath"

	"github.com/debseal/debseal/pkg/seal"
)

// Request says what this dpkg invocation will do, for planning. cwd makes
// relative archive paths absolute (dpkg's working directory).
func (inv *Invocation) Request(cwd string) seal.Request {
	var r seal.Request
	r.NoTriggers = inv.Triggers == -1
	switch inv.Action {
	case "install", "unpack":
		for _, a := range inv.Args {
			if !filepath.IsAbs(a) {
				a = filepath.Join(cwd, a)
			}
			r.Debs = append(r.Debs, a)
		}
		r.Recursive = inv.Recursive
	case "configure":
		if inv.Pending {
			r.ConfigurePending = true
		} else {
			r.Configure = inv.Args
		}
	case "remove":
		if inv.Pending {
			r.RemovePending = true
		} else {
			r.Remove = inv.Args
		}
	case "purge":
		if inv.Pending {
			r.PurgePending = true
		} else {
			r.Remove = inv.Args
		}
	case "triggers-only":
		if inv.Pending {
			r.TriggersPending = true
		} else {
			r.TriggersOnly = inv.Args
		}
	}
	return r
}

// Request says what the apt transaction will do: every archive it
// unpacks, every package it configures and every package it removes or
// purges (apt does not tell the two apart), before its first dpkg run.
func (info *AptInfo) Request() seal.Request {
	var r seal.Request
	r.Debs = append(r.Debs, info.Debs...)
	for _, l := range info.Lines {
		switch l.Kind {
		case AptUnpack:
			r.Debs = append(r.Debs, l.Deb)
		case AptConfigure:
			r.Configure = append(r.Configure, l.Spec())
		case AptRemove:
			r.Remove = append(r.Remove, l.Spec())
		case AptError:
			// apt will still hand dpkg an archive, by a relative path
			// debseal cannot resolve: what it replaces is unknown.
			r.Unknown = fmt.Sprintf("apt gave no absolute archive path for %s", l.Spec())
		}
	}
	// apt finishes with "dpkg --configure --pending", which also
	// processes triggers other packages activated.
	r.ConfigurePending = len(info.Lines) > 0 || len(info.Debs) > 0
	return r
}
