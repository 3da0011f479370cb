package seal

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"
)

// Session is the transaction protocol, written once for every entry point
// (dpkg's hooks, apt's hooks, the wrapper, recover): under debseal's own
// lock, Start recovers what dead transactions left unlocked and begins a
// new one; Finish ends it and recovers again. The entry points only parse
// what dpkg or apt is about to do and render the reports.
type Session struct {
	*System
	Owner Process
	// LockWait bounds the wait for debseal's lock (another debseal
	// planning or relocking).
	LockWait time.Duration
}

// SessionReport is what a Start or Finish did, for the log.
type SessionReport struct {
	Recovered   []RecoverReport
	RecoverErrs []error
	Begin       *BeginReport
	End         *EndReport
}

// Start runs before dpkg: recover stale transactions (when no other dpkg
// runs), reread what they changed, and Begin. It never skips the Begin
// because another dpkg holds the database: this run's dpkg may get the
// lock once that one ends, and must then find its files unlocked.
func (se *Session) Start(ctx context.Context, req Request) (*SessionReport, error) {
	return se.locked(func(rep *SessionReport) (err error) {
		if se.recoverStale(ctx, rep) {
			if err := se.Reload(); err != nil {
				return err
			}
		}
		rep.Begin, err = se.Begin(ctx, req, se.Owner)
		return err
	})
}

// locked runs fn under debseal's own lock on the root.
func (se *Session) locked(fn func(*SessionReport) error) (*SessionReport, error) {
	lock, err := AcquireLock(se.Root, se.LockWait)
	if err != nil {
		return nil, err
	}
	defer lock.Release()
	rep := &SessionReport{}
	return rep, fn(rep)
}

// Finish runs after dpkg: End the owner's transaction (j, or the owner's
// journal when j is nil), then recover transactions whose process died
// meanwhile (a dpkg that lost the race for the database lock never runs
// its post-invoke hook).
func (se *Session) Finish(ctx context.Context, j *Journal) (*SessionReport, error) {
	return se.locked(func(rep *SessionReport) (err error) {
		if j == nil {
			if j, err = findJournal(se.Root, se.Owner); err != nil {
				return err
			}
		}
		if rep.End, err = se.End(ctx, j); err != nil {
			return err
		}
		se.recoverStale(ctx, rep)
		return nil
	})
}

// Recover ends dead transactions and then, unless a package manager
// runs, locks what changed without debseal seeing it (debseal recover).
func (se *Session) Recover(ctx context.Context, force bool) (*SessionReport, error) {
	return se.locked(func(rep *SessionReport) (err error) {
		rep.Recovered, rep.RecoverErrs = se.System.Recover(ctx, force)
		rep.End, err = se.End(ctx, nil)
		return err
	})
}

// RecoverStale only ends dead transactions (apt's Pre-Invoke).
func (se *Session) RecoverStale(ctx context.Context) (*SessionReport, error) {
	return se.locked(func(rep *SessionReport) error {
		se.recoverStale(ctx, rep)
		return nil
	})
}

// recoverStale ends the transactions of dead processes, and reports
// whether it ended any (the database and state were reread then).
func (se *Session) recoverStale(ctx context.Context, rep *SessionReport) bool {
	reps, errs := se.System.Recover(ctx, false)
	rep.Recovered = append(rep.Recovered, reps...)
	rep.RecoverErrs = append(rep.RecoverErrs, errs...)
	for _, r := range reps {
		if r.End != nil {
			return true
		}
	}
	return false
}

// Busy says why nothing may be relocked now: a dpkg, or a package manager
// holding the frontend lock, that is not one of this run's own processes
// (it would fail on files locked under it). "" when nothing else runs.
func (s *System) Busy() string {
	for _, l := range []struct{ file, who string }{{"lock", "dpkg"}, {"lock-frontend", "a package manager"}} {
		if l.file == "lock" && s.holdsDpkgLock {
			continue // ours: nobody else can hold it
		}
		pid, err := lockHolder(filepath.Join(s.Admindir, l.file))
		if err != nil {
			return fmt.Sprintf("cannot tell whether %s runs: %v", l.who, err)
		}
		switch {
		case pid < 0:
			return fmt.Sprintf("%s runs (a process this system cannot see holds %s)", l.who, filepath.Join(s.Admindir, l.file))
		case pid != 0 && (s.Ours == nil || !s.Ours(pid)):
			return fmt.Sprintf("%s runs (pid %d holds %s)", l.who, pid, filepath.Join(s.Admindir, l.file))
		}
	}
	return ""
}

