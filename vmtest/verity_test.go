package vmtest

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// verity is issue 11's scenario: fs-verity on the sealed guest, whose root
// is ext4 with the verity feature (scripts/vm-image.sh) and whose debseal
// has the default verity = auto. The install enabled fs-verity on every
// sealed file; the kernel's digest of a file is fsverity-utils' digest of
// its bytes and the manifest's; with the immutable flag lifted the kernel
// still refuses every in-place write and the file stays as it was (the
// issue's "done when"); a file replaced by rename has no fs-verity, which
// the audit reports and a lock repairs; the upgrade set through apt exits
// 0 and its new files get fs-verity and the flag again; the audit then
// checks content by measuring, not reading. The checks of the files use
// lsattr, fsverity and sha256sum, not debseal.
func (e *env) verity(t *testing.T, sealed string) {
	g := e.boot(t, e.overlay(t, "verity", sealed))
	g.run("apt-get -q update")
	s := g.seal()
	s.allLocked(t, "after install")
	s.allVerity(t, "after install")
	t.Logf("%d package files, %d locked, %d with fs-verity", s.files, s.locked, s.verity)
	if a := g.attrs(target); !strings.Contains(a, "V") || !strings.Contains(a, "i") {
		t.Errorf("lsattr %s = %q, want V and i", target, a)
	}

	// The kernel's digest, fsverity-utils' digest of the bytes, the
	// manifest's: one value.
	d := strings.Fields(g.run(`fsverity measure ` + target + ` | cut -d' ' -f1
fsverity digest ` + target + ` | cut -d' ' -f1
awk '$1 == "f" && $9 == "` + target + `" {print "sha256:" $8}' /var/lib/debseal/manifests/coreutils_*.manifest`))
	if len(d) != 3 || d[0] != d[1] || d[1] != d[2] || !strings.HasPrefix(d[0], "sha256:") {
		t.Errorf("%s: fsverity measure, fsverity digest, the manifest's digest: %q, want three equal sha256: digests", target, d)
	}

	// The flag lifted, every in-place write refused by the kernel; on a
	// copy without fs-verity the same writes work (the control).
	out := g.run(inPlaceScript(target) + inPlaceScript("/root/yes.plain"))
	for _, w := range []string{"append", "dd", "truncate"} {
		if l := grepLines(out, target+" "+w+": "); len(l) != 1 || !strings.Contains(l[0], ": refused: ") || !strings.Contains(l[0], "Operation not permitted") {
			t.Errorf("%s with the flag lifted: %s was not refused with EPERM:\n%s", target, w, out)
		}
		if len(grepLines(out, "/root/yes.plain "+w+": written")) != 1 {
			t.Errorf("the control, a copy without fs-verity: %s did not write:\n%s", w, out)
		}
	}
	if !strings.Contains(out, target+" unchanged") {
		t.Errorf("%s changed under the refused writes:\n%s", target, out)
	}
	if a := g.attrs(target); !strings.Contains(a, "V") || strings.Contains(a, "i") {
		t.Errorf("lsattr %s after chattr -i = %q, want V without i", target, a)
	}
	g.run("chattr +i " + target)

	// Replaced by rename, as only dpkg should: no fs-verity on the new
	// inode, and the audit says so; a lock gives it back.
	g.run(`set -e
chattr -i ` + target + `
cp ` + target + ` ` + target + `.new
mv ` + target + `.new ` + target)
	if a := g.attrs(target); strings.Contains(a, "V") {
		t.Errorf("lsattr %s after mv over it = %q: the new inode has fs-verity", target, a)
	}
	st, findings, _ := g.auditJSON("coreutils")
	if st != 1 || !hasFinding(findings, "verity-lost", target) {
		t.Errorf("audit of coreutils after mv over %s: exit %d, findings %v; want exit 1 and verity-lost for it", target, st, findings)
	}
	g.run("debseal lock coreutils")
	if a := g.attrs(target); !strings.Contains(a, "V") || !strings.Contains(a, "i") {
		t.Errorf("lsattr %s after debseal lock coreutils = %q, want V and i", target, a)
	}
	if st, findings, sum := g.auditJSON("coreutils"); st != 0 || len(findings) > 0 || sum.Measured == 0 {
		t.Errorf("audit of coreutils after the lock: exit %d, findings %v, verity_measured %d", st, findings, sum.Measured)
	}

	// An unlock says which files stay un-writable, and how to change them.
	if out := g.run("debseal unlock coreutils"); !strings.Contains(out, "fs-verity: ") || !strings.Contains(out, " of these files keep it") || !strings.Contains(out, "mv it over") {
		t.Errorf("debseal unlock coreutils does not say its files keep fs-verity:\n%s", out)
	}
	g.run("debseal lock coreutils")

	// The upgrade set through apt: dpkg replaces the files, the relock
	// enables fs-verity on the new inodes before the flag.
	before := g.pkgFiles(e.upgrade)
	if r := g.try(stepTimeout, aptGet+"upgrade"); r.Status != 0 {
		t.Fatalf("apt-get upgrade with fs-verity: exit %d:\n%s", r.Status, r.Out)
	}
	if r := g.try(stepTimeout, "dpkg --audit"); r.Status != 0 || strings.TrimSpace(r.Out) != "" {
		t.Errorf("dpkg --audit after the upgrade (status %d):\n%s", r.Status, r.Out)
	}
	after := g.pkgFiles(e.upgrade)
	replaced := 0
	var bad []string
	for p, f := range after {
		if b, ok := before[p]; ok && b.ino == f.ino {
			continue
		}
		replaced++
		if !strings.Contains(f.attrs, "V") || !strings.Contains(f.attrs, "i") {
			bad = append(bad, p+" "+f.attrs)
		}
	}
	if len(bad) > 0 {
		slices.Sort(bad)
		t.Errorf("after the upgrade: %d of the %d new inodes lack V or i: %v", len(bad), replaced, bad[:min(20, len(bad))])
	}
	if replaced == 0 {
		t.Errorf("the upgrade replaced none of the %d files of %v", len(after), e.upgrade)
	}
	t.Logf("the upgrade replaced %d of the %d sealed files of its %d packages", replaced, len(after), len(e.upgrade))
	s = g.seal()
	s.allLocked(t, "after the upgrade")
	s.allVerity(t, "after the upgrade")

	// The audit: clean, content checked by the kernel's digests, no
	// file read.
	st, findings, sum := g.auditJSON("")
	if st != 0 || len(findings) > 0 || sum.Measured == 0 || sum.Read != 0 {
		t.Errorf("audit after the upgrade: exit %d, findings %v, verity_measured %d, files_read %d; want 0, none, > 0, 0", st, findings, sum.Measured, sum.Read)
	}
	t.Logf("audit: %d files, %d measured by fs-verity, %d read (%d bytes), %.1fs", sum.Files, sum.Measured, sum.Read, sum.Bytes, sum.Seconds)

	var status struct {
		Verity *struct {
			Mode    string `json:"mode"`
			Files   int    `json:"files"`
			Enabled int    `json:"enabled"`
		} `json:"verity"`
	}
	if err := json.Unmarshal([]byte(g.run("debseal status --json")), &status); err != nil {
		t.Errorf("debseal status --json: %v", err)
	} else if status.Verity == nil {
		t.Errorf("debseal status --json has no verity object")
	} else if v := status.Verity; v.Mode != "auto" || v.Files == 0 || v.Enabled != v.Files {
		t.Errorf("debseal status --json: verity %+v, want mode auto and every file enabled", *v)
	}
	g.cut()
}

