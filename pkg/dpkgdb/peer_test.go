package dpkgdb

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/testutil"
)

// TestPeerDpkgQuery reads this machine's own dpkg database (read-only) and
// checks, for every package, that the file list, conffiles, state and
// version equal what dpkg-query says.
func TestPeerDpkgQuery(t *testing.T) {
	const admindir = "/var/lib/dpkg"
	if _, err := os.Stat(admindir + "/status"); err != nil {
		testutil.Skip(t, "no dpkg database on this machine: %v", err)
	}
	testutil.RequireCommand(t, "dpkg-query")
	db, err := Open(admindir)
	if err != nil {
		t.Fatal(err)
	}

	// States, versions and conffiles for all packages in one call.
	out, err := exec.Command("dpkg-query", "-W", "-f",
		"@@${binary:Package}\t${Status}\t${Version}\n${Conffiles}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query -W: %v", err)
	}
	type peer struct {
		status, version string
		conffiles       []string
	}
	peers := map[string]*peer{}
	var cur *peer
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "@@") {
			f := strings.SplitN(line[2:], "\t", 3)
			cur = &peer{status: f[1], version: f[2]}
			peers[f[0]] = cur
		} else if strings.TrimSpace(line) != "" {
			cur.conffiles = append(cur.conffiles, strings.TrimSpace(line))
		}
	}

	var withFiles []*Package
	checked := 0
	for _, p := range db.Packages {
		key := p.Name
		if p.Arch != "" && p.MultiArch == "same" {
			key += ":" + p.Arch
		}
		pr := peers[key]
		if pr == nil {
			t.Errorf("%s: not listed by dpkg-query", key)
			continue
		}
		want := p.Want.String() + " " + map[bool]string{false: "ok", true: "reinstreq"}[p.ReinstReq] + " " + p.State.String()
		if pr.status != want || pr.version != p.Version {
			t.Errorf("%s: status %q version %q, dpkg-query says %q %q", key, want, p.Version, pr.status, pr.version)
		}
		var cf []string
		for _, c := range p.Conffiles {
			s := c.Path + " " + c.Hash
			if c.Obsolete {
				s += " obsolete"
			}
			if c.RemoveOnUpgrade {
				s += " remove-on-upgrade"
			}
			cf = append(cf, s)
		}
		if !reflect.DeepEqual(cf, pr.conffiles) {
			t.Errorf("%s: conffiles %q, dpkg-query says %q", key, cf, pr.conffiles)
		}
		if p.HasFiles() {
			withFiles = append(withFiles, p)
		}
		checked++
	}

	// File lists, in batches (dpkg-query -L separates packages by a blank
	// line and adds diversion notes, which we drop).
	for start := 0; start < len(withFiles); start += 200 {
		batch := withFiles[start:min(start+200, len(withFiles))]
		args := []string{"-L"}
		for _, p := range batch {
			args = append(args, p.Name+":"+archOrAll(p))
		}
		out, err := exec.Command("dpkg-query", args...).Output()
		if err != nil {
			t.Fatalf("dpkg-query -L: %v", err)
		}
		lists := splitLists(out)
		if len(lists) != len(batch) {
			t.Fatalf("dpkg-query -L returned %d lists for %d packages", len(lists), len(batch))
		}
		for i, p := range batch {
			got, err := db.Files(p)
			if err != nil {
				t.Errorf("%s: %v", p.ID(), err)
				continue
			}
			if !reflect.DeepEqual(got, lists[i]) {
				t.Errorf("%s: %d files, dpkg-query -L lists %d (first difference: %s)", p.ID(), len(got), len(lists[i]), firstDiff(got, lists[i]))
			}
		}
	}
	t.Logf("checked %d packages (%d with file lists) against dpkg-query", checked, len(withFiles))
	peerSearch(t, db, withFiles)
}

// peerSearch compares Listing with dpkg-query -S on a sample of paths.
func peerSearch(t *testing.T, db *DB, pkgs []*Package) {
	var sample []string
	seen := map[string]bool{}
	n := 0
	for _, p := range pkgs {
		files, _ := db.Files(p)
		for _, f := range files {
			n++
			if n%97 == 0 && !seen[f] && f != "/" && !strings.ContainsAny(f, "*?[]\\") {
				seen[f] = true
				sample = append(sample, f)
			}
		}
	}
	if len(sample) > 1500 {
		sample = sample[:1500]
	}
	out, err := exec.Command("dpkg-query", append([]string{"-S"}, sample...)...).Output()
	if err != nil {
		t.Fatalf("dpkg-query -S: %v", err)
	}
	want := map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if strings.HasPrefix(line, "diversion by ") || strings.HasPrefix(line, "local diversion ") {
			continue
		}
		owners, path, ok := strings.Cut(line, ": ")
		if !ok {
			t.Fatalf("dpkg-query -S printed %q", line)
		}
		want[path] = append(want[path], strings.Split(owners, ", ")...)
	}
	got := db.Listing(sample)
	for _, f := range sample {
		// dpkg-query names a package without its architecture unless
		// it is Multi-Arch: same.
		var ids []string
		for _, p := range got[f] {
			if p.MultiArch == "same" {
				ids = append(ids, p.ID())
			} else {
				ids = append(ids, p.Name)
			}
		}
		w := want[f]
		sort.Strings(ids)
		sort.Strings(w)
		if !reflect.DeepEqual(ids, w) {
			t.Errorf("Listing()[%s] = %v, dpkg-query -S says %v", f, ids, w)
		}
	}
	t.Logf("checked the owners of %d paths against dpkg-query -S", len(sample))
}

func archOrAll(p *Package) string {
	if p.Arch == "" {
		return "all"
	}
	return p.Arch
}

func splitLists(out []byte) [][]string {
	var lists [][]string
	var cur []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	started := false
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			lists = append(lists, cur)
			cur, started = nil, false
			continue
		}
		started = true
		if line == "/." {
			line = "/" // dpkg lists the root as "/."; we normalise it
		}
		if strings.HasPrefix(line, "/") {
			cur = append(cur, line)
		}
	}
	if started || cur != nil {
		lists = append(lists, cur)
	}
	return lists
}

func firstDiff(a, b []string) string {
	for i := 0; i < len(a) && i < len(b); i++ {
		if a[i] != b[i] {
			return a[i] + " vs " + b[i]
		}
	}
	if len(a) > len(b) {
		return "extra " + a[len(b)]
	}
	if len(b) > len(a) {
		return "missing " + b[len(a)]
	}
	return "none"
}

// BenchmarkOwners compares the two ways of finding the owners of a few
// paths on this machine's database: Listing, and parsing every list.
func BenchmarkOwners(b *testing.B) {
	db, err := Open("/var/lib/dpkg")
	if err != nil {
		b.Skipf("no dpkg database: %v", err)
	}
	paths := []string{"/usr/share/debconf/confmodule", "/usr/bin/ls", "/usr/sbin/nothing"}
	b.Run("Listing", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			db.Listing(paths)
		}
	})
	b.Run("Files", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, p := range db.Packages {
				files, _ := db.Files(p)
				for _, f := range files {
					for _, q := range paths {
						_ = f == q
					}
				}
			}
		}
	})
}

// BenchmarkOpen is what every hook pays first: this machine's status file.
func BenchmarkOpen(b *testing.B) {
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		b.Skipf("no dpkg database: %v", err)
	}
	for i := 0; i < b.N; i++ {
		if _, err := Open("/var/lib/dpkg"); err != nil {
			b.Fatal(err)
		}
	}
}
