#!/usr/bin/env bash
# Rebuilds the kernel-printed fixtures of pkg/mountinfo/testdata: mounts
# made in a private mount namespace (nothing outside it sees them, and they
# end with it), then the lines of /proc/self/mountinfo that the kernel
# prints for them. As root; needs unshare, mkfs.ext4, mkfs.btrfs, btrfs,
# mkfs.vfat and fusefat. See pkg/mountinfo/testdata/README.md.
set -euo pipefail
out=$(cd "$(dirname "$0")/../pkg/mountinfo/testdata" && pwd)
if [ "$(id -u)" != 0 ]; then
	echo "mkmountinfo: needs root" >&2
	exit 1
fi
if [ "${1:-}" != --inside ]; then
	exec unshare --mount --propagation private "$0" --inside
fi

D=/tmp/debseal-mountinfo
mkdir "$D"
mount -t tmpfs debseal-fixtures "$D"
cleanup() {
	cd /
	fusermount -u "$D/fuse" 2>/dev/null || true
	umount -R "$D" 2>/dev/null || true
	rmdir "$D"
}
trap cleanup EXIT
cd "$D"
weird=$(printf 'tab\tnl\nbs\\end')
mkdir dir bind-dir lower upper work merged empty 'with space' "$weird" fuse ext4 btrfs subvol shared-bind
touch file bind-file

# bind.txt: a directory and a file bound elsewhere (root is the source).
mount --bind "$D/dir" "$D/bind-dir"
mount --bind "$D/file" "$D/bind-file"
# overlay.txt
mount -t overlay overlay -o "lowerdir=$D/lower,upperdir=$D/upper,workdir=$D/work" "$D/merged"
# tmpfs.txt: a blank in the mount point and the source, a tab, a newline
# and a backslash in the mount point, an empty source, unbindable.
mount -t tmpfs 'a source' "$D/with space"
mount -t tmpfs tmpfs "$D/$weird"
mount -t tmpfs '' "$D/empty"
mount --make-unbindable "$D/empty"
# fuse.txt: FAT through FUSE (fusefat), as the kernel lists a FUSE mount.
truncate -s 8M fat.img
mkfs.vfat fat.img >/dev/null
fusefat -o rw+ fat.img "$D/fuse" >/dev/null 2>&1
# loop.txt: a loop-mounted ext4, btrfs and a btrfs subvolume, a shared
# peer and a slave of it.
truncate -s 32M ext4.img
mkfs.ext4 -q -F ext4.img
mount -o loop ext4.img "$D/ext4"
truncate -s 128M btrfs.img
mkfs.btrfs -q btrfs.img >/dev/null 2>&1
mount -o loop btrfs.img "$D/btrfs"
btrfs -q subvolume create "$D/btrfs/@sub"
mount -o subvol=@sub "$(findmnt -no SOURCE "$D/btrfs")" "$D/subvol"
mount --make-shared "$D/ext4"
mount --bind "$D/ext4" "$D/shared-bind"
mount --make-slave "$D/shared-bind"

# Field 5 is the mount point (escaped as the kernel prints it).
pick() {
	awk -v d="$D" -v re="$1" '{ p = substr($5, length(d) + 2) } substr($5, 1, length(d)) == d && p ~ re' /proc/self/mountinfo
}
pick '^(bind-dir|bind-file)$' >"$out/bind.txt"
pick '^merged$' >"$out/overlay.txt"
pick '^(with.040space|tab.*|empty)$' >"$out/tmpfs.txt"
pick '^fuse$' >"$out/fuse.txt"
pick '^(ext4|btrfs|subvol|shared-bind)$' >"$out/loop.txt"
wc -l "$out"/{bind,overlay,tmpfs,fuse,loop}.txt