// RecoverReport is the outcome of recovering one stale transaction.
type RecoverReport struct {
	Journal *Journal
	End     *EndReport
	Skipped string // not recovered, and why
}

// Recover ends every transaction whose process is gone: it relocks what a
// crashed run left unlocked. Transactions still running are left alone,
// and so is everything while a dpkg that is not ours holds its lock (it
// would fail on files relocked under it). With force, live owners are
// ignored (debseal recover --force, for a wedged process).
func (s *System) Recover(ctx context.Context, force bool) ([]RecoverReport, []error) {
	js, errs := Journals(s.Root)
	var out []RecoverReport
	for _, j := range js {
		if !force && s.Alive != nil && s.Alive(j.Owner) {
			out = append(out, RecoverReport{Journal: j, Skipped: fmt.Sprintf("process %d (%s) still runs", j.Owner.Pid, j.Owner.Via)})
			continue
		}
		if why := s.Busy(); why != "" {
			out = append(out, RecoverReport{Journal: j, Skipped: why})
			continue
		}
		// Keep an unhooked dpkg from starting meanwhile. When the lock
		// cannot be had, Busy said its holder is ours (the apt whose hook
		// this is): nobody else can start either.
		release, err := holdDpkgLock(s.Admindir)
		if err == nil {
			s.holdsDpkgLock = true
		} else {
			release = func() {}
		}
		end, err := s.End(ctx, j)
		s.holdsDpkgLock = false
		release()
		if err != nil {
			errs = append(errs, fmt.Errorf("recovering %s: %w", j.Path(), err))
			continue
		}
		if end.Deferred != "" {
			out = append(out, RecoverReport{Journal: j, Skipped: end.Deferred})
			continue
		}
		end.Recovered = true
		out = append(out, RecoverReport{Journal: j, End: end})
	}
	return out, errs
}

// holds are the packages and inodes that live transactions other than
// the one ending have unlocked: End leaves them to those transactions.
type holds struct {
	names  map[string]bool
	inodes map[[2]uint64]bool
}

// liveHolds collects what the journals of other live owners cover.
func (s *System) liveHolds(self *Journal) holds {
	h := holds{names: map[string]bool{}, inodes: map[[2]uint64]bool{}}
	if s.Alive == nil {
		return h
	}
	other := func(o Process) bool {
		return (self == nil || o.key() != self.Owner.key()) && s.Alive(o)
	}
	js, _ := journalsOf(s.Root, other) // a corrupt journal is reported by Recover
	for _, j := range js {
		for _, id := range j.Packages {
			h.names[strings.SplitN(id, ":", 2)[0]] = true
		}
		for _, n := range j.NewPackages {
			h.names[n] = true
		}
		for _, e := range j.Unlocked {
			h.inodes[[2]uint64{e.Dev, e.Ino}] = true
		}
	}
	return h
}

// liveEntries returns what the journals of live owners (other than a
// journal this process is writing) record as unlocked, by inode.
func (s *System) liveEntries() map[[2]uint64]Entry {
	out := map[[2]uint64]Entry{}
	if s.Alive == nil {
		return out
	}
	js, _ := journalsOf(s.Root, s.Alive)
	for _, j := range js {
		for _, e := range j.Unlocked {
			out[[2]uint64{e.Dev, e.Ino}] = e
		}
	}
	return out
}

// filter drops the targets another live transaction unlocked, and keeps
// their packages pending.
func (h holds) filter(targets []*Target, pending map[string]bool) []*Target {
	if len(h.inodes) == 0 {
		return targets
	}
	out := targets[:0:0]
	for _, t := range targets {
		if h.inodes[[2]uint64{t.Info.Dev, t.Info.Ino}] {
			for _, o := range t.Owners {
				pending[strings.SplitN(o.Pkg, ":", 2)[0]] = true
			}
			continue
		}
		out = append(out, t)
	}
	return out
}