// inPlaceScript lifts f's flag and writes into it in place three ways
// (append, dd conv=notrunc, truncate), saying of each "F W: refused: ERR"
// or "F W: written", then whether its content is what it was. It works on
// a copy of /usr/bin/yes when f is under /root.
func inPlaceScript(f string) string {
	q := shq(f)
	return `f=` + q + `
case $f in /root/*) cp /usr/bin/yes "$f" ;; esac
sum=$(sha256sum "$f")
chattr -i "$f"
if err=$( (printf x >>"$f") 2>&1); then echo "$f append: written"; else echo "$f append: refused: $err"; fi
if err=$(dd if=/dev/zero of="$f" bs=1 count=1 conv=notrunc 2>&1); then echo "$f dd: written"; else echo "$f dd: refused: $err"; fi
if err=$(truncate -s 1 "$f" 2>&1); then echo "$f truncate: written"; else echo "$f truncate: refused: $err"; fi
if [ "$(sha256sum "$f")" = "$sum" ]; then echo "$f unchanged"; else echo "$f changed"; fi
`
}

// pkgFile is a sealed file of a package: its inode and lsattr's flags.
type pkgFile struct{ ino, attrs string }

// pkgFiles returns the regular files of pkgs the default policy locks (not
// conffiles, not under /var /run ...), with their inodes and flags.
func (g *guest) pkgFiles(pkgs []string) map[string]pkgFile {
	g.t.Helper()
	var q []string
	for _, p := range pkgs {
		q = append(q, shq(p))
	}
	out := g.run(`set -eu
w=$(mktemp -d)
dpkg-query -W -f='${Conffiles}\n' | awk 'NF>=2{print $1}' | sort -u >$w/conf
dpkg -L ` + strings.Join(q, " ") + ` | sort -u | grep -Ev '^/(var|run|tmp|home|srv|dev|proc|sys)(/|$)' | comm -23 - $w/conf |
	while IFS= read -r f; do if [ -f "$f" ] && [ ! -L "$f" ]; then printf '%s\n' "$f"; fi; done >$w/files
tr '\n' '\0' <$w/files | xargs -0 -r stat -c '%i %n' >$w/ino
tr '\n' '\0' <$w/files | xargs -0 -r lsattr -d >$w/attr
awk 'FILENAME==ARGV[1] {a[substr($0, index($0," ")+1)]=$1; next} {p=substr($0, index($0," ")+1); print $1, a[p], p}' $w/attr $w/ino
rm -rf $w`)
	files := map[string]pkgFile{}
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if f := strings.SplitN(l, " ", 3); len(f) == 3 {
			files[f[2]] = pkgFile{ino: f[0], attrs: f[1]}
		}
	}
	if len(files) == 0 {
		g.t.Fatalf("no sealed files in %v:\n%s", pkgs, out)
	}
	return files
}

