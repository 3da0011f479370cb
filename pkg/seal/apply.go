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
	Verity      VeritySummary        // what a lock with Options.Verity did about fs-verity

	mu          sync.Mutex
	perDevUnsup map[uint64]devUnsupported // devices found to lack flag support
}

// VeritySummary is what a lock did about fs-verity. Nothing in it is an
// error of the lock: a file that could not get fs-verity is still locked.
type VeritySummary struct {
	Enabled int // files fs-verity was enabled on
	Already int // regular targets that had it
	// Devices: for each device a lock tried, whether it takes fs-verity
	// (false: the filesystem or kernel lacks it, see Unsupported).
	Devices map[uint64]bool
	// Unsupported: the first error of each device without fs-verity,
	// and how many of its targets were locked without it.
	Unsupported map[uint64]VerityUnsupported
	Warnings    []error // files on a device that takes it, left without (ETXTBSY, EFBIG…)
}

// VerityUnsupported is a device a lock found without fs-verity.
type VerityUnsupported struct {
	Err   error // the first file's error (an *fsattr.UnsupportedError)
	Files int   // targets on the device locked without fs-verity
}

// Options are how Apply works.
type Options struct {
	Workers  int            // parallel workers; 0: the Planner's default
	Progress progress.Meter // nil: none
	// Verity: when locking, enable fs-verity on every regular target
	// that lacks it before setting the flag (the kernel refuses to
	// enable it on an immutable file, so a target locked before is
	// unlocked for the moment it takes).
	Verity bool
}

// devUnsupported is the error of the probe that found a device without flag
// support, and the target it was about.
type devUnsupported struct {
	err  *fsattr.UnsupportedError
	path string
}

// Apply turns the immutable flag on (lock) or off (unlock) on every target,
// in parallel, with a number of workers (0: the default) and a progress
// meter (nil: none). It is ApplyWith without fs-verity.
func Apply(ctx context.Context, fsys FS, targets []*Target, on bool, workers int, prog progress.Meter) *Summary {
	return ApplyWith(ctx, fsys, targets, on, Options{Workers: workers, Progress: prog})
}

// ApplyWith turns the immutable flag on (lock) or off (unlock) on every
// target, in parallel. A target whose statx attributes already show the
// wanted state (and fs-verity, when a lock wants it) is not even opened.
// On a filesystem that turns out to lack flag support, the remaining
// targets on the same device are reported unsupported without another
// ioctl; the same holds for fs-verity.
func ApplyWith(ctx context.Context, fsys FS, targets []*Target, on bool, o Options) *Summary {
	prog, workers := o.Progress, o.Workers
	if prog == nil {
		prog = progress.None
	}
	if workers <= 0 {
		workers = (&Planner{}).workers()
	}
	wantVerity := on && o.Verity
	s := &Summary{Unsupported: map[string][]*Target{}, perDevUnsup: map[uint64]devUnsupported{}}
	s.Verity = VeritySummary{Devices: map[uint64]bool{}, Unsupported: map[uint64]VerityUnsupported{}}
	s.Outcomes = make([]Outcome, len(targets))
	groups := map[string][]int{}
	var dirs []string
	for i, t := range targets {
		s.Outcomes[i].Target = t
		if set, known := t.Info.Immutable(); known && set == on && !(wantVerity && lacksVerity(t.Info)) {
			if wantVerity && t.Info.IsRegular() {
				s.Verity.Already++
			}
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
			switch {
			case !wantVerity || !lacksVerity(t.Info):
				o.Result, o.Err = d.Set(t.Name, t.Info.Ident, fsattr.Immutable, on)
			case s.verityWorth(t.Info.Dev):
				s.withVerity(d, t, o)
			default:
				s.lockOnly(d, t, o)
			}
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

// lacksVerity: a regular file whose statx does not show fs-verity (also
// when the filesystem does not report the attribute: the ioctl tells).
func lacksVerity(info fsattr.Info) bool {
	if !info.IsRegular() {
		return false
	}
	set, _ := info.Verity()
	return !set
}

// verityWorth reports whether enabling fs-verity is worth trying on dev:
// not when an earlier file of this run found the device without it.
func (s *Summary) verityWorth(dev uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ok, tried := s.Verity.Devices[dev]; tried && !ok {
		u := s.Verity.Unsupported[dev]
		u.Files++
		s.Verity.Unsupported[dev] = u
		return false
	}
	return true
}

// withVerity locks t with fs-verity: enable it, then set the flag. The
// kernel enables fs-verity only on a file it could open for writing, so a
// target immutable already (locked before fs-verity was wanted) is
// unlocked for that moment — but only once the device has shown it takes
// fs-verity (EPERM, not "unsupported"), so a filesystem without it never
// sees a locked file unlocked. Whatever enabling does, the target ends
// locked: the lock is the promise, fs-verity the extra.
func (s *Summary) withVerity(d Dir, t *Target, o *Outcome) {
	enabled, err := d.EnableVerity(t.Name, t.Info.Ident)
	was, _ := t.Info.Immutable()
	if was && errors.Is(err, fsattr.ErrNotSupported) {
		// The probe of a device without fs-verity, on a file locked
		// already: nothing to do.
		s.noteVerity(t, err)
		s.lockOnly(d, t, o)
		return
	}
	if was && errors.Is(err, syscall.EPERM) {
		if _, err = d.Set(t.Name, t.Info.Ident, fsattr.Immutable, false); err == nil {
			enabled, err = d.EnableVerity(t.Name, t.Info.Ident)
		}
	}
	s.noteVerity(t, err)
	if err == nil {
		t.Info.SetVerity()
		if enabled {
			s.mu.Lock()
			s.Verity.Enabled++
			s.mu.Unlock()
		}
	}
	o.Result, o.Err = d.Set(t.Name, t.Info.Ident, fsattr.Immutable, true)
	if o.Err == nil {
		// Changed from the state before this call: a file that was
		// immutable before is not counted as newly locked.
		o.Result.Changed = !was
	}
}

// lockOnly locks t without fs-verity (its device has none): a target that
// statx shows locked already is not even opened, as in a lock without
// fs-verity.
func (s *Summary) lockOnly(d Dir, t *Target, o *Outcome) {
	if set, known := t.Info.Immutable(); known && set {
		o.Result = fsattr.Result{Info: t.Info}
		return
	}
	o.Result, o.Err = d.Set(t.Name, t.Info.Ident, fsattr.Immutable, true)
}

// noteVerity records what enabling fs-verity on t did: a device without
// it (once per device), a file left without it, or a device that takes it.
func (s *Summary) noteVerity(t *Target, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case err == nil:
		s.Verity.Devices[t.Info.Dev] = true
	case errors.Is(err, fsattr.ErrNotSupported):
		u := s.Verity.Unsupported[t.Info.Dev]
		if u.Err == nil {
			u.Err = err
		}
		u.Files++
		s.Verity.Unsupported[t.Info.Dev] = u
		if _, seen := s.Verity.Devices[t.Info.Dev]; !seen {
			s.Verity.Devices[t.Info.Dev] = false
		}
	default:
		s.Verity.Warnings = append(s.Verity.Warnings, err)
	}
}

// UnsupportedCount is the number of targets on filesystems without flags.
func (s *Summary) UnsupportedCount() int {
	n := 0
	for _, ts := range s.Unsupported {
		n += len(ts)
	}
	return n
}
