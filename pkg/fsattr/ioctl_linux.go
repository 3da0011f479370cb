//go:build linux

package fsattr

import "golang.org/x/sys/unix"

// The only two ioctls. The kernel reads and writes an int here although
// the request numbers say long (ioctl_iflags(2), golang/go#45585): pass a
// 32-bit value both ways. unix.IoctlSetInt would pass the value itself and
// fail with EFAULT.

func getFlags(fd int) (uint32, error) {
	return unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
}

func setFlags(fd int, v uint32) error {
	return unix.IoctlSetPointerInt(fd, unix.FS_IOC_SETFLAGS, int(int32(v)))
}
