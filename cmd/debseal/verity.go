package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/debseal/debseal/pkg/fsattr"
	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/progress"
	"github.com/debseal/debseal/pkg/seal"
)

// lockWith locks (or unlocks) targets the way the policy says: with
// fs-verity enabled first on a lock when verity is not "no".
func lockWith(ctx context.Context, sys *system, targets []*seal.Target, on bool, prog progress.Meter) *seal.Summary {
	return seal.ApplyWith(ctx, sys.fs, targets, on, seal.Options{Progress: prog, Verity: on && sys.pol.Verity.Enabled()})
}

// verityLines says what a lock did about fs-verity, as lines for the
// command's output or the hook's log: how many files got it, each device
// without it (the first time a lock finds it so, or every time with
// verity = yes), and every file left without it on a device that takes it.
// newly are the devices the record did not know without it
// (seal.RecordVerity).
func verityLines(mode policy.Verity, v *seal.VeritySummary, newly []uint64) (info, warn []string) {
	if !mode.Enabled() {
		return nil, nil
	}
	if v.Enabled > 0 {
		info = append(info, fmt.Sprintf("fs-verity: enabled on %d files (%d had it)", v.Enabled, v.Already))
	}
	isNew := map[uint64]bool{}
	for _, d := range newly {
		isNew[d] = true
	}
	for dev, u := range v.Unsupported {
		line := fmt.Sprintf("fs-verity: not available on device %s (%s): %d files locked without it; %s",
			seal.DevName(dev), unsupportedWhy(u.Err), u.Files, verityHint)
		switch {
		case mode == policy.VerityYes:
			warn = append(warn, line)
		case isNew[dev]:
			info = append(info, line)
		}
	}
	for _, e := range v.Warnings {
		warn = append(warn, fmt.Sprintf("fs-verity: not enabled, the file is locked without it: %v", e))
	}
	return info, warn
}

// verityKept counts the regular files an unlock let go of that have
// fs-verity, which the kernel never takes back: unlocked, they can be
// replaced (as dpkg does), not written into.
func verityKept(sum *seal.Summary) int {
	n := 0
	for _, oc := range sum.Outcomes {
		if oc.Err != nil || !oc.Target.Info.IsRegular() {
			continue
		}
		if set, _ := oc.Target.Info.Verity(); set {
			n++
		}
	}
	return n
}

// verityKeptLine says so after an unlock, or nothing when no file has it.
func verityKeptLine(sum *seal.Summary) string {
	n := verityKept(sum)
	if n == 0 {
		return ""
	}
	return fmt.Sprintf("fs-verity: %d of these files keep it (the kernel cannot take it back): replace such a file (write a copy, then mv it over the file); writing into it fails with \"Operation not permitted\"", n)
}

// verityHint is what an admin does about a filesystem without fs-verity.
const verityHint = "on ext4: tune2fs -O verity DEVICE (irreversible; see the README), or verity = no in debseal.conf"

// unsupportedWhy names the filesystem and the kernel's answer.
func unsupportedWhy(err error) string {
	var ue *fsattr.UnsupportedError
	if errors.As(err, &ue) {
		return fmt.Sprintf("%s: %v", ue.FS, ue.Err)
	}
	return fmt.Sprint(err)
}

// printVerity records the devices a lock found for the audit (root's
// state) and writes verityLines to a command's output and its errors.
func printVerity(out, errw io.Writer, root string, mode policy.Verity, v *seal.VeritySummary) error {
	newly, err := seal.RecordVerity(root, v)
	if err != nil {
		err = fmt.Errorf("recording which filesystems take fs-verity: %w", err)
	}
	info, warn := verityLines(mode, v, newly)
	for _, l := range info {
		fmt.Fprintln(out, l)
	}
	for _, l := range warn {
		fmt.Fprintln(errw, "debseal: warning: "+l)
	}
	return err
}
