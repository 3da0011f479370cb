package seal

import (
	"context"
	"errors"

	"github.com/debseal/debseal/pkg/fsattr"
)

// FlagState is a target's current lock state.
type FlagState struct {
	Locked      bool
	Unsupported string // filesystem name when it has no flags
	Err         error
}

// Inspect reads the lock state of every target without changing anything:
// from the statx attributes when the filesystem reports them, otherwise by
// opening the file and asking (FS_IOC_GETFLAGS).
func Inspect(ctx context.Context, fsys FS, targets []*Target, workers int) []FlagState {
	if workers <= 0 {
		workers = (&Planner{}).workers()
	}
	out := make([]FlagState, len(targets))
	groups := map[string][]int{}
	var dirs []string
	for i, t := range targets {
		if set, known := t.Info.Immutable(); known {
			out[i].Locked = set
			continue
		}
		if _, ok := groups[t.Dir]; !ok {
			dirs = append(dirs, t.Dir)
		}
		groups[t.Dir] = append(groups[t.Dir], i)
	}
	forEachDir(ctx, fsys, dirs, workers, func(dir string, d Dir, derr error) {
		for _, i := range groups[dir] {
			if derr != nil {
				out[i].Err = derr
				continue
			}
			v, err := d.Flags(targets[i].Name, targets[i].Info.Ident)
			var ue *fsattr.UnsupportedError
			switch {
			case errors.As(err, &ue):
				out[i].Unsupported = ue.FS
			case err != nil:
				out[i].Err = err
			default:
				out[i].Locked = v&fsattr.Immutable != 0
			}
		}
	})
	return out
}
