package main

import (
	"bufio"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/manifest"
	"github.com/debseal/debseal/pkg/testutil"
	"golang.org/x/sys/unix"
)

// auditJSON runs debseal audit --format json and returns the findings by
// real path ("kind" list) and the exit code.
func auditJSON(t *testing.T, args ...string) (map[string][]string, []jsonFinding, int) {
	t.Helper()
	out, errOut, code := debseal(t, append(args[:len(args):len(args)], "--format", "json")...)
	if code != 0 && code != 1 {
		t.Fatalf("debseal %v: exit %d\n%s%s", args, code, out, errOut)
	}
	byPath := map[string][]string{}
	var all []jsonFinding
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		var f jsonFinding
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		if f.Type != "finding" {
			continue
		}
		real := f.Path
		if f.Real != "" {
			real = f.Real
		}
		byPath[real] = append(byPath[real], f.Kind)
		all = append(all, f)
	}
	return byPath, all, code
}

func setInodeFlag(t *testing.T, path string, flag uint32, on bool) {
	t.Helper()
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	v, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	if err != nil {
		t.Fatal(err)
	}
	if on {
		v |= flag
	} else {
		v &^= flag
	}
	if err := unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(v)); err != nil {
		t.Fatal(err)
	}
}

// writeIndex publishes the test packages' hashes in a Packages index under
// the sandbox's apt lists, as apt update would have.
func writeIndex(t *testing.T, root string, debs ...string) {
	t.Helper()
	var b strings.Builder
	for _, d := range debs {
		data, err := os.ReadFile(testutil.Deb(t, d))
		if err != nil {
			t.Fatal(err)
		}
		f := strings.Split(d, "_")
		fmt.Fprintf(&b, "Package: %s\nVersion: %s\nArchitecture: %s\nFilename: pool/%s.deb\nSHA256: %x\n\n", f[0], f[1], f[2], d, sha256.Sum256(data))
	}
	dir := filepath.Join(root, "var/lib/apt/lists")
	os.MkdirAll(dir, 0o755)
	if err := os.WriteFile(filepath.Join(dir, "test_dists_x_main_binary-amd64_Packages"), []byte(b.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

func caughtBy(lines string, root string) map[string]bool {
	out := map[string]bool{}
	for _, l := range strings.Split(lines, "\n") {
		if i := strings.Index(l, " /"); i >= 0 {
			p := strings.TrimPrefix(l[i+1:], root)
			if j := strings.Index(p, " ("); j >= 0 {
				p = p[:j]
			}
			out[p] = true
		}
	}
	return out
}

// TestAuditTampering installs the test packages through the hooks (which
// record apt-verified manifests), tampers with them in every way the
// issue lists, and checks that debseal reports each, and more than dpkg
// --verify and debsums together.
func TestAuditTampering(t *testing.T) {
	s := testutil.NewSandbox(t)
	testutil.RequireCommand(t, "debsums")
	bin := testutil.Binary(t)
	writeIndex(t, s.Root, "dstest-base_1.0_all", "dstest-override_1.0_all")
	if _, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 {
		t.Fatal("lock --all failed")
	}
	dpkg := hookedDpkg(s, bin)
	for _, d := range []string{"dstest-base_1.0_all", "dstest-diverter_1.0_all", "dstest-override_1.0_all"} {
		if out, code := dpkg(t, nil, "-i", testutil.Deb(t, d)); code != 0 {
			t.Fatalf("dpkg -i %s: exit %d\n%s", d, code, out)
		}
	}
	// The hooks recorded manifests: base's .deb is in the index.
	store := manifest.StoreFor(s.Root)
	m, err := store.Load("dstest-base", "all")
	if err != nil {
		t.Fatalf("no manifest recorded by the hooks: %v", err)
	}
	if m.Provenance != manifest.AptVerified || m.Content != manifest.FromInstalled {
		t.Errorf("dstest-base manifest: provenance %s, content %s; want apt-verified, installed", m.Provenance, m.Content)
	}
	if m2, err := store.Load("dstest-diverter", "all"); err != nil || m2.Provenance != manifest.Local {
		t.Errorf("dstest-diverter manifest (not in the index): %v, %v; want local", m2, err)
	}
	mp := store.Path("dstest-base", "all")
	if st, err := os.Stat(mp); err != nil || st.Mode().Perm() != 0o600 || !testutil.IsImmutable(t, mp) {
		t.Errorf("manifest %s: %v %v, want mode 0600 and immutable", mp, st.Mode(), err)
	}

	if byPath, all, code := auditJSON(t, "--root", s.Root, "audit"); code != 0 {
		t.Fatalf("audit of the untouched sandbox: exit %d, findings %v\n%+v", code, byPath, all)
	}

	p := s.Path
	unlock := func(rel string) { setInodeFlag(t, p(rel), 0x10, false) }
	write := func(rel, data string, flag int) {
		t.Helper()
		f, err := os.OpenFile(p(rel), os.O_WRONLY|flag, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.WriteString(data)
		f.Close()
	}
	// The tampering, each on its own file.
	unlock("/usr/share/dstest/a/b/c/deep.txt")
	write("/usr/share/dstest/a/b/c/deep.txt", "DEEP 1.0\n", os.O_TRUNC)
	unlock("/usr/share/dstest/name with spaces.txt")
	write("/usr/share/dstest/name with spaces.txt", "appended\n", os.O_APPEND)
	unlock("/usr/bin/dstest-suid")
	os.Chmod(p("/usr/bin/dstest-suid"), 0o755)
	unlock("/usr/share/doc/dstest-base/copyright")
	os.Lchown(p("/usr/share/doc/dstest-base/copyright"), 1, 1)
	os.Remove(p("/usr/bin/dstest-link"))
	os.Symlink("dstest-suid", p("/usr/bin/dstest-link"))
	unlock("/usr/share/dstest/dropped-in-2.0.txt")
	os.Remove(p("/usr/share/dstest/dropped-in-2.0.txt"))
	unlock("/usr/bin/dstest-tool") // clear a lock, change nothing else
	setInodeFlag(t, p("/var/lib/dstest/state"), 0x20, true)
	// Swap a binary and make dpkg's md5sums agree with the swap.
	unlock("/usr/bin/dstest-private")
	evil := "#!/bin/sh\necho evil\n"
	write("/usr/bin/dstest-private", evil, os.O_TRUNC)
	sums := filepath.Join(s.Admindir, "info/dstest-base.md5sums")
	b, _ := os.ReadFile(sums)
	var nb strings.Builder
	for _, l := range strings.SplitAfter(string(b), "\n") {
		if strings.HasSuffix(l, "  usr/bin/dstest-private\n") {
			l = fmt.Sprintf("%x  usr/bin/dstest-private\n", md5.Sum([]byte(evil)))
		}
		nb.WriteString(l)
	}
	os.WriteFile(sums, []byte(nb.String()), 0o644)

	want := map[string]string{ // real path → the kind that must be among its findings
		"/usr/share/dstest/a/b/c/deep.txt":       "sha256",
		"/usr/share/dstest/name with spaces.txt": "md5",
		"/usr/bin/dstest-suid":                   "mode",
		"/usr/share/doc/dstest-base/copyright":   "owner",
		"/usr/bin/dstest-link":                   "link-target",
		"/usr/share/dstest/dropped-in-2.0.txt":   "missing",
		"/usr/bin/dstest-tool":                   "lifted", // seen locked by the hooks' relock and an audit
		"/var/lib/dstest/state":                  "append-only",
		"/usr/bin/dstest-private":                "sha256",
	}
	byPath, _, code := auditJSON(t, "--root", s.Root, "audit")
	if code != 1 {
		t.Errorf("audit after tampering: exit %d, want 1", code)
	}
	for path, kind := range want {
		if !contains(byPath[path], kind) {
			t.Errorf("%s: debseal found %v, want %s among them", path, byPath[path], kind)
		}
	}
	if k := byPath["/usr/bin/dstest-private"]; contains(k, "md5") {
		t.Errorf("dstest-private: md5 finding %v although md5sums was rewritten to match", k)
	}

	// What the peers see.
	dv, _ := runCmd(t, nil, "dpkg", "--root="+s.Root, "--admindir="+s.Admindir, "--verify")
	ds, _ := runCmd(t, nil, "debsums", "-r", s.Root, "-s", "-a")
	peerDpkg, peerDebsums := caughtBy(dv, s.Root), caughtBy(ds, s.Root)
	var rows []string
	for path, kind := range want {
		rows = append(rows, fmt.Sprintf("%-42s debseal=%-12s dpkg-verify=%-5v debsums=%v", path, kind, peerDpkg[path], peerDebsums[path]))
	}
	sort.Strings(rows)
	t.Logf("tampering matrix:\n%s\ndpkg --verify:\n%sdebsums -s -a:\n%s", strings.Join(rows, "\n"), dv, ds)
	for path := range peerDpkg {
		if len(byPath[path]) == 0 {
			t.Errorf("dpkg --verify reports %s, debseal does not", path)
		}
	}
	for path := range peerDebsums {
		if len(byPath[path]) == 0 {
			t.Errorf("debsums reports %s, debseal does not", path)
		}
	}
	if len(byPath) <= len(peerDpkg) || len(byPath) <= len(peerDebsums) {
		t.Errorf("debseal's findings (%d paths) are not a strict superset of dpkg's (%d) and debsums' (%d)", len(byPath), len(peerDpkg), len(peerDebsums))
	}

	// dpkg format: exactly dpkg --verify's lines.
	out, _, _ := debseal(t, "--root", s.Root, "audit", "--format", "dpkg")
	if got, want := sortedLines(out), sortedLines(dv); got != want {
		t.Errorf("audit --format dpkg:\n%s\ndpkg --verify:\n%s", got, want)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func sortedLines(s string) string {
	var ls []string
	for _, l := range strings.Split(s, "\n") {
		if l != "" {
			ls = append(ls, l)
		}
	}
	sort.Strings(ls)
	return strings.Join(ls, "\n")
}

// TestAuditBadInput: damaged md5sums lines and manifests are findings,
// and the audit goes on with everything else.
func TestAuditBadInput(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
	if _, errOut, code := debseal(t, "--root", s.Root, "manifest", "--all"); code != 0 {
		t.Fatalf("manifest --all: exit %d\n%s", code, errOut)
	}
	// A corrupt md5sums line.
	sums := filepath.Join(s.Admindir, "info/dstest-base.md5sums")
	b, _ := os.ReadFile(sums)
	os.WriteFile(sums, append([]byte("not an md5sums line\n"), b...), 0o644)
	// A manifest whose checksum no longer matches, and one that does not parse.
	store := manifest.StoreFor(s.Root)
	for _, c := range []struct{ pkg, arch, from, to string }{
		{"dstest-base", "all", "0755", "0777"},
		{"dstest-multi", "amd64", manifest.Magic, "garbage"},
	} {
		mp := store.Path(c.pkg, c.arch)
		setInodeFlag(t, mp, 0x10, false)
		b, _ := os.ReadFile(mp)
		os.WriteFile(mp, []byte(strings.Replace(string(b), c.from, c.to, 1)), 0o600)
	}
	// A listed file whose parent became a file: lstat fails with ENOTDIR.
	os.RemoveAll(s.Path("/usr/share/dstest/a/b/c"))
	os.WriteFile(s.Path("/usr/share/dstest/a/b/c"), nil, 0o644)
	// Ordinary tampering elsewhere is still found.
	os.WriteFile(s.Path("/usr/bin/dstest-tool"), []byte("changed\n"), 0o755)

	byPath, _, code := auditJSON(t, "--root", s.Root, "audit")
	if code != 1 {
		t.Errorf("exit %d, want 1", code)
	}
	for path, kind := range map[string]string{
		sums:                                "md5sums-corrupt",
		store.Path("dstest-base", "all"):    "manifest-corrupt",
		store.Path("dstest-multi", "amd64"): "manifest-corrupt",
		"/usr/share/dstest/a/b/c/deep.txt":  "missing",
		"/usr/bin/dstest-tool":              "md5",
	} {
		if !contains(byPath[path], kind) {
			t.Errorf("%s: %v, want %s", path, byPath[path], kind)
		}
	}
	out, _, _ := debseal(t, "--root", s.Root, "audit", "--format", "dpkg")
	dv, _ := runCmd(t, nil, "dpkg", "--root="+s.Root, "--admindir="+s.Admindir, "--verify")
	if !strings.Contains(out, "missing     /usr/share/dstest/a/b/c/deep.txt (Not a directory)") {
		t.Errorf("dpkg format lacks the ENOTDIR line:\n%s", out)
	}
	// dpkg refuses the corrupt md5sums file outright; compare without it.
	t.Logf("dpkg --verify with a corrupt md5sums line:\n%s", dv)
}

// TestAuditParityHost compares debseal audit --format dpkg with dpkg
// --verify on this machine's own database, read-only.
func TestAuditParityHost(t *testing.T) {
	testutil.RequireCommand(t, "dpkg")
	if _, err := os.Stat("/var/lib/dpkg/status"); err != nil {
		testutil.Skip(t, "no dpkg database on this machine")
	}
	dv, err := exec.Command("dpkg", "--verify").Output()
	if err != nil {
		t.Fatalf("dpkg --verify: %v", err)
	}
	out, errOut, code := debseal(t, "audit", "--format", "dpkg", "--no-cache")
	if code > 1 {
		t.Fatalf("audit: exit %d: %s", code, errOut)
	}
	got, want := sortedLines(out), sortedLines(string(dv))
	if got != want {
		a, b := diffLists(strings.Split(got, "\n"), strings.Split(want, "\n"))
		t.Errorf("audit --format dpkg differs from dpkg --verify: only debseal %d lines %v; only dpkg %d lines %v", len(a), head(a), len(b), head(b))
	}
	t.Logf("parity with dpkg --verify on this machine: %d lines compared", strings.Count(want, "\n")+1)
}

func head(l []string) []string {
	if len(l) > 10 {
		return l[:10]
	}
	return l
}

// peerSet extracts debsums' "changed file"/"missing file" lines (or -c's
// plain paths) as root-relative paths.
func peerSet(out, root string) (changed, missing map[string]bool) {
	changed, missing = map[string]bool{}, map[string]bool{}
	for _, l := range strings.Split(out, "\n") {
		l = strings.TrimSpace(l)
		var set map[string]bool
		switch {
		case strings.HasPrefix(l, "debsums: changed file "):
			set, l = changed, strings.TrimPrefix(l, "debsums: changed file ")
		case strings.HasPrefix(l, "debsums: missing file "):
			set, l = missing, strings.TrimPrefix(l, "debsums: missing file ")
		case strings.HasPrefix(l, root+"/"):
			set = changed
		default:
			continue
		}
		if i := strings.LastIndex(l, " (from "); i >= 0 {
			l = l[:i]
		}
		set[strings.TrimPrefix(l, root)] = true
	}
	return changed, missing
}

// oursLike returns debseal's findings in debsums' terms: changed
// (content, or a regular file that is no longer one) and missing, by
// listed path; conffiles only when withConf.
func oursLike(fs []jsonFinding, withConf bool) (changed, missing map[string]bool) {
	changed, missing = map[string]bool{}, map[string]bool{}
	for _, f := range fs {
		if f.Conffile && !withConf {
			continue
		}
		switch {
		case f.Kind == "md5" || f.Kind == "conffile" || f.Kind == "type" && (f.Source == "md5sums" || f.Source == "status"):
			changed[f.Path] = true
		case f.Kind == "missing":
			missing[f.Path] = true
		}
	}
	return changed, missing
}

func keys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// TestAuditChroot checks, on a debootstrap system with real tampering,
// parity with dpkg --verify run inside it and with debsums -s, -c and -a,
// and the incremental cache: a second audit of the locked tree reads
// (almost) nothing, and a file changed behind a cleared lock is read again.
func TestAuditChroot(t *testing.T) {
	c := testutil.NewChroot(t)
	testutil.RequireCommand(t, "debsums")
	root := c.Dir
	if out, errOut, code := debseal(t, "--root", root, "lock", "--all"); code != 0 {
		t.Fatalf("lock --all: exit %d\n%s%s", code, out, errOut)
	}
	// Tamper: contents, a deletion, a conffile edited and one deleted.
	touch := func(rel string, f func(p string)) {
		p := c.Path(rel)
		if fi, err := os.Lstat(p); err == nil && fi.Mode().IsRegular() {
			setInodeFlag(t, p, 0x10, false)
		}
		f(p)
	}
	touch("/usr/bin/tac", func(p string) { os.WriteFile(p, []byte("not tac\n"), 0o755) })
	touch("/usr/share/doc/coreutils/README.gz", func(p string) { os.Remove(p) })
	touch("/etc/login.defs", func(p string) { os.WriteFile(p, []byte("# edited\n"), 0o644) })
	touch("/etc/debconf.conf", func(p string) { os.Remove(p) })

	// dpkg --verify inside the chroot.
	dv := testutil.ChrootTool(root)(t, "dpkg", "--verify")
	out, _, _ := debseal(t, "--root", root, "audit", "--format", "dpkg", "--no-cache")
	if got, want := sortedLines(out), sortedLines(dv); got != want {
		t.Errorf("chroot: audit --format dpkg:\n%s\ndpkg --verify:\n%s", got, want)
	}
	t.Logf("chroot parity with dpkg --verify: %d lines:\n%s", len(strings.Split(sortedLines(dv), "\n")), dv)

	// debsums -s / -c / -a.
	_, plain, _ := auditJSON(t, "--root", root, "audit", "--no-cache")
	_, withConf, _ := auditJSON(t, "--root", root, "audit", "--no-cache", "--conffiles")
	for _, tc := range []struct {
		args     []string
		withConf bool
		changed  bool // compare the changed set only (-c prints nothing else on stdout)
	}{
		{[]string{"-s"}, false, false},
		{[]string{"-c"}, false, true},
		{[]string{"-s", "-a"}, true, false},
	} {
		o, _ := runCmd(t, nil, "debsums", append([]string{"-r", root}, tc.args...)...)
		if tc.changed {
			cmd := exec.Command("debsums", append([]string{"-r", root}, tc.args...)...)
			b, _ := cmd.Output() // stdout only: the changed files
			o = string(b)
		}
		pc, pm := peerSet(o, root)
		fs := plain
		if tc.withConf {
			fs = withConf
		}
		oc, om := oursLike(fs, tc.withConf)
		if tc.changed {
			om, pm = nil, nil
		}
		if a, b := diffLists(keys(oc), keys(pc)); len(a)+len(b) > 0 {
			t.Errorf("debsums %v: changed only debseal %v, only debsums %v", tc.args, a, b)
		}
		if a, b := diffLists(keys(om), keys(pm)); len(a)+len(b) > 0 {
			t.Errorf("debsums %v: missing only debseal %v, only debsums %v", tc.args, a, b)
		}
		t.Logf("debsums %v: %d changed, %d missing, same as debseal's", tc.args, len(pc), len(pm))
	}

	// Incremental: the first audit fills the cache, the second reads
	// only what is not immutable.
	first := summaryOf(t, "--root", root, "audit", "--full")
	second := summaryOf(t, "--root", root, "audit")
	if second.Cached == 0 || second.Hashed >= first.Hashed/10 {
		t.Errorf("incremental audit read %d files (%d from the cache); the full one read %d", second.Hashed, second.Cached, first.Hashed)
	}
	if second.Findings != first.Findings {
		t.Errorf("incremental audit: %d findings, full: %d", second.Findings, first.Findings)
	}
	// A change behind a cleared (and restored) lock is seen: ctime moved.
	p := c.Path("/usr/bin/tail")
	setInodeFlag(t, p, 0x10, false)
	os.WriteFile(p, []byte("not tail\n"), 0o755)
	setInodeFlag(t, p, 0x10, true)
	byPath, _, _ := auditJSON(t, "--root", root, "audit")
	if !contains(byPath["/usr/bin/tail"], "md5") {
		t.Errorf("incremental audit missed a file rewritten behind a cleared lock: %v", byPath["/usr/bin/tail"])
	}
	t.Logf("full audit: %+v; incremental: %+v", first, second)
}

func summaryOf(t *testing.T, args ...string) jsonSummary {
	t.Helper()
	out, _, code := debseal(t, append(args, "--format", "json")...)
	if code > 1 {
		t.Fatalf("audit %v: exit %d", args, code)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var s jsonSummary
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &s); err != nil || s.Type != "summary" {
		t.Fatalf("no summary line: %q (%v)", lines[len(lines)-1], err)
	}
	return s
}

// lock records the SHA-256 baseline of what it seals, and the audit notices
// when that baseline is gone: deleting a manifest (after clearing its
// flag) must not make the SHA-256 check go quietly blind.
func TestLockRecordsManifestsAuditMissesNone(t *testing.T) {
	s := testutil.NewSandbox(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"))
	out, _, code := debseal(t, "--root", s.Root, "lock", "--all")
	if code != 0 || !strings.Contains(out, "recorded 2 manifests") {
		t.Fatalf("lock --all: exit %d, want 0 and 2 manifests recorded\n%s", code, out)
	}
	store := manifest.StoreFor(s.Root)
	m, err := store.Load("dstest-base", "all")
	if err != nil || m.Version != "1.0" || m.Provenance != manifest.Local {
		t.Fatalf("manifest after lock: %+v, %v", m, err)
	}
	// A second lock records nothing again.
	if out, _, _ := debseal(t, "--root", s.Root, "lock", "--all"); strings.Contains(out, "recorded") {
		t.Errorf("second lock --all recorded manifests again:\n%s", out)
	}
	if _, _, code := auditJSON(t, "--root", s.Root, "audit"); code != 0 {
		t.Fatalf("audit of a freshly locked sandbox: exit %d", code)
	}
	p := store.Path("dstest-base", "all")
	setInodeFlag(t, p, 0x10, false) // FS_IMMUTABLE_FL
	if err := os.Remove(p); err != nil {
		t.Fatal(err)
	}
	byPath, _, code := auditJSON(t, "--root", s.Root, "audit")
	if code != 1 || !slices.Contains(byPath[p], "no-manifest") {
		t.Errorf("audit after the manifest was deleted: exit %d, findings %v; want no-manifest for %s", code, byPath, p)
	}
	// debseal manifest puts the baseline back.
	if _, _, code := debseal(t, "--root", s.Root, "manifest", "dstest-base"); code != 0 {
		t.Fatalf("manifest dstest-base: exit %d", code)
	}
	if _, _, code := auditJSON(t, "--root", s.Root, "audit"); code != 0 {
		t.Errorf("audit after debseal manifest: exit %d, want 0", code)
	}
}

// debseal manifest builds from the .deb in apt's cache, and calls it
// apt-verified when the strongest hash apt's index gives for it matches,
// whatever that hash is (third-party repositories publish only SHA1 or
// MD5sum); a wrong hash, or no index entry, makes it local.
func TestManifestProvenanceFromAptCache(t *testing.T) {
	const deb = "dstest-base_1.0_all"
	data, err := os.ReadFile(testutil.Deb(t, deb))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, field string
		want        manifest.Provenance
	}{
		{"SHA256", fmt.Sprintf("SHA256: %x\n", sha256.Sum256(data)), manifest.AptVerified},
		{"SHA1 only", fmt.Sprintf("SHA1: %x\n", sha1.Sum(data)), manifest.AptVerified},
		{"MD5sum only", fmt.Sprintf("MD5sum: %x\n", md5.Sum(data)), manifest.AptVerified},
		{"a wrong SHA256 beats a right MD5sum", fmt.Sprintf("MD5sum: %x\nSHA256: %064x\n", md5.Sum(data), 0), manifest.Local},
		{"no entry", "", manifest.Local},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testutil.NewSandbox(t)
			s.MustDpkg(t, "-i", testutil.Deb(t, deb))
			cache := s.Path("/var/cache/apt/archives")
			if err := os.MkdirAll(cache, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(cache, deb+".deb"), data, 0o644); err != nil {
				t.Fatal(err)
			}
			lists := s.Path("/var/lib/apt/lists")
			os.MkdirAll(lists, 0o755)
			idx := ""
			if tt.field != "" {
				idx = "Package: dstest-base\nVersion: 1.0\nArchitecture: all\nFilename: pool/" + deb + ".deb\n" + tt.field + "\n"
			}
			if err := os.WriteFile(filepath.Join(lists, "test_dists_x_main_binary-amd64_Packages"), []byte(idx), 0o644); err != nil {
				t.Fatal(err)
			}
			if out, errOut, code := debseal(t, "--root", s.Root, "manifest", "dstest-base"); code != 0 {
				t.Fatalf("manifest: exit %d\n%s%s", code, out, errOut)
			}
			m, err := manifest.StoreFor(s.Root).Load("dstest-base", "all")
			if err != nil {
				t.Fatal(err)
			}
			if m.Provenance != tt.want || m.Content != manifest.FromDebData {
				t.Errorf("provenance %s from the %s, want %s from the deb", m.Provenance, m.Content, tt.want)
			}
			// From the .deb's data: its entries carry the archive's digests.
			found := false
			for _, e := range m.Entries {
				if e.Path == "/usr/bin/dstest-tool" {
					found = e.HasSHA256 && e.HasMD5
				}
			}
			if !found {
				t.Error("no digests for /usr/bin/dstest-tool")
			}
		})
	}
}

// TestManifestsOfRemovedPackagesGo: the relock after a removal or a purge
// deletes the package's manifest, and lock --all deletes the manifests of
// packages removed while debseal did not see it. A manifest left behind
// would describe files that are no longer there, forever.
func TestManifestsOfRemovedPackagesGo(t *testing.T) {
	s := testutil.NewSandbox(t)
	bin := testutil.Binary(t)
	s.MustDpkg(t, "-i", testutil.Deb(t, "dstest-base_1.0_all"), testutil.Deb(t, "dstest-multi_1.0_amd64"),
		testutil.Deb(t, "dstest-override_1.0_all"))
	if out, _, code := debseal(t, "--root", s.Root, "lock", "--all"); code != 0 || !strings.Contains(out, "recorded 3 manifests") {
		t.Fatalf("lock --all: exit %d, want 0 and 3 manifests recorded\n%s", code, out)
	}
	store := manifest.StoreFor(s.Root)
	has := func(pkg, arch string) bool {
		_, err := os.Lstat(store.Path(pkg, arch))
		return err == nil
	}
	dpkg := hookedDpkg(s, bin)
	for _, c := range []struct {
		args      []string
		pkg, arch string
	}{
		{[]string{"-r", "dstest-override"}, "dstest-override", "all"},
		{[]string{"-P", "dstest-multi"}, "dstest-multi", "amd64"},
	} {
		if out, code := dpkg(t, nil, c.args...); code != 0 {
			t.Fatalf("dpkg %v: exit %d\n%s", c.args, code, out)
		}
		if has(c.pkg, c.arch) {
			t.Errorf("after dpkg %v through the hooks, the manifest %s is still there", c.args, store.Path(c.pkg, c.arch))
		}
	}
	if !has("dstest-base", "all") {
		t.Fatalf("the manifest of dstest-base, still installed, went too")
	}
	// A purge debseal does not see: lock --all notices.
	if _, _, code := debseal(t, "--root", s.Root, "unlock", "dstest-base"); code != 0 {
		t.Fatalf("unlock dstest-base: exit %d", code)
	}
	s.MustDpkg(t, "-P", "dstest-base")
	if !has("dstest-base", "all") {
		t.Fatalf("the manifest went without debseal running: the next step proves nothing")
	}
	out, _, code := debseal(t, "--root", s.Root, "lock", "--all")
	if code != 0 || !strings.Contains(out, "removed 1 manifests of packages no longer installed") {
		ents, _ := os.ReadDir(store.Dir)
		t.Logf("store: %v", ents)
		t.Errorf("lock --all after an unseen purge: exit %d\n%s", code, out)
	}
	if has("dstest-base", "all") {
		t.Errorf("lock --all left the manifest of a purged package: %s", store.Path("dstest-base", "all"))
	}
}
