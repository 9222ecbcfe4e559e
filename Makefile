# vfio-migtest: top-level entry points.
#
#   make            build the module (against KDIR) and the userspace
#   make run        the main job: set-up, build, boot the guest, load the
#                   module, run the suite and a demonstration migration,
#                   print the report
#   make check      all tests: host unit tests, checkpatch, then the
#                   in-guest suite; ends with "check: N passed, N failed"
#   make check-debug  the in-guest suite and smoke test on the debug kernel
#                   (KASAN, lockdep, kmemleak; built once per machine and
#                   cached, see scripts/build-debug-kernel)
#   make setup      install what the project needs (Debian packages)
#   make bench      vfio-migctl bench in the guest (tables; JSON in
#                   build/vm/last/results/bench.json); BENCH_ARGS= passes options
#   make quirk-check  the suite against each seeded driver bug of the module
#                   (vfio-migtest --quirk-check): which tests catch which
#                   quirk, the mutation score; results in
#                   build/vm/quirk-check; QUIRK_ARGS= passes options
#
# KDIR selects the kernel the module is built for (default: the guest
# kernel's headers); KERNEL/KVER select the kernel the guest boots.

KVER ?= 6.12.117+deb12-amd64
KDIR ?= /lib/modules/$(KVER)/build
BUILD ?= build/cmake
WERROR ?= $(if $(CI),ON,OFF)

export KVER KDIR

.PHONY: all setup module userspace run check check-debug check-unit checkpatch clean bench \
	quirk-check

all: module userspace

setup:
	@scripts/setup

module:
	$(MAKE) -C kmod KDIR=$(KDIR)

$(BUILD)/build.ninja: CMakeLists.txt
	cmake -S . -B $(BUILD) -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
		-DVFIOMIG_WERROR=$(WERROR)

userspace: $(BUILD)/build.ninja
	ninja -C $(BUILD)

run: setup
	@$(MAKE) --no-print-directory all
	@scripts/main-job

check: setup
	@$(MAKE) --no-print-directory all
	@scripts/check

check-debug: setup
	@$(MAKE) --no-print-directory userspace
	@scripts/check-debug

bench: all
	@scripts/vm-run -- scripts/guest-bench $(BENCH_ARGS)

quirk-check: all
	@scripts/vm-run --out build/vm/quirk-check --timeout 3600 -- \
		scripts/guest-quirk-check $(QUIRK_ARGS)

check-unit: userspace
	cd $(BUILD) && ctest --output-on-failure

checkpatch:
	@scripts/checkpatch

clean:
	$(MAKE) -C kmod KDIR=$(KDIR) clean
	rm -rf build
