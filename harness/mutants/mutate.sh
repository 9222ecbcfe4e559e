#!/usr/bin/env bash
# Mutation check of the validation suite: build each mutant of the
# committed module listed in mutants.txt, boot one guest, load each mutant
# in turn and run vfio-migtest on it.  A mutant the suite passes is a hole
# in the suite.  Usage: harness/mutants/mutate.sh [BUILD_DIR]
# (BUILD_DIR holds harness/vfio-migtest; default build).
set -Eeuo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(realpath "${1:-$top/build}")
kdir=${KDIR:-/lib/modules/${KVER:-6.12.117+deb12-amd64}/build}
work=$build/mutants

suite=$build/harness/vfio-migtest
[ -x "$suite" ] || { echo "mutate: $suite not built" >&2; exit 1; }
rm -rf "$work"
mkdir -p "$work"

names=()
while IFS=$'\t' read -r name file expr _; do
	case $name in ''|'#'*) continue ;; esac
	dir=$work/$name
	mkdir -p "$dir"
	git -C "$top" archive HEAD kmod | tar -x -C "$dir" --strip-components=1
	cp "$dir/$file" "$dir/$file.orig"
	perl -0pi -e "$expr" "$dir/$file"
	if cmp -s "$dir/$file" "$dir/$file.orig"; then
		echo "mutate: mutant $name does not apply to $file any more; update mutants.txt" >&2
		exit 1
	fi
	if ! make -s -C "$dir" KDIR="$kdir" >"$dir.log" 2>&1; then
		echo "mutate: mutant $name does not build; see $dir.log" >&2
		exit 1
	fi
	names+=("$name")
done <"$here/mutants.txt"

# The unmodified module first: tests failing there do not kill a mutant.
base=$work/baseline
mkdir -p "$base"
git -C "$top" archive HEAD kmod | tar -x -C "$base" --strip-components=1
if ! make -s -C "$base" KDIR="$kdir" >"$base.log" 2>&1; then
	echo "mutate: the unmodified module does not build; see $base.log" >&2
	exit 1
fi

cat >"$work/guest.sh" <<GUEST
#!/usr/bin/env bash
set -uo pipefail
cd "$top"
failing() { grep -E '^\[  FAILED  \]' | sed -e 's/, where GetParam.*//' -e 's/ ([0-9]* ms)\$//' | sort -u; }
scripts/guest-load-module "$base/vfio_mig_emu.ko" >/dev/null || { echo "baseline: could not load"; exit 1; }
# The guest's root is read-only: keep the list on its /tmp.
timeout 300 "$suite" --gtest_brief=1 2>&1 | sed 's/\x1b\[[0-9;]*m//g' | failing >/tmp/baseline-failing.txt
echo "baseline: \$(wc -l </tmp/baseline-failing.txt) failing test(s) ignored below:"
cat /tmp/baseline-failing.txt
rmmod vfio_mig_emu || { echo "baseline: module still in use"; exit 1; }
for m in ${names[*]}; do
	echo "== mutant \$m"
	if ! scripts/guest-load-module "$work/\$m/vfio_mig_emu.ko" >/dev/null; then
		echo "mutant \$m: could not load"; continue
	fi
	out=\$(timeout 300 "$suite" --gtest_brief=1 2>&1 | sed 's/\x1b\[[0-9;]*m//g')
	new=\$(echo "\$out" | failing | comm -23 - /tmp/baseline-failing.txt)
	echo "\$new" | head -n 8
	line=\$(echo "\$out" | grep -E '^vfio-migtest: [0-9]+ passed' || echo "no summary")
	if [ -z "\$new" ]; then
		echo "mutant \$m: SURVIVED (\$line; no test failed that passes on the unmodified module)"
	else
		echo "mutant \$m: killed by \$(echo "\$new" | wc -l) test(s) (\$line)"
	fi
	if ! rmmod vfio_mig_emu 2>/dev/null; then
		echo "mutant \$m: module still in use after the suite; later mutants not run"
		break
	fi
done
GUEST
chmod +x "$work/guest.sh"
"$top/scripts/vm-run" --out "$work/vm" -- "$work/guest.sh" | tee "$work/report.txt"
killed=$(grep -c '^mutant .*: killed' "$work/report.txt" || true)
echo "mutate: ${killed} of ${#names[@]} mutants killed"
[ "$killed" -eq "${#names[@]}" ] || { echo "mutate: some mutants survived or did not run" >&2; exit 1; }
