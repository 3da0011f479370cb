package seal

import (
	"bytes"
	"fmt"

	"github.com/debseal/debseal/pkg/confined"
	"github.com/debseal/debseal/pkg/policy"
)

// keptPolicyFile holds the last configuration a debseal run that changes
// files read without error, as policy.Format writes it: what the hooks and
// the wrapper apply while debseal.conf does not parse, so that a typo there
// neither stops dpkg nor makes debseal lock less (or more) than it did.
const keptPolicyFile = confined.Own + "/policy"

// KeepPolicy records c as the configuration to fall back on. It writes
// only when that changed (a hook run usually reads and compares).
func KeepPolicy(root string, c *policy.Config) error {
	text := fmt.Sprintf("# The last configuration debseal read without error (%s), as it applied it.\n"+
		"# The hooks and the wrapper apply this while that file does not parse. Written by debseal.\n", c.File) + c.Format()
	r, err := openRoot(root)
	if err != nil {
		return err
	}
	defer r.Close()
	if old, err := r.ReadFile(keptPolicyFile); err == nil && string(old) == text {
		return nil
	}
	if err := r.WriteFileAtomic(keptPolicyFile, []byte(text), 0o644); err != nil {
		return fmt.Errorf("seal: keeping the configuration: %w", err)
	}
	return nil
}

// KeptPolicy reads the configuration KeepPolicy recorded; the error
// matches fs.ErrNotExist when there is none.
func KeptPolicy(root string) (*policy.Config, error) {
	r, err := openRoot(root)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	b, err := r.ReadFile(keptPolicyFile)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return policy.Parse(bytes.NewReader(b), r.Join(keptPolicyFile))
}
