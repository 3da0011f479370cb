#!/usr/bin/env bash
# make demo: debseal's main job in a throw-away sandbox, with real dpkg.
# It builds two small packages, installs them into a temporary root with
# dpkg --root, locks them, shows that even root cannot change them, shows
# the status and an audit, then unlocks and removes everything. It never
# touches this machine's own files.
set -euo pipefail
bin=${1:?usage: demo.sh PATH-TO-DEBSEAL}
if [ "$(id -u)" != 0 ]; then
	echo "demo: the immutable flag needs root (CAP_LINUX_IMMUTABLE): run 'sudo make demo'" >&2
	exit 1
fi
for c in dpkg dpkg-deb lsattr; do
	command -v "$c" >/dev/null || { echo "demo: needs $c (apt-get install dpkg e2fsprogs)" >&2; exit 1; }
done

work=$(mktemp -d /tmp/debseal-demo.XXXXXX)
root=$work/root
cleanup() {
	# Whatever happened, leave nothing immutable behind.
	"$bin" --root "$root" unlock --all >/dev/null 2>&1 || true
	chattr -R -i "$work" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT

if [ -t 1 ]; then b=$'\e[1m' g=$'\e[32m' r=$'\e[0m'; else b='' g='' r=''; fi
step() { printf '\n%s== %s%s\n' "$b" "$*" "$r"; }
show() { printf '%s$ %s%s\n' "$g" "$*" "$r"; "$@"; }
# refused CMD...: run a tampering attempt that must fail, and say so.
refused() {
	printf '%s# %s%s\n' "$g" "$*" "$r"
	if sh -c "$*" 2>&1 | sed 's/^/  /'; [ "${PIPESTATUS[0]}" -eq 0 ]; then
		echo "demo: FAILED: '$*' was allowed" >&2
		exit 1
	fi
	echo "  -> refused"
}

step "Build two small packages with dpkg-deb --build"
pkg=$work/pkgs
mkdir -p "$pkg/hello/DEBIAN" "$pkg/hello/usr/bin" "$pkg/hello/etc" "$pkg/hello/usr/share/doc/demo-hello" \
	"$pkg/lib/DEBIAN" "$pkg/lib/usr/lib/demo"
cat >"$pkg/hello/DEBIAN/control" <<EOF
Package: demo-hello
Version: 1.0
Architecture: all
Maintainer: debseal demo <demo@debseal.invalid>
Depends: demo-lib
Description: says hello (debseal demo)
EOF
printf '#!/bin/sh\necho "hello from a sealed binary"\n' >"$pkg/hello/usr/bin/demo-hello"
chmod 0755 "$pkg/hello/usr/bin/demo-hello"
echo "greeting = hello" >"$pkg/hello/etc/demo-hello.conf"
echo "/etc/demo-hello.conf" >"$pkg/hello/DEBIAN/conffiles"
echo "demo copyright" >"$pkg/hello/usr/share/doc/demo-hello/copyright"
cat >"$pkg/lib/DEBIAN/control" <<EOF
Package: demo-lib
Version: 1.0
Architecture: all
Maintainer: debseal demo <demo@debseal.invalid>
Description: a library (debseal demo)
EOF
echo "library code" >"$pkg/lib/usr/lib/demo/libdemo.so.1.0"
ln -s libdemo.so.1.0 "$pkg/lib/usr/lib/demo/libdemo.so.1"
# Version 1.1 of demo-hello, to upgrade to once everything is locked.
cp -a "$pkg/hello" "$pkg/hello11"
sed -i 's/^Version: 1.0/Version: 1.1/' "$pkg/hello11/DEBIAN/control"
printf '#!/bin/sh\necho "hello from version 1.1"\n' >"$pkg/hello11/usr/bin/demo-hello"
for p in hello lib hello11; do
	(cd "$pkg/$p" && find . -path ./DEBIAN -prune -o -type f -print | sed 's|^\./||' | grep -v '^etc/' | xargs -r md5sum >DEBIAN/md5sums)
	show dpkg-deb --root-owner-group --build "$pkg/$p" "$work" >/dev/null
done
ls "$work"/*.deb

step "Install them with real dpkg into a sandbox root"
mkdir -p "$root/var/lib/dpkg/info" "$root/var/lib/dpkg/updates" "$root/var/log"
: >"$root/var/lib/dpkg/status"
dpkg=(dpkg --root="$root" --admindir="$root/var/lib/dpkg" --log="$root/var/log/dpkg.log" --force-script-chrootless)
show "${dpkg[@]}" -i "$work"/demo-lib_1.0_all.deb "$work"/demo-hello_1.0_all.deb
show "$root/usr/bin/demo-hello"

step "Lock every package file (conffiles and symlinks stay as they are)"
show "$bin" --root "$root" lock --all
show lsattr "$root/usr/bin/demo-hello" "$root/usr/lib/demo/libdemo.so.1.0" "$root/etc/demo-hello.conf"

step "Even root cannot change, remove or replace a sealed file"
refused "echo 'echo pwned' >> '$root/usr/bin/demo-hello'"
refused "rm '$root/usr/bin/demo-hello'"
refused "mv '$root/usr/lib/demo/libdemo.so.1.0' '$root/usr/lib/demo/evil'"
refused "chmod 4755 '$root/usr/bin/demo-hello'"
printf '%s# the conffile is still editable:%s\n' "$g" "$r"
show sh -c "echo 'greeting = hi' >'$root/etc/demo-hello.conf'"

step "Upgrade a locked package: dpkg alone fails, dpkg with debseal's hooks works"
refused "${dpkg[*]} -i '$work/demo-hello_1.1_all.deb' >/dev/null"
printf '%s# debseal setup installs these hooks in /etc/dpkg/dpkg.cfg.d; a sandbox passes them on the command line:%s\n' "$g" "$r"
show "${dpkg[@]}" --pre-invoke="$bin hook dpkg-pre" --post-invoke="$bin hook dpkg-post" -i "$work/demo-hello_1.1_all.deb"
show "$root/usr/bin/demo-hello"
show lsattr "$root/usr/bin/demo-hello"
show "${dpkg[@]}" --audit

step "Status: per package, how many files are locked"
show "$bin" --root "$root" status

step "Audit: every file against md5sums and the SHA-256 manifests lock and the hooks recorded: content, mode, owner, links, locks"
show "$bin" --root "$root" audit

step "Unlock: everything is mutable again"
show "$bin" --root "$root" unlock --all
show lsattr "$root/usr/bin/demo-hello"
show sh -c "echo '# edited after unlock' >>'$root/usr/bin/demo-hello'"

step "Done: the sandbox $work is removed"
