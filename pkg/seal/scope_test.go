package seal

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/debseal/debseal/pkg/policy"
)

// What a request touches, case by case: the table is the README's "What
// one run unlocks", as data. A package with pending triggers is in every
// run that may process triggers: its postinst may run.
func TestScope(t *testing.T) {
	pkgs := []fakePkg{
		{name: "a", files: []string{"/usr", "/usr/bin", "/usr/bin/a"}},
		{name: "old", files: []string{"/usr", "/usr/bin", "/usr/bin/old"}},
		{name: "broken", files: []string{"/usr", "/usr/bin", "/usr/bin/broken"}},
		{name: "unpacked", state: "unpacked", files: []string{"/usr", "/usr/bin", "/usr/bin/u"}},
		{name: "gone", want: "deinstall", files: []string{"/usr", "/usr/bin", "/usr/bin/gone"}},
		{name: "purged", want: "purge", state: "config-files", files: []string{"/etc", "/etc/purged.conf"}},
		{name: "trig", state: "triggers-pending", files: []string{"/usr", "/usr/bin", "/usr/bin/trig"}},
		{name: "multi", arch: "amd64", ma: "same", files: []string{"/usr", "/usr/lib", "/usr/lib/m.so"}},
		{name: "multi", arch: "i386", ma: "same", files: []string{"/usr", "/usr/lib", "/usr/lib/m.so"}},
	}
	debs := map[string]*DebInfo{
		"/d/new.deb":   {Package: "new", Version: "1", Arch: "all", Replaces: "old", Conflicts: "old", Breaks: "broken", Paths: []string{"/usr/bin/new"}},
		"/d/a.deb":     {Package: "a", Version: "2", Arch: "all", Paths: []string{"/usr/bin/a"}},
		"/d/multi.deb": {Package: "multi", Version: "2", Arch: "amd64", MultiArch: "same"},
		"/d/divert.deb": {Package: "dv", Version: "1", Arch: "all", Scripts: map[string][]byte{
			"preinst": []byte("#!/bin/sh\ndpkg-divert --rename --divert \"$(cat /etc/where)\" /usr/bin/a\n")}},
	}
	for _, tt := range []struct {
		name          string
		req           Request
		pol           *policy.Config
		primary, rest []string
		all           bool
	}{
		{name: "unpack: the package, what it replaces or conflicts with; what it breaks",
			req: Request{Debs: []string{"/d/new.deb"}}, primary: []string{"old"}, rest: []string{"broken", "trig"}},
		{name: "upgrade: the installed version",
			req: Request{Debs: []string{"/d/a.deb"}}, primary: []string{"a"}, rest: []string{"trig"}},
		{name: "Multi-Arch: same: every architecture",
			req: Request{Debs: []string{"/d/multi.deb"}}, primary: []string{"multi:amd64", "multi:i386"}, rest: []string{"trig"}},
		{name: "configure --pending: unpacked packages and pending triggers",
			req: Request{ConfigurePending: true}, primary: []string{"trig", "unpacked"}, rest: []string{"trig"}},
		{name: "remove --pending: packages marked for removal",
			req: Request{RemovePending: true}, primary: []string{"gone"}, rest: []string{"trig"}},
		{name: "purge --pending", req: Request{PurgePending: true}, primary: []string{"purged"}, rest: []string{"trig"}},
		{name: "named packages", req: Request{Configure: []string{"a"}, Remove: []string{"old"}, TriggersOnly: []string{"broken"}},
			primary: []string{"a", "old"}, rest: []string{"broken", "trig"}},
		{name: "unknown command line: everything", req: Request{Unknown: "cannot parse"}, all: true},
		{name: "an unreadable archive: everything", req: Request{Debs: []string{"/d/missing.deb"}}, all: true},
		{name: "a computed --rename: everything", req: Request{Debs: []string{"/d/divert.deb"}}, all: true},
		{name: "lock-directories: everything", req: Request{Configure: []string{"a"}}, pol: mustPolicy(t, "lock-directories = yes\n"),
			primary: []string{"a"}, rest: []string{"trig"}, all: true},
		{name: "unlock-scope = all: everything", req: Request{Configure: []string{"a"}}, pol: mustPolicy(t, "unlock-scope = all\n"),
			primary: []string{"a"}, rest: []string{"trig"}, all: true},
		{name: "unlock-scope = plan: the plan", req: Request{Configure: []string{"a"}}, pol: mustPolicy(t, "unlock-scope = plan\n"),
			primary: []string{"a"}, rest: []string{"trig"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, pkgs, "", func(f *fakeFS) {}, tt.pol)
			s := w.sealedSystem(t)
			s.Policy = w.pl.Policy
			s.ReadDeb = func(p string) (*DebInfo, error) {
				d, ok := debs[p]
				if !ok {
					return nil, errors.New("no such archive")
				}
				d.Path = p
				return d, nil
			}
			sc, err := s.scope(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if sc.all != tt.all {
				t.Errorf("scope(%+v).all = %v (%s), want %v", tt.req, sc.all, sc.reason, tt.all)
			}
			if tt.all && tt.primary == nil {
				return
			}
			if got := ids(sc.primary); !reflect.DeepEqual(got, tt.primary) {
				t.Errorf("primary = %v, want %v", got, tt.primary)
			}
			if got := ids(sc.others); !reflect.DeepEqual(got, tt.rest) {
				t.Errorf("others = %v, want %v", got, tt.rest)
			}
		})
	}
}

