package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/deb"
	"github.com/debseal/debseal/pkg/testutil"
)

func inspectFixture(t *testing.T, name string) string {
	t.Helper()
	return filepath.Join(testutil.RepoRoot(t), "testdata", "deb", name)
}

// TestInspectTextMatchesDpkg: without --files, the text output is what
// dpkg-deb --info prints, byte for byte.
func TestInspectTextMatchesDpkg(t *testing.T) {
	testutil.RequireCommand(t, "dpkg-deb")
	for _, name := range []string{"fixture_zstd.deb", "fixture_gzip.deb", "fixture_bzip2.deb", "fixture_none.deb"} {
		t.Run(name, func(t *testing.T) {
			p := inspectFixture(t, name)
			var out bytes.Buffer
			if err := runInspect(context.Background(), inspectOpts{}, []string{p}, &out); err != nil {
				t.Fatalf("runInspect(%s) = %v", name, err)
			}
			want, err := exec.Command("dpkg-deb", "--info", p).Output()
			if err != nil {
				t.Fatal(err)
			}
			if got := out.String(); got != string(want) {
				t.Errorf("inspect %s =\n%s\nwant (dpkg-deb --info)\n%s", name, got, want)
			}
		})
	}
}

func TestInspectFilesText(t *testing.T) {
	var out bytes.Buffer
	if err := runInspect(context.Background(), inspectOpts{Hashes: true}, []string{inspectFixture(t, "fixture_gzip.deb")}, &out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"----------------------------------------------------------------  drwxr-xr-x root/root         0 2023-11-14 22:13 /\n",
		"  -rwsr-xr-x root/root        13 2023-11-14 22:13 /usr/bin/debseal-fixture-suid\n",
		"  -rwxr-sr-x root/games        20 2023-11-14 22:13 /usr/games/debseal-fixture-game\n",
		"  hrw-r--r-- root/root         0 2023-11-14 22:13 /usr/share/debseal-fixture/hardlink link to /usr/share/debseal-fixture/data.txt\n",
		"  drwxrwsr-t root/staff         0 2023-11-14 22:13 /var/lib/debseal-fixture/shared\n",
		"  lrwxrwxrwx root/root         0 2023-11-14 22:13 /usr/bin/debseal-fixture-link -> debseal-fixture\n",
		"/usr/share/debseal-fixture/with space/file name with spaces.txt\n",
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("inspect --hashes output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestInspectJSON reads a batch in JSON and checks each object against
// pkg/deb (which is itself checked against dpkg-deb).
func TestInspectJSON(t *testing.T) {
	names := []string{"fixture_zstd.deb", "fixture_xz-blocks.deb", "fixture_lzma.deb", "fixture_extra-members.deb"}
	var files []string
	for _, n := range names {
		files = append(files, inspectFixture(t, n))
	}
	var out bytes.Buffer
	if err := runInspect(context.Background(), inspectOpts{JSON: true, Hashes: true}, files, &out); err != nil {
		t.Fatal(err)
	}
	all := out.String()
	sc := bufio.NewScanner(&out)
	sc.Buffer(nil, 16<<20)
	i := 0
	for ; sc.Scan(); i++ {
		var got map[string]any
		if err := json.Unmarshal(sc.Bytes(), &got); err != nil {
			t.Fatalf("line %d: %v", i+1, err)
		}
		if got["file"] != files[i] {
			t.Fatalf("line %d is about %v, want %s (argument order)", i+1, got["file"], files[i])
		}
		info, err := deb.ReadInfoFile(files[i])
		if err != nil {
			t.Fatal(err)
		}
		if got["package"] != info.Package || got["version"] != info.Version || got["multi_arch"] != info.MultiArch || got["format"] != "2.0" {
			t.Errorf("%s: package, version, multi_arch, format = %v %v %v %v; want %s %s %s 2.0", names[i], got["package"], got["version"], got["multi_arch"], got["format"], info.Package, info.Version, info.MultiArch)
		}
		if dm := got["data_member"].(map[string]any); dm["name"] != info.DataMember {
			t.Errorf("%s: data_member = %v, want %s", names[i], dm, info.DataMember)
		}
		if cf := got["conffiles"].([]any); len(cf) != len(info.Conffiles) {
			t.Errorf("%s: conffiles = %v, want %d", names[i], cf, len(info.Conffiles))
		}
		if s := got["scripts"].(map[string]any); len(s) != 5 || s["postinst"].(map[string]any)["text"] != string(info.Scripts["postinst"]) {
			t.Errorf("%s: scripts = %v", names[i], s)
		}
		var entries []*deb.Entry
		deb.WalkDataFile(files[i], deb.Options{Hashes: true}, func(e *deb.Entry) error { entries = append(entries, e); return nil })
		fs := got["files"].([]any)
		if len(fs) != len(entries) {
			t.Fatalf("%s: %d files, want %d", names[i], len(fs), len(entries))
		}
		for k, e := range entries {
			f := fs[k].(map[string]any)
			if f["path"] != e.Path || f["type"] != e.Type.String() || f["mode"] != inspectOctalMode(e.Mode) {
				t.Errorf("%s: file %d = %v, want %s %v %s", names[i], k, f, e.Path, e.Type, inspectOctalMode(e.Mode))
			}
			if e.Hashed && (f["sha256"] != hex.EncodeToString(e.SHA256[:]) || f["md5"] != hex.EncodeToString(e.MD5[:])) {
				t.Errorf("%s: %s hashes = %v %v", names[i], e.Path, f["sha256"], f["md5"])
			}
			if !e.Hashed && f["sha256"] != nil {
				t.Errorf("%s: %s (%v) has a sha256", names[i], e.Path, e.Type)
			}
		}
	}
	if i != len(files) {
		t.Errorf("%d JSON lines, want %d", i, len(files))
	}
	// The zstd fixture's remove-on-upgrade conffile.
	if !strings.Contains(all, `{"path":"/etc/debseal-fixture/obsolete.conf","remove_on_upgrade":true}`) {
		t.Errorf("no remove-on-upgrade conffile in the JSON of fixture_zstd.deb")
	}
}

// TestInspectErrors: a bad file is reported, the good ones still shown,
// and the exit code is 2.
func TestInspectErrors(t *testing.T) {
	bad := filepath.Join(t.TempDir(), "bad.deb")
	if err := os.WriteFile(bad, []byte("!<arch>\nnot a deb"), 0o644); err != nil {
		t.Fatal(err)
	}
	good := inspectFixture(t, "fixture_gzip.deb")
	for _, jsonOut := range []bool{false, true} {
		var out bytes.Buffer
		err := runInspect(context.Background(), inspectOpts{JSON: jsonOut}, []string{bad, good, inspectFixture(t, "bomb_zstd.deb")}, &out)
		if err == nil || !strings.Contains(err.Error(), "deb: "+bad) || exitCode(err) != exitError {
			t.Errorf("runInspect(json=%v) = %v (exit %d), want an error naming %s, exit %d", jsonOut, err, exitCode(err), bad, exitError)
		}
		if !strings.Contains(out.String(), "debseal-fixture") {
			t.Errorf("runInspect(json=%v) did not show the good file:\n%s", jsonOut, out.String())
		}
		if jsonOut {
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			var first map[string]any
			if len(lines) != 3 || json.Unmarshal([]byte(lines[0]), &first) != nil || first["file"] != bad || first["error"] == nil {
				t.Errorf("JSON output = %q, want 3 lines, the first an error object for %s", lines, bad)
			}
		}
	}
	// Without --files the bomb's data member is never decompressed.
	if err := runInspect(context.Background(), inspectOpts{}, []string{inspectFixture(t, "bomb_zstd.deb")}, &bytes.Buffer{}); err != nil {
		t.Errorf("inspect bomb_zstd.deb (control only) = %v, want success", err)
	}
	if err := runInspect(context.Background(), inspectOpts{Files: true}, []string{inspectFixture(t, "bomb_zstd.deb")}, &bytes.Buffer{}); !strings.Contains(err.Error(), "decompression bomb") {
		t.Errorf("inspect --files bomb_zstd.deb = %v, want the bomb reported", err)
	}
}

func TestInspectCommandLine(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
		wantErr  string
	}{
		{name: "no file", args: []string{"inspect"}, wantCode: exitUsage, wantErr: "no FILE.deb given"},
		{name: "help", args: []string{"inspect", "--help"}, wantCode: exitOK, wantOut: `docs/json.md ("inspect")`},
		{name: "help exit codes", args: []string{"inspect", "--help"}, wantCode: exitOK, wantOut: "EXIT CODES:"},
		{name: "info", args: []string{"inspect", inspectFixture(t, "fixture_xz.deb")}, wantCode: exitOK, wantOut: " Package: debseal-fixture\n"},
		{name: "json", args: []string{"inspect", "--json", inspectFixture(t, "fixture_xz.deb")}, wantCode: exitOK, wantOut: `"package":"debseal-fixture"`},
		{name: "missing file", args: []string{"inspect", "/nonexistent.deb"}, wantCode: exitError, wantErr: "debseal: open /nonexistent.deb: no such file or directory"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(append([]string{"debseal"}, tt.args...), &stdout, &stderr)
			if code != tt.wantCode || !strings.Contains(stdout.String(), tt.wantOut) || !strings.Contains(stderr.String(), tt.wantErr) {
				t.Errorf("debseal %q = %d, stdout %q, stderr %q; want %d, stdout with %q, stderr with %q",
					tt.args, code, stdout.String(), stderr.String(), tt.wantCode, tt.wantOut, tt.wantErr)
			}
		})
	}
}

// TestInspectCanceled: a canceled context stops the batch with its error.
func TestInspectCanceled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := runInspect(ctx, inspectOpts{Files: true}, []string{inspectFixture(t, "fixture_gzip.deb"), inspectFixture(t, "fixture_xz.deb")}, &bytes.Buffer{})
	if err != context.Canceled && !strings.Contains(err.Error(), context.Canceled.Error()) {
		t.Errorf("runInspect(canceled) = %v, want context.Canceled", err)
	}
}

