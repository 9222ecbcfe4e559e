#!/usr/bin/env bash
# In the guest: a manual vfio-migctl session, for the record.  `watch`
# streams control-plane events while `demo` (another process) migrates a
# device; then a device held open by a second process (an interactive
# `vfio-migctl state -i`, fed through a FIFO) is steered through netlink:
# workload, faults that make the holder's next SET fail, knobs, counters.
# Run as: scripts/vm-run -- harness/migctl-session.sh
set -Eeuo pipefail

# shellcheck source=scripts/lib/common.sh
. "$(dirname "${BASH_SOURCE[0]}")/../scripts/lib/common.sh"

ctl=$(find_bin vfio-migctl)
"$top/scripts/guest-load-module"
trap 'echo "migctl-session: failed at line $LINENO" >&2' ERR

say() { printf '\n$ vfio-migctl %s\n' "$*"; "$ctl" "$@"; }
refused() { printf '\n$ vfio-migctl %s\n' "$*"; if "$ctl" "$@"; then echo "(unexpectedly accepted)"; return 1; fi; }
work=$(mktemp -d)

echo "== vfio-migctl watch, while vfio-migctl demo migrates a device in another process"
"$ctl" watch >"$work/watch" &
watcher=$!
sleep 0.5
"$ctl" demo --pages 16 --resources 2 --precopy-rounds 2 >"$work/demo"
sleep 0.5
kill -INT "$watcher"
wait "$watcher"
cat "$work/watch"
echo "($(wc -l <"$work/watch") events; demo: $(grep verdict "$work/demo"))"

echo
echo "== a device held open by another process, steered from vfio-migctl"
uuid=$(say create full --mem-size 256K | tail -n 1)
echo "$uuid"
mkfifo "$work/cmds"
"$ctl" state "$uuid" -i <"$work/cmds" >"$work/holder" 2>&1 &
holder=$!
exec 3>"$work/cmds"
"$ctl" watch "$uuid" --json >"$work/events" &
watcher=$!
sleep 0.5
echo PRE_COPY >&3
sleep 1
say list
say workload "$uuid" reconfig 2
say fault add "$uuid" --site precopy_info --effect garbage_size --nth 1
say fault add "$uuid" --site set_state --from PRE_COPY_P2P --to STOP_COPY --effect fail --errno EXDEV --first 1
say knob "$uuid" --arc-delay PRE_COPY:PRE_COPY_P2P:20000 --load-us-per-resource 100
say show "$uuid"
echo STOP_COPY >&3 # the holder's SET fails on the faulted arc
sleep 1.5
say fault list "$uuid"
say state "$uuid"
refused state "$uuid" STOP
refused knob "$uuid" --dirty-rate 999999999
refused fault add "$uuid" --site open --effect short_io
refused knob "$uuid" --mem-size 5000
refused workload "$uuid" dirty 70000
say counters reset "$uuid"
say fault clear "$uuid"
echo STOP_COPY >&3 # now it goes through
echo quit >&3
exec 3>&-
wait "$holder"
sleep 0.5
kill -INT "$watcher"
wait "$watcher"
echo
echo "== the holder's session (vfio-migctl state $uuid -i)"
cat "$work/holder"
echo
echo "== vfio-migctl watch $uuid --json, meanwhile"
cat "$work/events"
say remove "$uuid"
rm -rf "$work"
rmmod vfio_mig_emu