// TestScopeNoTriggers: a --no-triggers run (every one of apt's) leaves out
// the pending triggers dpkg cannot process in it, and keeps those it can:
// of a package that something awaits, or whose interest lets an
// activation in this run make something await it.
func TestScopeNoTriggers(t *testing.T) {
	pkgs := []fakePkg{
		{name: "a", files: []string{"/usr", "/usr/bin", "/usr/bin/a"}},
		{name: "noawait", state: "triggers-pending", files: []string{"/usr", "/usr/bin", "/usr/bin/noawait"}},
		{name: "awaitfile", state: "triggers-pending", files: []string{"/usr", "/usr/bin", "/usr/bin/awaitfile"}},
		{name: "awaitexplicit", state: "triggers-pending", files: []string{"/usr", "/usr/bin", "/usr/bin/awaitexplicit"}},
		{name: "awaited", state: "triggers-pending", files: []string{"/usr", "/usr/bin", "/usr/bin/awaited"}},
		{name: "waiter", state: "triggers-awaited", awaits: "awaited", files: []string{"/usr", "/usr/bin", "/usr/bin/waiter"}},
	}
	triggers := map[string]string{
		"File":      "/usr/share/x noawait/noawait\n/usr/share/y awaitfile\n/usr/share/z awaited/noawait\n",
		"some-trig": "noawait/noawait\nawaitexplicit\n",
	}
	everyPending := []string{"awaited", "awaitexplicit", "awaitfile", "noawait", "waiter"}
	for _, tt := range []struct {
		name          string
		req           Request
		primary, rest []string
	}{
		{name: "processing triggers: every pending package",
			req: Request{Configure: []string{"a"}}, primary: []string{"a"}, rest: everyPending},
		{name: "--no-triggers: what may be awaited, and what awaits",
			req:     Request{Configure: []string{"a"}, NoTriggers: true},
			primary: []string{"a"}, rest: []string{"awaited", "awaitexplicit", "awaitfile", "waiter"}},
		{name: "--no-triggers configuring a pending package: its own triggers",
			req:     Request{Configure: []string{"noawait"}, NoTriggers: true},
			primary: []string{"noawait"}, rest: []string{"awaited", "awaitexplicit", "awaitfile", "waiter"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newWorld(t, pkgs, "", func(f *fakeFS) {}, nil)
			if err := os.MkdirAll(filepath.Join(w.db.Admindir, "triggers"), 0o755); err != nil {
				t.Fatal(err)
			}
			for name, body := range triggers {
				if err := os.WriteFile(filepath.Join(w.db.Admindir, "triggers", name), []byte(body), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			s := w.sealedSystem(t)
			sc, err := s.scope(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if got := ids(sc.primary); !reflect.DeepEqual(got, tt.primary) {
				t.Errorf("primary = %v, want %v", got, tt.primary)
			}
			if got := ids(sc.others); !reflect.DeepEqual(got, tt.rest) {
				t.Errorf("others = %v, want %v", got, tt.rest)
			}
		})
	}
}

func ids[V any](m map[string]V) []string {
	if len(m) == 0 {
		return nil
	}
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func mustPolicy(t *testing.T, conf string) *policy.Config {
	t.Helper()
	p, err := policy.Parse(strings.NewReader(conf), "debseal.conf")
	if err != nil {
		t.Fatal(err)
	}
	return p
}
