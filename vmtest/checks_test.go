package vmtest

import (
	"strconv"
	"strings"
	"testing"
	"time"
)

// sealScript reports, with lsattr and dpkg's own files (no debseal), the
// lock state of every regular file an installed package owns that the
// default policy locks: not a conffile, not under /var /run /tmp /home
// /srv /dev /proc /sys; a file another package (or the admin: a local
// diversion, as the divert mode's of /usr/bin/dpkg) diverts is checked
// where it is, at its divert-to path. Output lines:
//
//	files N       files checked
//	locked N      of them immutable
//	verity N      of them with fs-verity (lsattr's V)
//	N PATH        one without fs-verity (the first 50)
//	M STATUS PKG PATH  a mutable one, STATUS its package's dpkg status (ii...)
//	C PATH        a conffile that is immutable (never allowed)
//	J PATH        a path a debseal journal names
const sealScript = `set -u
w=$(mktemp -d)
cd /var/lib/dpkg/info
excl='^/(var|run|tmp|home|srv|dev|proc|sys)(/|$)'
dpkg-query -W -f='${Conffiles}\n' | awk 'NF>=2{print $1}' | sort -u >$w/conf
dpkg-divert --list >$w/div
# each listed path with its package's status, in one awk (a process per
# package costs seconds under emulation): info/PKG:ARCH.list, or
# info/PKG.list for a package that is not Multi-Arch: same
# Diversions: "local diversion of X to Y", "diversion of X to Y by PKG".
dpkg-query -W -f='${db:Status-Abbrev}|${binary:Package}|${Package}\n' | awk -F'|' -v divs=$w/div 'BEGIN {
	while ((getline d < divs) > 0) {
		n = split(d, a, " ")
		if (a[1] == "local" && n == 6) { to[a[4]] = a[6]; by[a[4]] = "" }
		else if (a[1] == "diversion" && n == 7) { to[a[3]] = a[5]; by[a[3]] = a[7] }
	}
}
function out(st, p) {
	if ((p in to) && by[p] != pkg) p = to[p]
	print st, pkg, p
}
{
	st = $1; sub(/ +$/, "", st); pkg = $3
	f = $2 ".list"
	if ((getline l < f) <= 0) { close(f); f = $3 ".list"; if ((getline l < f) <= 0) { close(f); next } }
	do out(st, l); while ((getline l < f) > 0)
	close(f)
}' | grep -Ev "^[^ ]+ [^ ]+ ($excl)" | sort -k3 -u >$w/all
cut -d' ' -f3- $w/all | sort | comm -23 - $w/conf >$w/paths
tr '\n' '\0' <$w/paths | xargs -0 -r stat -c '%F|%n' 2>/dev/null |
	awk -F'|' '$1=="regular file"||$1=="regular empty file"{print substr($0, index($0,"|")+1)}' >$w/files
echo "files $(wc -l <$w/files)"
tr '\n' '\0' <$w/files | xargs -0 -r lsattr -d >$w/attrs 2>&1
echo "locked $(awk '$1 ~ /i/' $w/attrs | wc -l)"
echo "verity $(awk '$1 ~ /V/' $w/attrs | wc -l)"
awk '$1 !~ /V/ {print "N", substr($0, index($0," ")+1)}' $w/attrs | head -n 50
awk '$1 !~ /i/ {print substr($0, index($0," ")+1)}' $w/attrs | sort >$w/mut
# the status of each mutable file's package
awk 'FILENAME==ARGV[1] {m[$0]=1; next} {p=$0; sub(/^[^ ]+ [^ ]+ /, "", p); if (p in m) print "M", $1, $2, p}' $w/mut $w/all
tr '\n' '\0' <$w/conf | xargs -0 -r lsattr -d 2>/dev/null | awk '$1 ~ /i/ {print "C", substr($0, index($0," ")+1)}'
cat /var/lib/debseal/journal/* 2>/dev/null | grep -o '"path": *"[^"]*"' | sed 's/^"path": *"//; s/"$//' | sort -u | sed 's/^/J /'
rm -rf $w
`

