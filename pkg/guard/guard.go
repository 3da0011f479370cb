// Package guard owns debseal's capability guard: the systemd drop-ins that
// take CAP_LINUX_IMMUTABLE out of the bounding set of every service except
// the units allowed to run package management, and the reading of
// /proc that tells which running processes still hold it.
//
// One drop-in in the top-level service.d/ directory (systemd 246 and
// later) applies to every service unit. An allowed unit gets an empty
// drop-in of the same name in its own directory: systemd reads one file
// per drop-in name, the most specific directory's, so the allowed unit
// keeps whatever bounding set its own unit file gives it, neither more
// nor less.
//
// It does not write files or run systemctl: it says what the files are
// and parses what the kernel reports; the CLI writes them under the
// target root and reloads systemd.
package guard

import (
	"fmt"
	"path"
	"slices"
	"strings"
)

// CapLinuxImmutable is the capability's number (linux/capability.h).
const CapLinuxImmutable = 9

// DropInName is the file name of every drop-in the guard writes.
const DropInName = "90-debseal-guard.conf"

// unitDir is where the admin's units and drop-ins live, inside the root.
const unitDir = "/etc/systemd/system"

// GuardPath is the drop-in that applies to every service.
var GuardPath = path.Join(unitDir, "service.d", DropInName)

// marker starts every file the guard writes: what the guard removes is
// only what carries it.
const marker = "# Written by debseal setup --guard"

// guardContent is the drop-in every service gets.
const guardContent = marker + `: no service may clear the immutable
# flag of package files (CAP_LINUX_IMMUTABLE leaves the bounding set).
# Units allowed to run package management have an empty file of this
# name in their own drop-in directory. Remove with debseal teardown.
[Service]
CapabilityBoundingSet=~CAP_LINUX_IMMUTABLE
`

// DefaultAllow are the units that keep the capability whatever
// debseal.conf says: the ones that run package management (unattended
// upgrades, PackageKit, debseal's own boot-time recovery, root's cron
// jobs, which are the admin's own), and the ones interactive root logs in
// through (a shell inherits its login service's bounding set).
var DefaultAllow = []string{
	"apt-daily-upgrade.service",   // unattended-upgrades, from its timer
	"unattended-upgrades.service", // installs on shutdown when configured to
	"packagekit.service",
	"debseal-recover.service", // relocks at boot after a crash
	"cron.service",
	"anacron.service",
	"ssh.service",
	"ssh@.service", // per-connection sshd (socket activation)
	"getty@.service",
	"serial-getty@.service",
	"console-getty.service",
	"container-getty@.service",
}

// File is one drop-in: where it goes inside the root, and its content.
type File struct {
	Path    string
	Content []byte
}

// Files returns the drop-ins for allow (DefaultAllow plus the admin's
// guard-allow units): the guard itself first, then one per allowed unit,
// sorted.
func Files(allow []string) ([]File, error) {
	units, err := Units(allow)
	if err != nil {
		return nil, err
	}
	out := []File{{Path: GuardPath, Content: []byte(guardContent)}}
	for _, u := range units {
		out = append(out, File{Path: AllowPath(u), Content: []byte(allowContent(u))})
	}
	return out, nil
}

// Units returns DefaultAllow and allow together, checked, sorted, once each.
func Units(allow []string) ([]string, error) {
	units := slices.Clone(DefaultAllow)
	for _, u := range allow {
		if err := CheckUnit(u); err != nil {
			return nil, err
		}
		units = append(units, u)
	}
	slices.Sort(units)
	return slices.Compact(units), nil
}

// AllowPath is the drop-in that exempts unit.
func AllowPath(unit string) string {
	return path.Join(unitDir, unit+".d", DropInName)
}

func allowContent(unit string) string {
	return marker + ": " + unit + " keeps CAP_LINUX_IMMUTABLE\n" +
		"# (debseal's default list, or guard-allow in /etc/debseal/debseal.conf). This\n" +
		"# empty drop-in hides the guard's service.d/" + DropInName + " from this unit.\n"
}

// Ours reports whether content is a file the guard wrote.
func Ours(content []byte) bool {
	return strings.HasPrefix(string(content), marker)
}

// AllowedUnit returns the unit a drop-in path of the guard exempts, or ""
// when p is not one (the guard itself, another file).
func AllowedUnit(p string) string {
	dir, name := path.Split(p)
	dir = strings.TrimSuffix(dir, "/")
	if name != DropInName || path.Dir(dir) != unitDir {
		return ""
	}
	u, ok := strings.CutSuffix(path.Base(dir), ".d")
	if !ok || CheckUnit(u) != nil {
		return ""
	}
	return u
}

// CheckUnit accepts a service unit name as systemd spells one: letters,
// digits and ":-_.\@", a ".service" suffix, a template ("getty@.service")
// or an instance ("getty@tty1.service"), at most 255 bytes.
func CheckUnit(u string) error {
	base, ok := strings.CutSuffix(u, ".service")
	switch {
	case !ok:
		return fmt.Errorf("guard: %q is not a service unit (NAME.service)", u)
	case base == "" || len(u) > 255:
		return fmt.Errorf("guard: %q is not a valid unit name", u)
	case strings.Count(base, "@") > 1 || strings.HasPrefix(base, "@"):
		return fmt.Errorf("guard: %q is not a valid unit name (one '@' at most, after a prefix)", u)
	}
	for _, c := range base {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune(":-_.\\@", c)) {
			return fmt.Errorf("guard: %q is not a valid unit name (character %q)", u, c)
		}
	}
	return nil
}

// Allowed reports whether unit is covered by units: by its own name, or,
// for an instance (getty@tty1.service), by its template (getty@.service),
// as systemd applies a template's drop-ins to its instances.
func Allowed(unit string, units []string) bool {
	if slices.Contains(units, unit) {
		return true
	}
	if prefix, rest, ok := strings.Cut(unit, "@"); ok && rest != ".service" {
		return slices.Contains(units, prefix+"@.service")
	}
	return false
}
