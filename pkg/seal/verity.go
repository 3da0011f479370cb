package seal

import (
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/debseal/debseal/pkg/confined"
	"golang.org/x/sys/unix"
)

// verityFile records, per device, whether locks found that it takes
// fs-verity: the audit expects fs-verity on every sealed regular file of
// a device that does (a file without it was replaced outside dpkg, or
// could not take it: the lock warned), and never on one that does not.
const verityFile = confined.Own + "/verity"

// VerityDevices maps a device number to whether it takes fs-verity.
type VerityDevices map[uint64]bool

// LoadVerityDevices reads what locks found; a missing file means nothing
// is known (no lock with fs-verity ran). A malformed line is an error
// naming the file and line.
func LoadVerityDevices(root string) (VerityDevices, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.ReadFile(verityFile)
	if errors.Is(err, fs.ErrNotExist) {
		return VerityDevices{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return parseVerityDevices(string(b), r.Join(verityFile))
}

// parseVerityDevices reads "MAJOR:MINOR yes|no" lines.
func parseVerityDevices(s, name string) (VerityDevices, error) {
	out := VerityDevices{}
	if s == "" {
		return out, nil
	}
	for i, line := range strings.Split(strings.TrimSuffix(s, "\n"), "\n") {
		dev, val, ok := strings.Cut(line, " ")
		maj, min, ok2 := strings.Cut(dev, ":")
		ma, err1 := strconv.ParseUint(maj, 10, 32)
		mi, err2 := strconv.ParseUint(min, 10, 32)
		if !ok || !ok2 || err1 != nil || err2 != nil || (val != "yes" && val != "no") {
			return nil, fmt.Errorf("seal: %s:%d: %q is not \"MAJOR:MINOR yes|no\"", name, i+1, line)
		}
		out[unix.Mkdev(uint32(ma), uint32(mi))] = val == "yes"
	}
	return out, nil
}

func (v VerityDevices) format() string {
	devs := make([]uint64, 0, len(v))
	for d := range v {
		devs = append(devs, d)
	}
	sort.Slice(devs, func(i, j int) bool { return devs[i] < devs[j] })
	var b strings.Builder
	for _, d := range devs {
		fmt.Fprintf(&b, "%s %s\n", DevName(d), map[bool]string{true: "yes", false: "no"}[v[d]])
	}
	return b.String()
}

// DevName is a device number as "MAJOR:MINOR".
func DevName(dev uint64) string { return fmt.Sprintf("%d:%d", unix.Major(dev), unix.Minor(dev)) }

// RecordVerity merges what a lock found about devices into the record and
// returns the devices it found without fs-verity that the record did not
// know as such (the ones to note: once per device, not once per run).
// Nothing is written when nothing changed.
func RecordVerity(root string, v *VeritySummary) (newlyUnsupported []uint64, err error) {
	if len(v.Devices) == 0 {
		return nil, nil
	}
	old, err := LoadVerityDevices(root)
	if err != nil {
		return nil, err
	}
	merged := VerityDevices{}
	for d, ok := range old {
		merged[d] = ok
	}
	for d, ok := range v.Devices {
		if was, known := old[d]; !ok && (!known || was) {
			newlyUnsupported = append(newlyUnsupported, d)
		}
		merged[d] = ok
	}
	sort.Slice(newlyUnsupported, func(i, j int) bool { return newlyUnsupported[i] < newlyUnsupported[j] })
	if merged.format() == old.format() {
		return newlyUnsupported, nil
	}
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	if err := r.WriteFileAtomic(verityFile, []byte(merged.format()), 0o644); err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return newlyUnsupported, nil
}

// verity reports whether the policy wants fs-verity on what is locked.
func (s *System) verity() bool { return s.Policy != nil && s.Policy.Verity.Enabled() }
