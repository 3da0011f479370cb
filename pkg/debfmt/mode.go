package debfmt

import "io/fs"

// UnixMode returns m's permission bits as chmod, tar and dpkg's
// statoverride file write them: the rwx bits plus 04000 setuid, 02000
// setgid and 01000 sticky (fs.FileMode keeps those three apart).
func UnixMode(m fs.FileMode) uint32 {
	v := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		v |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		v |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		v |= 0o1000
	}
	return v
}