// sealState is what sealScript found.
type sealState struct {
	files, locked int
	verity        int                // files with fs-verity
	noVerity      []string           // the first of those without it
	mutable       map[string]mutable // path -> its package
	lockedConf    []string
	journal       map[string]bool
}

func (g *guest) seal() sealState {
	g.t.Helper()
	start := time.Now()
	out := g.run(sealScript)
	defer func() { g.t.Logf("seal check: %v", time.Since(start).Round(100*time.Millisecond)) }()
	s := sealState{mutable: map[string]mutable{}, journal: map[string]bool{}}
	for _, l := range strings.Split(out, "\n") {
		f := strings.SplitN(l, " ", 2)
		if len(f) < 2 {
			continue
		}
		switch f[0] {
		case "files":
			s.files, _ = strconv.Atoi(f[1])
		case "locked":
			s.locked, _ = strconv.Atoi(f[1])
		case "verity":
			s.verity, _ = strconv.Atoi(f[1])
		case "N":
			s.noVerity = append(s.noVerity, f[1])
		case "M":
			if m := strings.SplitN(f[1], " ", 3); len(m) == 3 {
				s.mutable[m[2]] = mutable{status: m[0], pkg: m[1]}
			}
		case "C":
			s.lockedConf = append(s.lockedConf, f[1])
		case "J":
			s.journal[f[1]] = true
		}
	}
	if s.files < 1000 {
		g.t.Fatalf("seal check saw %d package files; the check is broken:\n%s", s.files, out)
	}
	return s
}

// allLocked fails unless every package file is immutable and no conffile is.
func (s sealState) allLocked(t *testing.T, when string) {
	t.Helper()
	if len(s.mutable) > 0 || s.locked != s.files {
		t.Errorf("%s: %d of %d package files locked; mutable: %s", when, s.locked, s.files, sample(s.mutable))
	}
	if len(s.lockedConf) > 0 {
		t.Errorf("%s: conffiles locked: %v", when, s.lockedConf)
	}
}

// attrs returns lsattr's flags of p.
func (g *guest) attrs(p string) string {
	g.t.Helper()
	f := strings.Fields(g.run("lsattr -d " + shq(p)))
	if len(f) == 0 {
		g.t.Fatalf("lsattr -d %s: no output", p)
	}
	return f[0]
}

// immutable reports whether p has the flag, as lsattr shows it.
func (g *guest) immutable(p string) bool {
	g.t.Helper()
	return strings.Contains(g.attrs(p), "i")
}

// allVerity fails unless every package file has fs-verity.
func (s sealState) allVerity(t *testing.T, when string) {
	t.Helper()
	if s.verity != s.files {
		t.Errorf("%s: %d of %d package files have fs-verity; without it: %v", when, s.verity, s.files, s.noVerity)
	}
}

// mutable is a package file found without the flag: its package and that
// package's dpkg status (db:Status-Abbrev: ii, iU, iHR ...).
type mutable struct{ status, pkg string }

func sample(m map[string]mutable) string {
	var b strings.Builder
	n := 0
	for p, mu := range m {
		if n == 20 {
			b.WriteString(" ...")
			break
		}
		b.WriteString(" " + p + "(" + mu.pkg + " " + mu.status + ")")
		n++
	}
	return b.String()
}

// unitRan reports how a oneshot unit did in this boot: whether it started,
// and its Result and exit status as systemctl shows them.
func (g *guest) unitRan(unit string) (ran bool, result string, status string) {
	g.t.Helper()
	out := g.run("systemctl show -p ExecMainStartTimestampMonotonic -p Result -p ExecMainStatus " + unit)
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(strings.TrimSpace(l), "=")
		switch k {
		case "ExecMainStartTimestampMonotonic":
			ran = v != "" && v != "0"
		case "Result":
			result = v
		case "ExecMainStatus":
			status = v
		}
	}
	return ran, result, status
}
