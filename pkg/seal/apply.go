package seal

import (
	"context"
	"errors"
	"strings"
	"sync"
	"syscall"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/progress"
)

// Outcome is what happened to one target.
type Outcome struct {
	Target  *Target
	Changed bool          // an ioctl changed the flag
	Result  fsattr.Result // the state after, when the file was opened
	Err     error         // nil, or why it was not changed (see Unsupported)
}

// Unsupported reports an outcome on a filesystem without flag support.
func (o Outcome) Unsupported() bool { return errors.Is(o.Err, fsattr.ErrNotSupported) }

// Summary counts the outcomes of an Apply.
type Summary struct {
	Changed     int                  // flags changed
	Already     int                  // already as wanted: nothing done
	Unsupported map[string][]*Target // by filesystem name
	Errors      []error              // one per target that failed
	Outcomes    []Outcome            // every target, in plan order

	mu          sync.Mutex
	perDevUnsup map[uint64]devUnsupported // devices found to lack flag support
}

// devUnsupported is the error of the probe that found a device without flag
// support, and the target it was about.
type devUnsupported struct {
	err  *fsattr.UnsupportedError
	path string
}

// Apply turns the immutable flag on (lock) or off (unlock) on every target,
// in parallel. A target whose statx attributes already show the wanted
// state is not even opened. On a filesystem that turns out to lack flag
// support, the remaining targets on the same device are reported
// unsupported without another ioctl.
func Apply(ctx context.Context, fsys FS, targets []*Target, on bool, workers int, prog progress.Meter) *Summary {
	if prog == nil {
		prog = progress.None
	}
	if workers <= 0 {
		workers = (&Planner{}).workers()
	}
	s := &Summary{Unsupported: map[string][]*Target{}, perDevUnsup: map[uint64]devUnsupported{}}
	s.Outcomes = make([]Outcome, len(targets))
	groups := map[string][]int{}
	var dirs []string
	for i, t := range targets {
		s.Outcomes[i].Target = t
		if set, known := t.Info.Immutable(); known && set == on {
			s.Already++
			continue
		}
		if _, ok := groups[t.Dir]; !ok {
			dirs = append(dirs, t.Dir)
		}
		groups[t.Dir] = append(groups[t.Dir], i)
	}
	prog.Start(map[bool]string{true: "locking", false: "unlocking"}[on], progress.Files, len(targets))
	prog.Add(s.Already)
	forEachDir(ctx, fsys, dirs, workers, func(dir string, d Dir, derr error) {
		for _, i := range groups[dir] {
			o := &s.Outcomes[i]
			t := o.Target
			if derr != nil {
				o.Err = derr
				continue
			}
			s.mu.Lock()
			uerr, known := s.perDevUnsup[t.Info.Dev]
			s.mu.Unlock()
			if known {
				// The same error, naming this file (fsattr names files
				// by their host path: keep the root prefix).
				e := *uerr.err
				e.Path = strings.TrimSuffix(e.Path, uerr.path) + t.Path()
				o.Err = &e
				continue
			}
			o.Result, o.Err = d.Set(t.Name, t.Info.Ident, fsattr.Immutable, on)
			o.Changed = o.Err == nil && o.Result.Changed
			if o.Err == nil {
				t.Info.SetImmutable(on)
			}
			// ENOTTY means the filesystem has no inode flag ioctls at
			// all: a property of the whole device, so the rest of it
			// is not tried. Other "unsupported" errors (EOPNOTSUPP) can
			// be about one inode and are not generalised.
			var ue *fsattr.UnsupportedError
			if errors.As(o.Err, &ue) && errors.Is(ue.Err, syscall.ENOTTY) {
				s.mu.Lock()
				s.perDevUnsup[t.Info.Dev] = devUnsupported{ue, t.Path()}
				s.mu.Unlock()
			}
		}
		prog.Add(len(groups[dir]))
	})
	prog.Done()
	for i := range s.Outcomes {
		o := &s.Outcomes[i]
		switch {
		case o.Err != nil && o.Unsupported():
			var ue *fsattr.UnsupportedError
			name := "unknown"
			if errors.As(o.Err, &ue) {
				name = ue.FS
			}
			s.Unsupported[name] = append(s.Unsupported[name], o.Target)
		case o.Err != nil:
			s.Errors = append(s.Errors, o.Err)
		case o.Changed:
			s.Changed++
		case o.Result.Info.Ino != 0:
			s.Already++
		}
	}
	if err := ctx.Err(); err != nil {
		s.Errors = append(s.Errors, err)
	}
	return s
}

// UnsupportedCount is the number of targets on filesystems without flags.
func (s *Summary) UnsupportedCount() int {
	n := 0
	for _, ts := range s.Unsupported {
		n += len(ts)
	}
	return n
}