func TestInspectLsMode(t *testing.T) {
	tests := []struct {
		typ, mode, want string
	}{
		{"file", "0644", "-rw-r--r--"},
		{"file", "4755", "-rwsr-xr-x"},
		{"file", "4644", "-rwSr--r--"},
		{"dir", "3775", "drwxrwsr-t"},
		{"dir", "1776", "drwxrwxrwT"},
		{"symlink", "0777", "lrwxrwxrwx"},
		{"hardlink", "0600", "hrw-------"},
	}
	for _, tt := range tests {
		if got := inspectLsMode(tt.typ, tt.mode); got != tt.want {
			t.Errorf("inspectLsMode(%q, %q) = %q, want %q", tt.typ, tt.mode, got, tt.want)
		}
	}
}

// TestInspectRefusesFIFO: inspect of a FIFO (or of a .deb replaced by one)
// fails at once with an error naming it instead of waiting for a writer,
// with and without --files.
func TestInspectRefusesFIFO(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "x.deb")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, files := range []bool{false, true} {
		done := make(chan error, 1)
		go func() {
			done <- runInspect(context.Background(), inspectOpts{Files: files}, []string{fifo}, &bytes.Buffer{})
		}()
		select {
		case err := <-done:
			if !errors.Is(err, deb.ErrNotRegular) || !strings.Contains(err.Error(), fifo) || exitCode(err) != exitError {
				t.Errorf("inspect(files=%v) FIFO = %v (exit %d), want deb.ErrNotRegular naming %s, exit %d", files, err, exitCode(err), fifo, exitError)
			}
		case <-time.After(5 * time.Second):
			if f, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
				f.Close() // unblock the reader
			}
			t.Fatalf("inspect(files=%v) of a FIFO blocked", files)
		}
	}
	if _, err := deb.ReadInfoFile(fifo); !errors.Is(err, deb.ErrNotRegular) {
		t.Errorf("ReadInfoFile(FIFO) = %v, want ErrNotRegular", err)
	}
	if err := deb.WalkDataFile(fifo, deb.Options{}, func(*deb.Entry) error { return nil }); !errors.Is(err, deb.ErrNotRegular) {
		t.Errorf("WalkDataFile(FIFO) = %v, want ErrNotRegular", err)
	}
}
