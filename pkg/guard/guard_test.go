package guard

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParseStatus(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Status
		holds   bool
		eff     bool
		wantErr bool
	}{
		{name: "root shell, full set", in: "Name:\tbash\nUmask:\t0022\nPPid:\t812\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t000001ffffffffff\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n",
			want: Status{Name: "bash", PPid: 812, CapEff: 0x1ffffffffff, CapBnd: 0x1ffffffffff}, holds: true, eff: true},
		{name: "guarded service", in: "Name:\tnginx\nPPid:\t1\nCapEff:\t000001fffffffdff\nCapBnd:\t000001fffffffdff\n",
			want: Status{Name: "nginx", PPid: 1, CapEff: 0x1fffffffdff, CapBnd: 0x1fffffffdff}},
		{name: "unprivileged, bounding set full", in: "Name:\tcat\nPPid:\t9\nCapEff:\t0000000000000000\nCapBnd:\t000001ffffffffff\n",
			want: Status{Name: "cat", PPid: 9, CapBnd: 0x1ffffffffff}, holds: true},
		{name: "no CapBnd", in: "Name:\tx\nPPid:\t1\nCapEff:\t0\n", wantErr: true},
		{name: "bad hex", in: "Name:\tx\nCapEff:\tzz\nCapBnd:\t0\n", wantErr: true},
		{name: "empty", in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStatus(strings.NewReader(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseStatus err = %v, want error %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if got != tt.want || got.Holds() != tt.holds || got.Effective() != tt.eff {
				t.Errorf("ParseStatus = %+v (holds %v, effective %v), want %+v (%v, %v)", got, got.Holds(), got.Effective(), tt.want, tt.holds, tt.eff)
			}
		})
	}
}

func TestParseCgroup(t *testing.T) {
	tests := []struct{ name, in, want string }{
		{"v2 service", "0::/system.slice/nginx.service\n", "nginx.service"},
		{"v2 template instance in its slice", "0::/system.slice/system-getty.slice/getty@tty1.service\n", "getty@tty1.service"},
		{"v2 sub-cgroup of a service", "0::/system.slice/docker.service/payload\n", "docker.service"},
		{"login session", "0::/user.slice/user-0.slice/session-3.scope\n", ""},
		{"user manager", "0::/user.slice/user-0.slice/user@0.service/init.scope\n", ""},
		{"init", "0::/init.scope\n", ""},
		{"kernel thread", "0::/\n", ""},
		{"hybrid: name=systemd wins", "12:name=systemd:/system.slice/cron.service\n0::/system.slice/cron.service\n3:cpu,cpuacct:/\n", "cron.service"},
		{"empty", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseCgroup(strings.NewReader(tt.in))
			if err != nil || got != tt.want {
				t.Errorf("ParseCgroup(%q) = %q, %v, want %q", tt.in, got, err, tt.want)
			}
		})
	}
}

func TestCheckUnit(t *testing.T) {
	for _, ok := range []string{"nginx.service", "getty@.service", "getty@tty1.service", "systemd-fsck@dev-disk-by\\x2duuid-1.service", "a:b_c.service"} {
		if err := CheckUnit(ok); err != nil {
			t.Errorf("CheckUnit(%q) = %v, want nil", ok, err)
		}
	}
	for _, bad := range []string{"", "nginx", "nginx.socket", ".service", "@x.service", "a@b@c.service", "a b.service", "../x.service", "a/b.service", strings.Repeat("a", 250) + ".service"} {
		if err := CheckUnit(bad); err == nil {
			t.Errorf("CheckUnit(%q) = nil, want an error", bad)
		}
	}
}

func TestAllowed(t *testing.T) {
	units := []string{"getty@.service", "cron.service", "foo@bar.service"}
	tests := []struct {
		unit string
		want bool
	}{
		{"cron.service", true},
		{"getty@tty1.service", true},
		{"getty@.service", true},
		{"foo@bar.service", true},
		{"foo@baz.service", false},
		{"nginx.service", false},
		{"cronx.service", false},
	}
	for _, tt := range tests {
		if got := Allowed(tt.unit, units); got != tt.want {
			t.Errorf("Allowed(%q) = %v, want %v", tt.unit, got, tt.want)
		}
	}
}

