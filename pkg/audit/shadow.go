package audit

import (
	"context"
	"errors"
	"fmt"

	"github.com/debseal/debseal/pkg/dpkgdb"
	"github.com/debseal/debseal/pkg/shadow"
)

// shadowed checks the mounts below the root (pkg/shadow) for the audited
// packages: one Shadowed finding per mount that hides sealed files of
// them, and the number of files hidden. The mount list is read only when
// some audited package is sealed (nothing else can be hidden); a list that
// cannot be read is an Unreadable finding, not the end of the audit.
func (a *Auditor) shadowed(ctx context.Context, pkgs []*dpkgdb.Package) ([]Finding, int, error) {
	if a.Mounts == nil {
		return nil, 0, nil
	}
	c := &shadow.Checker{FS: a.FS, DB: a.DB, Policy: a.Policy, Sealed: a.Sealed, Manifests: a.Manifests}
	shadows, err := c.Find(ctx, pkgs, a.Mounts)
	var me *shadow.MountsError
	if errors.As(err, &me) {
		return []Finding{{Kind: Unreadable, Path: "/proc/self/mountinfo", Real: "/proc/self/mountinfo", Source: "mountinfo", Err: me.Err}}, 0, nil
	}
	if err != nil {
		return nil, 0, err
	}
	var out []Finding
	files := 0
	for i := range shadows {
		s := &shadows[i]
		files += s.Hidden
		plural := "s"
		if s.Hidden == 1 {
			plural = ""
		}
		out = append(out, Finding{Kind: Shadowed, Package: s.Packages[0], Path: s.Point, Real: s.Point,
			Expected: "no mount", Actual: fmt.Sprintf("%s hiding %d sealed file%s", s.Describe(), s.Hidden, plural),
			Source: "mountinfo", Shadow: s})
	}
	return out, files, nil
}
