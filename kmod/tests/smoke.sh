#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Guest smoke test of vfio_mig_emu: load, one instance per profile, the
# migration data path through vfio fds (smoke.py), remove, unload, and the
# module's live-object counters back to zero.
# Run on the host as: scripts/vm-run -- kmod/tests/smoke.sh
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
ko=$top/kmod/vfio_mig_emu.ko
parent=/sys/devices/virtual/vfio_mig_emu/vfio_mig_emu

fail() { echo "smoke: FAIL: $*" >&2; exit 1; }

for mod in vfio vfio_iommu_type1 mdev libcrc32c; do
	modprobe "$mod" || fail "modprobe $mod"
done
insmod "$ko" || fail "insmod $ko"
[ -d "$parent/mdev_supported_types" ] || fail "no mdev parent at $parent"

# The module offers only the profiles the kernel's vfio core can drive (no
# PRE_COPY ones where the core predates PRE_COPY, as on Linux 6.1).
declare -A uuid
offered=()
for prof in full stopcopy p2p precopy; do
	if [ -d "$parent/mdev_supported_types/vfio_mig_emu-$prof" ]; then
		offered+=("$prof")
	fi
done
[ "${#offered[@]}" -gt 0 ] || fail "no mdev type under $parent/mdev_supported_types"
echo "smoke: profiles offered: ${offered[*]}"
# The instance held open against rmmod and left for rmmod to tear down.
held=${offered[0]}
i=0
for prof in "${offered[@]}"; do
	t=$parent/mdev_supported_types/vfio_mig_emu-$prof
	uuid[$prof]=$(printf '6d650000-0000-4000-8000-%012d' "$i")
	i=$((i + 1))
	echo "${uuid[$prof]}" >"$t/create" || fail "create $prof"
	[ -e "/sys/bus/mdev/devices/${uuid[$prof]}" ] || fail "no mdev ${uuid[$prof]}"
done
ls /sys/bus/mdev/devices

if [ "${SMOKE_PY:-1}" = 1 ]; then
	for prof in "${offered[@]}"; do
		python3 "$here/smoke.py" "${uuid[$prof]}" "$prof" ||
			fail "smoke.py on $prof"
	done
	for prof in full p2p; do
		[ -n "${uuid[$prof]:-}" ] || continue
		python3 "$here/stress.py" "${uuid[$prof]}" "${STRESS_SECONDS:-8}" ||
			fail "stress.py on $prof"
	done
fi

# Control plane: every netlink command, faults, events, knobs.
if [ "${SMOKE_NL:-1}" = 1 ] && [ "${#offered[@]}" -lt 4 ]; then
	echo "smoke: nl.py skipped: it needs all four profiles"
elif [ "${SMOKE_NL:-1}" = 1 ]; then
	python3 "$here/nl.py" "${uuid[full]}" "${uuid[stopcopy]}" \
		"${uuid[p2p]}" "${uuid[precopy]}" || fail "nl.py"
fi

# rmmod is refused while a device fd is open.
ready=$(mktemp -u)
python3 -c '
import os, sys, time
sys.path.insert(0, sys.argv[1])
import smoke
d = smoke.Device(sys.argv[2])
open(sys.argv[3], "w").close()
time.sleep(4)
' "$here" "${uuid[$held]}" "$ready" &
holder=$!
for _ in $(seq 100); do [ -e "$ready" ] && break; sleep 0.1; done
[ -e "$ready" ] || fail "holder did not open the device"
if rmmod vfio_mig_emu 2>/dev/null; then
	fail "rmmod succeeded with a device fd open"
fi
wait "$holder" || fail "holder failed"

for prof in "${offered[@]}"; do
	[ "$prof" != "$held" ] || continue
	echo 1 >"/sys/bus/mdev/devices/${uuid[$prof]}/remove" || fail "remove $prof"
done

# The held instance is left for rmmod to tear down with the parent.
for c in live_files live_buffers; do
	v=$(cat "$parent/stats/$c")
	echo "smoke: $c=$v"
	[ "$v" = 0 ] || fail "$c is $v after removing every device"
done

[ "$(cat "$parent/stats/live_devices")" = 1 ] || fail "live_devices != 1"
rmmod vfio_mig_emu || fail "rmmod"
[ ! -e "/sys/bus/mdev/devices/${uuid[$held]}" ] || fail "mdev survived rmmod"
[ ! -d /sys/module/vfio_mig_emu ] || fail "module still loaded"
# Reports only: a lockdep kernel's boot banner also says "lockdep".
if dmesg | grep -E 'WARNING:|BUG:|Oops|possible (circular|recursive) locking|inconsistent lock state|KASAN'; then
	fail "kernel log shows a warning"
fi
echo "smoke: PASS"
