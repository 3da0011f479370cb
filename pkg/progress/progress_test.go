package progress

import (
	"os/exec"
	"strings"
	"testing"
)

// Every debseal package may report progress, so this one is a leaf: it
// imports no other debseal package.
func TestLeaf(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	const self = "github.com/debseal/debseal/pkg/progress"
	for _, dep := range strings.Fields(string(out)) {
		if strings.HasPrefix(dep, "github.com/debseal/debseal/") && dep != self {
			t.Errorf("pkg/progress depends on %s", dep)
		}
	}
}
