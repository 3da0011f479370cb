#!/bin/bash
# debseal-vmagent: the guest half of pkg/vm's command channel.
#
# Reads requests "ID BASE64-SCRIPT" from stdin, one a line; runs each
# script with bash in the background (so the host can poll while a long
# command runs, and cut the power in its middle) and answers
# "ID EXIT-STATUS BASE64-OUTPUT" on stdout, stdout and stderr combined.
# Replies are written under a lock, one line each, so concurrent answers
# never interleave. In the guest, a systemd unit runs it on the virtio-serial
# port; pkg/vm's tests run this same file on a pipe.
set -u
dir=${VMAGENT_DIR:-/run/debseal-vmagent}
mkdir -p "$dir"
: >"$dir/lock"
while :; do
	while IFS=' ' read -r id script; do
		case $id in
		'' | *[!a-z0-9]*) continue ;;
		esac
		(
			printf '%s' "$script" | base64 -d >"$dir/$id.sh" 2>/dev/null
			bash "$dir/$id.sh" </dev/null >"$dir/$id.out" 2>&1
			rc=$?
			reply="$id $rc $(base64 -w0 <"$dir/$id.out")"
			rm -f "$dir/$id.sh" "$dir/$id.out"
			{
				flock 9
				printf '%s\n' "$reply"
			} 9>"$dir/lock"
		) &
	done
	# End of input. A virtio-serial port reads as empty while the host has
	# not connected: keep the port open and look again. Exiting would close
	# it, and bytes the host sends while no one holds the port open stall
	# the channel. On a pipe (pkg/vm's tests), the end is the end.
	[ -c /proc/self/fd/0 ] || break
	sleep 0.2
done
wait
