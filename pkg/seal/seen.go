package seal

import (
	"time"

	"github.com/debseal/debseal/pkg/seen"
)

// Sightings are the targets an Apply left locked, as records of ev dated
// at, which must be no later than the moment the run first looked at them
// (before it planned: a target the plan found locked is not looked at
// again): a window that starts there holds whatever happened after.
// Targets that failed, or that a cancelled Apply never reached, are not
// sightings.
func Sightings(sum *Summary, ev seen.Event, at time.Time) []seen.Record {
	var out []seen.Record
	for _, o := range sum.Outcomes {
		if o.Err != nil {
			continue
		}
		if set, known := o.Target.Info.Immutable(); known && set {
			out = append(out, seen.Record{Dev: o.Target.Info.Dev, Ino: o.Target.Info.Ino, Time: at.UnixNano(), Event: ev})
		}
	}
	return out
}

// Released are the targets an unlocking Apply left mutable, as Gone
// records dated at, which must be no earlier than the unlock (the run's
// end): their earlier sightings no longer count.
func Released(sum *Summary, at time.Time) []seen.Record {
	var out []seen.Record
	for _, o := range sum.Outcomes {
		if o.Err != nil {
			continue
		}
		if set, known := o.Target.Info.Immutable(); known && !set {
			out = append(out, seen.Record{Dev: o.Target.Info.Dev, Ino: o.Target.Info.Ino, Time: at.UnixNano(), Event: seen.Gone})
		}
	}
	return out
}

// recordSeen writes what End saw: every target it left locked, and every
// inode the transaction unlocked that did not end locked (replaced by
// dpkg, removed, or not relockable): earlier sightings of those no longer
// count, so that a new file that gets the same inode number is never
// taken for a lifted one.
func (s *System) recordSeen(sum *Summary, j *Journal, start time.Time) error {
	recs := Sightings(sum, seen.Relock, start)
	if j != nil && len(j.Unlocked) > 0 {
		locked := make(map[[2]uint64]bool, len(recs))
		for _, r := range recs {
			locked[[2]uint64{r.Dev, r.Ino}] = true
		}
		now := time.Now().UnixNano()
		for _, e := range j.Unlocked {
			if !locked[[2]uint64{e.Dev, e.Ino}] {
				recs = append(recs, seen.Record{Dev: e.Dev, Ino: e.Ino, Time: now, Event: seen.Gone})
			}
		}
	}
	return seen.Write(s.Root, recs)
}
