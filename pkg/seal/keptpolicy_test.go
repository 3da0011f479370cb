package seal

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/debseal/debseal/pkg/policy"
)

func TestKeptPolicy(t *testing.T) {
	root := t.TempDir()
	if _, err := KeptPolicy(root); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("KeptPolicy(nothing kept) = %v, want fs.ErrNotExist", err)
	}
	c, err := policy.Parse(strings.NewReader("exclude-path = /opt # vendor\nunlock-scope = all\nexclude-package = x*\n"), "/etc/debseal/debseal.conf")
	if err != nil {
		t.Fatal(err)
	}
	if err := KeepPolicy(root, c); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(root, "var/lib/debseal/policy")
	old := time.Unix(1, 0)
	if err := os.Chtimes(p, old, old); err != nil {
		t.Fatal(err)
	}
	if err := KeepPolicy(root, c); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(p); err != nil || !st.ModTime().Equal(old) {
		t.Errorf("KeepPolicy rewrote an unchanged configuration (%v)", err)
	}
	got, err := KeptPolicy(root)
	if err != nil {
		t.Fatal(err)
	}
	if got.Format() != c.Format() || got.File != p {
		t.Errorf("KeptPolicy() = %q from %s, want %q from %s", got.Format(), got.File, c.Format(), p)
	}
	if ok, why := got.PathLocked("/opt/a"); ok || !strings.Contains(why.String(), p) {
		t.Errorf("kept policy: PathLocked(/opt/a) = %v, %q; want excluded by a rule of %s", ok, why, p)
	}
}
