package vmtest

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

// verityBench measures fs-verity's cost and gain on the booted guest
// (make bench runs it: scripts/bench/verity.sh; TestVM only with
// DEBSEAL_VM_BENCH set). On a fresh copy of the image, debseal installed
// without sealing:
//
//  1. lock --all with verity = no, then (unlocked again) with verity =
//     auto: the ratio is what enabling fs-verity costs (the kernel reads
//     every file once to build its tree). A first lock and unlock, not
//     measured, leave the manifests both measured locks find, so that
//     the first one does not pay for them alone;
//  2. the content audit of the sealed, verity system (no incremental
//     cache: every file's content checked) against dpkg --verify on the
//     same system, each with the page cache dropped first;
//  3. the same audit with --full (every file read), for reference, and
//     the floor of any audit: a walk of the filesystem that stats every
//     file (find / -xdev -printf %s), cold too;
//  4. the Merkle trees' space: df before and after step 1's second lock.
//
// Times are bash's (wall, and user+sys of the command and its children).
// Each line of the result is "name wall user sys".
func (e *env) verityBench(t *testing.T) {
	g := e.boot(t, e.overlay(t, "bench", e.img+"/root.img"))
	g.run(`set -e
mkdir -p /etc/default
printf 'SEAL_ON_INSTALL=no\nMODE=dpkg-hooks\nTEXTFILE_DIR=\n' >/etc/default/debseal
apt-get -q update >/dev/null
cp /srv/repo/debseal_*.deb /root/
cd /root
` + aptGet + `install ./debseal_*.deb >/dev/null`)
	out := g.run(`set -e
TIMEFORMAT='%R %U %S'
cold() { sync; echo 3 >/proc/sys/vm/drop_caches; }
measure() { local name=$1; shift; cold; { time "$@" >/dev/null 2>&1; } 2>/tmp/t || true; echo "$name $(tail -n1 /tmp/t)"; }
conf=/etc/debseal/debseal.conf
echo "packages $(dpkg-query -W -f='${db:Status-Status}\n' | grep -c '^installed$') 0 0"
echo 'verity = no' >>"$conf"
debseal lock --all >/dev/null
debseal unlock --all >/dev/null
measure lock-without debseal lock --all
debseal unlock --all >/dev/null
sed -i 's/^verity = no$/verity = auto/' "$conf"
before=$(df -B1 --output=used / | tail -n1)
measure lock-with debseal lock --all
after=$(df -B1 --output=used / | tail -n1)
echo "space $((after - before)) 0 0"
rm -f /var/lib/debseal/audit.cache
measure audit debseal audit --no-cache
measure dpkg-verify dpkg --verify
measure walk find / -xdev -printf '%s\n'
measure audit-full debseal audit --no-cache --full
debseal audit --no-cache --format json | tail -n1 | sed -n 's/.*"files_read":\([0-9]*\).*"verity_measured":\([0-9]*\).*/counts \1 \2 0/p'
debseal status --json | tr -d ' \n' | sed -n 's/.*"verity":{"mode":"[a-z]*","files":\([0-9]*\),"enabled":\([0-9]*\),"tree_bytes":\([0-9]*\).*/coverage \1 \2 \3/p'`)
	res := map[string][3]float64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		f := strings.Fields(line)
		if len(f) != 4 {
			t.Fatalf("bench output line %q", line)
		}
		var v [3]float64
		for i := range v {
			x, err := strconv.ParseFloat(f[i+1], 64)
			if err != nil {
				t.Fatalf("bench output line %q: %v", line, err)
			}
			v[i] = x
		}
		res[f[0]] = v
	}
	for _, k := range []string{"packages", "lock-without", "lock-with", "space", "audit", "dpkg-verify", "walk", "audit-full", "counts", "coverage"} {
		if _, ok := res[k]; !ok {
			t.Fatalf("bench: no %s line in:\n%s", k, out)
		}
	}
	cpu := func(k string) float64 { return res[k][1] + res[k][2] }
	ratio := func(a, b string) string {
		return fmt.Sprintf("wall %.3fx, CPU %.3fx (%.2fs/%.2fs wall, %.2fs/%.2fs CPU)",
			res[a][0]/res[b][0], cpu(a)/cpu(b), res[a][0], res[b][0], cpu(a), cpu(b))
	}
	cov := res["coverage"]
	t.Logf("bench verity: %.0f packages, %.0f of %.0f regular sealed files with fs-verity, Merkle trees %.1f MB (statx estimate), df grew %.1f MB",
		res["packages"][0], cov[1], cov[0], cov[2]/1e6, res["space"][0]/1e6)
	t.Logf("bench verity: audit (no cache, cold): %.0f files read, %.0f measured by fs-verity", res["counts"][0], res["counts"][1])
	t.Logf("bench verity: audit / dpkg --verify, cold cache: %s", ratio("audit", "dpkg-verify"))
	t.Logf("bench verity: audit --full / dpkg --verify, cold cache: %s", ratio("audit-full", "dpkg-verify"))
	t.Logf("bench verity: the floor, a walk that stats every file (find / -xdev) / dpkg --verify, cold cache: %s", ratio("walk", "dpkg-verify"))
	t.Logf("bench verity: audit / that walk, cold cache: %s", ratio("audit", "walk"))
	t.Logf("bench verity: lock --all with fs-verity / without: %s", ratio("lock-with", "lock-without"))
	if res["counts"][1] == 0 || cov[1] == 0 {
		t.Errorf("nothing was measured by fs-verity: the image's filesystem or the lock did not enable it")
	}
}
