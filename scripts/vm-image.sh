#!/usr/bin/env bash
# The cached guest of the VM suite (make vmtest, vmtest/):
#
#   scripts/vm-image.sh dir     print the image directory, building it if absent
#   scripts/vm-image.sh key     print the key it is named by
#
# The directory, $DEBSEAL_VM_CACHE/<key> (/var/cache/debseal-vm), holds
#   root.img      raw ext4 of debootstrap --variant=minbase $suite with
#                 $PACKAGES (systemd as init, udev, the Debian kernel),
#                 made with mkfs.ext4 -d -O verity -b 4096 (fs-verity:
#                 the Debian kernel has CONFIG_FS_VERITY=y, and its 6.1
#                 ext4 wants the block size equal to the page size); no
#                 file has verity until something enables it; the tests
#                 boot copy-on-write overlays of it and never write it
#   vmlinuz       the kernel and initramfs from the image's own kernel
#   initrd.img    package, booted with qemu -kernel/-initrd
#   upgrade/      the .debs of the image's upgrade to $suite-security: the
#                 upgrade the power-cut scenario runs and cuts (downloaded
#                 here once, so the guest needs no network)
#   downgrade/    the same packages at the versions the image has (from
#                 debootstrap's download): the scenario alternates upgrade
#                 and downgrade, so each cut needs one boot, not two
# The guest has no network: its only apt source is file:/srv/repo, a second
# disk the tests make. The apt timers and other background jobs are masked
# so nothing but the test runs dpkg. The debseal-vmagent unit serves
# pkg/vm's command channel on the virtio-serial port org.debseal.agent.
#
# The key hashes what decides the contents (this script, the agent, the
# suite, the package list, the architecture); a build runs
# under a lock, so concurrent tests wait for one build. A cold build takes
# a few minutes (debootstrap from the mirror in the machine's apt sources).
set -euo pipefail
cd "$(dirname "$0")/.."
cache=${DEBSEAL_VM_CACHE:-/var/cache/debseal-vm}
suite=${DEBSEAL_VM_SUITE:-bookworm}
arch=$(dpkg --print-architecture)
# What a booted Debian needs beyond minbase, and the tools the checks use
# (lsattr: e2fsprogs; fsverity enable/measure/digest: fsverity, the
# fs-verity checks that do not go through debseal; dpkg --verify needs
# nothing more).
PACKAGES="systemd,systemd-sysv,udev,e2fsprogs,kmod,initramfs-tools,fsverity"
# The kernel comes second, after its initramfs is told to hold only what
# this guest boots with (MODULES=list): building the default one takes
# minutes, and booting it under emulation seconds more.
KERNEL=linux-image-amd64
INITRD_MODULES="virtio_pci virtio_blk ext4"
agent=pkg/vm/agent.sh
key=$(cat "$agent" scripts/vm-image.sh <(printf '%s\n' "$suite" "$arch" "$PACKAGES" "$KERNEL" "$INITRD_MODULES") | sha256sum | cut -c1-12)
out=$cache/$suite-$arch-$key

mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -n1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian}"
}

security_mirror() {
	local m
	m=$(grep -rhoE 'https?://[^ ]+/debian-security/?( |$)' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		head -n1 | tr -d ' ' || true)
	echo "${m:-http://deb.debian.org/debian-security}"
}

