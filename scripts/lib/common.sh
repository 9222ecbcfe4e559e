# Shared helpers for the host-side scripts (sourced, not run).
# shellcheck shell=bash

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
build=${BUILD:-$top/build/cmake}

# find_bin NAME: path of a built executable, or a clear error.
find_bin() {
	local path
	path=$(find "$build" -type f -name "$1" -perm -u+x 2>/dev/null | head -n 1)
	if [ -z "$path" ]; then
		echo "$(basename "$0"): $1 is not built in $build (run make)" >&2
		return 1
	fi
	echo "$path"
}

# gtest_counts FILE: "passed failed skipped" from a googletest XML report.
gtest_counts() {
	local file=$1 head tests failures errors skipped disabled
	head=$(grep -m1 -o '<testsuites [^>]*>' "$file") || { echo "0 0 0"; return 1; }
	attr() { echo "$head" | grep -o " $1=\"[0-9]*\"" | grep -o '[0-9]*' || echo 0; }
	tests=$(attr tests)
	failures=$(attr failures)
	errors=$(attr errors)
	disabled=$(attr disabled)
	# googletest counts skipped tests as run tests without a failure; the
	# per-test result="skipped"/<skipped> element tells them apart.
	skipped=$(grep -c '<skipped' "$file" || true)
	echo "$((tests - disabled - failures - errors - skipped)) $((failures + errors)) $skipped"
}

# ktap_counts FILE: "passed failed skipped" from a KTAP report's kselftest
# "# Totals: pass:N fail:N ... skip:N" line.
ktap_counts() {
	local line
	line=$(grep -m1 -E '^# Totals: ' "$1") || { echo "0 0 0"; return 1; }
	field() { echo "$line" | grep -o " $1:[0-9]*" | cut -d: -f2; }
	echo "$(field pass) $(field fail) $(field skip)"
}

# check_reports_agree DIR: the suite's three reports in DIR (googletest XML,
# JUnit XML, KTAP) exist and count the same; prints what differs.
check_reports_agree() {
	local dir=$1 gtest junit ktap
	gtest=$(gtest_counts "$dir/guest-suite.xml") || { echo "no googletest report in $dir" >&2; return 1; }
	junit=$(gtest_counts "$dir/junit.xml") || { echo "no JUnit report in $dir" >&2; return 1; }
	ktap=$(ktap_counts "$dir/suite.ktap") || { echo "no KTAP report in $dir" >&2; return 1; }
	if [ "$gtest" != "$junit" ] || [ "$gtest" != "$ktap" ]; then
		echo "reports disagree (passed failed skipped): googletest $gtest, JUnit $junit, KTAP $ktap" >&2
		return 1
	fi
}

# qemu_lane_env: export what tells the guest suite's QEMU lane which QEMUs to
# run: $QEMU (one build of the user's) as VFIOMIG_QEMU, else the 10.0 and
# 11.1 that scripts/fetch-qemu keeps in the cache (VFIOMIG_QEMU_10/_11).
# Prints a line saying which; with neither, the lane's tests skip saying why.
qemu_lane_env() {
	local line
	if [ -n "${QEMU:-}" ]; then
		export VFIOMIG_QEMU=$QEMU
		echo "QEMU lane: $QEMU (from \$QEMU)"
		return 0
	fi
	while read -r line; do
		case $line in
		VFIOMIG_QEMU_1[01]=*) export "${line?}" ;;
		esac
	done < <("$top/scripts/fetch-qemu" --print-env 2>/dev/null || true)
	if [ -n "${VFIOMIG_QEMU_10:-}${VFIOMIG_QEMU_11:-}" ]; then
		echo "QEMU lane: ${VFIOMIG_QEMU_10:-no 10.0} ${VFIOMIG_QEMU_11:-no 11.1}"
	else
		echo "QEMU lane: no QEMU fetched (scripts/fetch-qemu); its tests will be skipped"
	fi
}
