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
#   make setup      install what the project needs (Debian packages, and
#                   QEMU 10.0 and 11.1 for the QEMU lane in private prefixes:
#                   scripts/fetch-qemu)
#   make bench      vfio-migctl bench in the guest (tables; JSON in
#                   build/vm/last/results/bench.json), then the stop window
#                   by memory size through QEMU (stop-window.json);
#                   BENCH_ARGS= passes options to the bench
#   make check-debug CORE_V2=1  the same on the core-v2 variant of the debug
#                   kernel (the vfio core handles PRECOPY_INFOv2, as Linux 7.1)
#   make kernel-matrix  the suite on every kernel available (stock, debug,
#                   core-v2, Debian 6.1 when installed); prints a table
#   make install    the module into /lib/modules/$(KVER)/updates (depmod) and
#                   the tools, library, headers and fixtures under $(PREFIX);
#                   DESTDIR= stages both (no depmod on the running system)
#   make uninstall  removes what make install put there
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
WERROR ?= ON
PREFIX ?= /usr/local
DESTDIR ?=
# Where modules_install puts the module under /lib/modules/$(KVER): updates/
# takes precedence over the kernel's own modules, as DKMS's default does.
INSTALL_MOD_DIR ?= updates

export KVER KDIR

.PHONY: all setup module userspace run check check-debug check-unit checkpatch clean bench \
	kernel-matrix install install-module install-userspace uninstall quirk-check

all: module userspace

setup:
	@scripts/setup
	@scripts/fetch-qemu >/dev/null || { echo "setup: scripts/fetch-qemu failed: the QEMU lane has no QEMU" >&2; [ -z "$(CI)" ]; }

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
	@scripts/check-debug $(if $(filter 1 yes y,$(CORE_V2)),--core-v2)

kernel-matrix: setup
	@$(MAKE) --no-print-directory all
	@scripts/kernel-matrix $(MATRIX_ARGS)

install: install-module install-userspace

install-module: module
	$(MAKE) -C $(KDIR) M=$(CURDIR)/kmod INSTALL_MOD_DIR=$(INSTALL_MOD_DIR) \
		$(if $(DESTDIR),INSTALL_MOD_PATH=$(abspath $(DESTDIR))) DEPMOD=true modules_install
	$(if $(DESTDIR),@echo "install: staged in $(DESTDIR); no depmod",depmod -a $(KVER))

install-userspace: $(BUILD)/build.ninja
	cmake -S . -B $(BUILD) -DCMAKE_INSTALL_PREFIX=$(PREFIX)
	ninja -C $(BUILD)
	DESTDIR=$(DESTDIR) cmake --install $(BUILD)

uninstall:
	rm -f $(DESTDIR)/lib/modules/$(KVER)/$(INSTALL_MOD_DIR)/vfio_mig_emu.ko*
	$(if $(DESTDIR),,depmod -a $(KVER))
	@if [ -f $(BUILD)/install_manifest.txt ]; then \
		sed 's|^|$(DESTDIR)|' $(BUILD)/install_manifest.txt | xargs -r rm -fv; \
	else \
		echo "uninstall: no $(BUILD)/install_manifest.txt (userspace never installed from this tree)"; \
	fi

# 6 GiB: the stop window's 1 GiB devices exist twice (source and
# destination) beside two QEMUs.
bench: all
	@scripts/fetch-qemu >/dev/null || echo "bench: scripts/fetch-qemu failed: no stop-window table" >&2
	@eval "$$(scripts/fetch-qemu --print-env 2>/dev/null | grep '^VFIOMIG_QEMU_1[01]=')"; \
		export VFIOMIG_QEMU_10 VFIOMIG_QEMU_11; \
		scripts/vm-run --mem 6144 --timeout 3600 -- scripts/guest-bench $(BENCH_ARGS)

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