func TestFiles(t *testing.T) {
	files, err := Files([]string{"puppet.service", "cron.service"})
	if err != nil {
		t.Fatal(err)
	}
	if files[0].Path != "/etc/systemd/system/service.d/90-debseal-guard.conf" || !strings.Contains(string(files[0].Content), "\nCapabilityBoundingSet=~CAP_LINUX_IMMUTABLE\n") {
		t.Errorf("first file = %s:\n%s", files[0].Path, files[0].Content)
	}
	seen := map[string]int{}
	for _, f := range files {
		if !Ours(f.Content) {
			t.Errorf("%s does not start with the marker", f.Path)
		}
		if f.Path == GuardPath {
			continue
		}
		u := AllowedUnit(f.Path)
		seen[u]++
		// An allow drop-in must set nothing: it only hides the guard's.
		for _, l := range strings.Split(string(f.Content), "\n") {
			if l != "" && !strings.HasPrefix(l, "#") {
				t.Errorf("%s sets %q", f.Path, l)
			}
		}
	}
	want, _ := Units([]string{"puppet.service"})
	if len(seen) != len(want) || len(files) != len(want)+1 {
		t.Errorf("allow drop-ins for %v, want %v", seen, want)
	}
	for _, u := range want {
		if seen[u] != 1 {
			t.Errorf("%s: %d drop-ins", u, seen[u])
		}
	}
	if _, err := Files([]string{"bad unit"}); err == nil {
		t.Error("Files accepted a bad unit name")
	}
}

func TestAllowedUnit(t *testing.T) {
	tests := []struct{ path, want string }{
		{"/etc/systemd/system/cron.service.d/90-debseal-guard.conf", "cron.service"},
		{"/etc/systemd/system/getty@.service.d/90-debseal-guard.conf", "getty@.service"},
		{"/etc/systemd/system/service.d/90-debseal-guard.conf", ""},
		{"/etc/systemd/system/cron.service.d/override.conf", ""},
		{"/lib/systemd/system/cron.service.d/90-debseal-guard.conf", ""},
		{"/etc/systemd/system/x/cron.service.d/90-debseal-guard.conf", ""},
	}
	for _, tt := range tests {
		if got := AllowedUnit(tt.path); got != tt.want {
			t.Errorf("AllowedUnit(%q) = %q, want %q", tt.path, got, tt.want)
		}
	}
}

// TestScan reads a proc tree laid out as the kernel lays it out.
func TestScan(t *testing.T) {
	proc := t.TempDir()
	full, guarded := "000001ffffffffff", "000001fffffffdff"
	procs := []struct {
		pid          string
		name, cgroup string
		capBnd       string
	}{
		{"1", "systemd", "0::/init.scope", full},
		{"2", "kthreadd", "0::/", full},
		{"300", "nginx", "0::/system.slice/nginx.service", full},
		{"301", "nginx", "0::/system.slice/nginx.service", full},
		{"310", "postgres", "0::/system.slice/postgresql@15-main.service", guarded},
		{"320", "agetty", "0::/system.slice/system-getty.slice/getty@tty1.service", full},
		{"330", "bash", "0::/user.slice/user-0.slice/session-1.scope", full},
		{"340", "cron", "0::/system.slice/cron.service", full},
		{"350", "dockerd", "0::/system.slice/docker.service/x", full},
	}
	for _, p := range procs {
		dir := filepath.Join(proc, p.pid)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		status := "Name:\t" + p.name + "\nPPid:\t1\nCapEff:\t" + p.capBnd + "\nCapBnd:\t" + p.capBnd + "\n"
		os.WriteFile(filepath.Join(dir, "status"), []byte(status), 0o644)
		os.WriteFile(filepath.Join(dir, "cgroup"), []byte(p.cgroup+"\n"), 0o644)
	}
	os.Mkdir(filepath.Join(proc, "self"), 0o755)
	os.Mkdir(filepath.Join(proc, "999"), 0o755) // gone while read: no files
	units, _ := Units(nil)
	got, err := Scan(proc, units)
	if err != nil {
		t.Fatal(err)
	}
	want := []Holder{{Unit: "docker.service", PIDs: []int{350}, Comm: "dockerd"}, {Unit: "nginx.service", PIDs: []int{300, 301}, Comm: "nginx"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Scan = %+v, want %+v", got, want)
	}
}

// TestScanSelf reads this machine's /proc: it must parse every process.
func TestScanSelf(t *testing.T) {
	if _, err := Scan("/proc", nil); err != nil {
		t.Fatal(err)
	}
	st, err := Self()
	if err != nil {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 && !st.Holds() {
		t.Logf("this test runs without CAP_LINUX_IMMUTABLE in its bounding set: %+v", st)
	}
}
