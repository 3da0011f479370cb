package seal

import (
	"github.com/debseal/debseal/pkg/debfmt"
)

// Request says what a dpkg run, or a whole apt transaction, is about to
// do. The dpkghook package builds it from dpkg's command line or apt's
// Pre-Install-Pkgs lines.
type Request struct {
	Debs             []string `json:"debs,omitempty"`      // archives to unpack; with Recursive also directories
	Recursive        bool     `json:"recursive,omitempty"` // -R: find *.deb under the Debs directories
	Configure        []string `json:"configure,omitempty"` // package specs
	Remove           []string `json:"remove,omitempty"`    // package specs to remove or purge
	TriggersOnly     []string `json:"triggers_only,omitempty"`
	ConfigurePending bool     `json:"configure_pending,omitempty"`
	RemovePending    bool     `json:"remove_pending,omitempty"`
	PurgePending     bool     `json:"purge_pending,omitempty"`
	TriggersPending  bool     `json:"triggers_pending,omitempty"`
	NoTriggers       bool     `json:"no_triggers,omitempty"` // --no-triggers: triggers are only recorded
	// Unknown: what dpkg will do cannot be told (no command line): unlock
	// everything sealed.
	Unknown string `json:"unknown,omitempty"`
}

// DebInfo is what a transaction needs to know about an archive before dpkg
// unpacks it: read from the control member only (pkg/deb).
type DebInfo struct {
	Path                                  string
	Package, Version, Arch, MultiArch     string
	Replaces, Conflicts, Breaks, Provides string
	Paths                                 []string            // regular files from md5sums, plus conffiles
	MD5                                   map[string][16]byte // md5sums, by absolute path
	Scripts                               map[string][]byte   // preinst, postinst, prerm, postrm
	Triggers                              []debfmt.Trigger
}
