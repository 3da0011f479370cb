package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/debseal/debseal/pkg/policy"
	"github.com/debseal/debseal/pkg/seal"
)

// loadPolicy reads the root's configuration for a command: one that does
// not parse is an error naming the file, line and setting, and the
// command changes nothing. A command that changes files (keep) records
// what it applies, for the hooks to fall back on (hookPolicy).
func loadPolicy(g globalOpts, keep bool) (*policy.Config, error) {
	pol, err := policy.Load(g.Config)
	if err != nil {
		return nil, err
	}
	if keep {
		if err := seal.KeepPolicy(g.Root, pol); err != nil {
			return nil, err
		}
	}
	return pol, nil
}

// hookPolicy reads the configuration for a hook or the wrapper. Those run
// inside dpkg and must neither stop it for a reason that is not about the
// files' safety (a typo in debseal.conf is not) nor lock less than the
// admin asked for. So when the file does not parse, they apply the
// configuration the last debseal run that read one kept (the policy in
// force until the edit), and say so on stderr and in the log on every
// run. Only when none was kept is the error returned: a pre hook then
// stops dpkg before it changes anything, as for any other error.
func hookPolicy(g globalOpts, log *eventLog) (*policy.Config, error) {
	pol, err := policy.Load(g.Config)
	if err == nil {
		if kerr := seal.KeepPolicy(g.Root, pol); kerr != nil {
			log.Warnf("%v", kerr) // the next run tries again
		}
		return pol, nil
	}
	kept, kerr := seal.KeptPolicy(g.Root)
	switch {
	case errors.Is(kerr, fs.ErrNotExist):
		return nil, fmt.Errorf("%w (and no earlier debseal run kept a configuration to apply instead)", err)
	case kerr != nil:
		return nil, fmt.Errorf("%w (and the configuration kept by an earlier run is unusable: %v)", err, kerr)
	}
	log.Warnf("%v; applying the configuration in force before, kept in %s, until it is fixed", err, kept.File)
	return kept, nil
}