// auditSummary is the audit's JSON summary line, the fields the scenario
// reads.
type auditSummary struct {
	Files    int     `json:"files"`
	Read     int     `json:"files_read"`
	Measured int     `json:"verity_measured"`
	Bytes    int64   `json:"bytes_read"`
	Seconds  float64 `json:"duration_seconds"`
}

// auditJSON runs debseal audit --format json (of pkgs, or everything) and
// returns its exit status, its findings as "kind path", and its summary.
func (g *guest) auditJSON(pkgs string) (int, []string, auditSummary) {
	g.t.Helper()
	r := g.try(stepTimeout, "debseal audit --format json "+pkgs)
	var findings []string
	var sum auditSummary
	seen := false
	for _, l := range strings.Split(r.Out, "\n") {
		if !strings.HasPrefix(l, "{") {
			continue
		}
		var f struct {
			Type, Kind, Path string
			Info             bool
		}
		if err := json.Unmarshal([]byte(l), &f); err != nil {
			g.t.Fatalf("audit: a line that is not JSON: %v: %s", err, l)
		}
		switch {
		case f.Type == "summary":
			if err := json.Unmarshal([]byte(l), &sum); err != nil {
				g.t.Fatalf("audit summary: %v: %s", err, l)
			}
			seen = true
		case f.Type == "finding" && !f.Info:
			findings = append(findings, f.Kind+" "+f.Path)
		}
	}
	if !seen {
		g.t.Fatalf("audit: no summary line (exit %d):\n%s", r.Status, r.Out)
	}
	return r.Status, findings, sum
}

// hasFinding reports whether findings (as auditJSON returns them) have one
// of kind for path.
func hasFinding(findings []string, kind, path string) bool {
	for _, f := range findings {
		if f == kind+" "+path {
			return true
		}
	}
	return false
}