mounts=()
cleanup() {
	local i
	for ((i = ${#mounts[@]} - 1; i >= 0; i--)); do
		umount "${mounts[i]}" 2>/dev/null || umount -l "${mounts[i]}" || true
	done
	mounts=()
	[ -z "${tmp:-}" ] || rm -rf "$tmp"
}

# unit NAME CONTENT: a systemd unit in the tree.
unit() {
	printf '%s\n' "$2" >"$root/etc/systemd/system/$1"
}

build() {
	for c in debootstrap mkfs.ext4 chroot; do
		command -v "$c" >/dev/null || { echo "vm-image.sh: needs $c (scripts/deps.txt)" >&2; exit 1; }
	done
	mkdir -p "$cache"
	tmp=$(mktemp -d "$cache/build.XXXXXX")
	trap cleanup EXIT
	root=$tmp/root
	echo "vm-image.sh: debootstrap $suite with $PACKAGES from $(mirror) (cached in $out)" >&2
	if ! debootstrap --variant=minbase --include="$PACKAGES" "$suite" "$root" "$(mirror)" >"$tmp/log" 2>&1; then
		tail -n 30 "$tmp/log" >&2
		exit 1
	fi

	# The upgrade set: what $suite-security upgrades in this tree, except
	# the kernel (held: the tests boot the kernel outside the image, and
	# rebuilding an initramfs under emulation takes minutes).
	cp /etc/resolv.conf "$root/etc/resolv.conf"
	mount -t proc proc "$root/proc" && mounts+=("$root/proc")
	echo MODULES=list >"$root/etc/initramfs-tools/conf.d/debseal-vm"
	printf '%s\n' $INITRD_MODULES >>"$root/etc/initramfs-tools/modules"
	if ! DEBIAN_FRONTEND=noninteractive chroot "$root" sh -c "apt-get -q update && apt-get -q -y install --no-install-recommends $KERNEL" >"$tmp/log" 2>&1; then
		tail -n 30 "$tmp/log" >&2
		exit 1
	fi
	chroot "$root" apt-mark hold "$KERNEL" >/dev/null
	printf 'deb %s %s main\ndeb %s %s-security main\n' "$(mirror)" "$suite" "$(security_mirror)" "$suite" >"$root/etc/apt/sources.list"
	mkdir -p "$root/upgrade/partial"
	if ! chroot "$root" sh -c 'apt-get -q update && apt-get -q -y -d -o Dir::Cache::Archives=/upgrade upgrade' >"$tmp/log" 2>&1; then
		tail -n 30 "$tmp/log" >&2
		exit 1
	fi
	# apt-get -d wrote into the tree; move the set out.
	mkdir -p "$tmp/upgrade"
	mv "$root/upgrade"/*.deb "$tmp/upgrade/" 2>/dev/null || true
	rm -rf "$root/upgrade"
	mkdir -p "$tmp/downgrade"
	local deb pkg
	for deb in "$tmp/upgrade"/*.deb; do
		pkg=$(basename "$deb")
		pkg=${pkg%%_*}
		mv "$root/var/cache/apt/archives/${pkg}_"*.deb "$tmp/downgrade/" ||
			{ echo "vm-image.sh: no installed .deb of $pkg" >&2; exit 1; }
	done
	ls "$tmp/upgrade"/*.deb >/dev/null 2>&1 || { echo "vm-image.sh: $suite-security upgrades nothing in the image" >&2; exit 1; }
	umount "$root/proc" && mounts=()

	rm -rf "$root/var/lib/apt/lists/"* "$root/var/cache/apt/"*.bin "$root/var/cache/apt/archives/"*.deb
	printf 'deb [trusted=yes] file:/srv/repo ./\n' >"$root/etc/apt/sources.list"
	printf '/dev/vda / ext4 errors=remount-ro 0 1\n/dev/vdb /srv/repo ext4 ro,nofail,x-systemd.device-timeout=20s 0 0\n' >"$root/etc/fstab"
	mkdir -p "$root/srv/repo" "$root/var/log/journal"
	echo debseal-vm >"$root/etc/hostname"
	printf '127.0.0.1 localhost\n127.0.1.1 debseal-vm\n' >"$root/etc/hosts"
	: >"$root/etc/resolv.conf"
	od -An -N16 -tx1 /dev/urandom | tr -d ' \n' >"$root/etc/machine-id"
	echo >>"$root/etc/machine-id"
	# Nothing but the test runs apt or dpkg, and nothing else writes.
	for t in apt-daily.timer apt-daily-upgrade.timer dpkg-db-backup.timer e2scrub_all.timer fstrim.timer \
		e2scrub_reap.service systemd-timesyncd.service; do
		ln -sf /dev/null "$root/etc/systemd/system/$t"
	done
	install -m 755 "$agent" "$root/usr/local/sbin/debseal-vmagent"
	unit debseal-vmagent.service "[Unit]
Description=debseal VM test agent (pkg/vm)
BindsTo=dev-virtio\\x2dports-org.debseal.agent.device
After=dev-virtio\\x2dports-org.debseal.agent.device
StartLimitIntervalSec=0

[Service]
ExecStart=/bin/bash -c 'exec /usr/local/sbin/debseal-vmagent <>/dev/virtio-ports/org.debseal.agent >&0'
Restart=always
RestartSec=1

[Install]
WantedBy=multi-user.target"
	ln -sf ../debseal-vmagent.service "$root/etc/systemd/system/multi-user.target.wants/debseal-vmagent.service"

	cp -L "$root/vmlinuz" "$tmp/vmlinuz"
	cp -L "$root/initrd.img" "$tmp/initrd.img"
	local kb
	kb=$(du -sk "$root" | cut -f1)
	# Room for the scenarios' upgrades and debseal's state.
	truncate -s $(((kb * 13 / 10 + 1024 * 1024) / 1024))M "$tmp/root.img"
	if ! mkfs.ext4 -q -L debseal-vm -O verity -b 4096 -d "$root" "$tmp/root.img" >"$tmp/log" 2>&1; then
		cat "$tmp/log" >&2
		exit 1
	fi
	rm -rf "$root"
	mkdir "$tmp/out"
	mv "$tmp/root.img" "$tmp/vmlinuz" "$tmp/initrd.img" "$tmp/upgrade" "$tmp/downgrade" "$tmp/out/"
	mv "$tmp/out" "$out"
	# Older builds of this image (other keys) are dead weight: 2 GB each.
	local old
	for old in "$cache/$suite-$arch"-*; do
		[ "$old" = "$out" ] || rm -rf "$old"
	done
}

case "${1:-}" in
dir)
	if [ ! -d "$out" ]; then
		mkdir -p "$cache"
		exec 9>"$cache/.lock"
		flock 9
		[ -d "$out" ] || build
	fi
	echo "$out"
	;;
key)
	echo "$key"
	;;
*)
	echo "usage: vm-image.sh dir | key" >&2
	exit 64
	;;
esac
