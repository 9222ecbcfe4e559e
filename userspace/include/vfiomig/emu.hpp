// Helpers for the emulated device's registers and memory (vfio_mig_emu.h).
#pragma once

#include <cstdint>
#include <span>

#include "vfiomig/stream.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig::emu {

/// Region indexes (vfio-pci layout).
inline constexpr std::uint32_t kConfigRegion = VFIO_PCI_CONFIG_REGION_INDEX;
inline constexpr std::uint32_t kBar0 = VFIO_PCI_BAR0_REGION_INDEX;
inline constexpr std::uint32_t kBar2 = VFIO_PCI_BAR2_REGION_INDEX;

/// A snapshot of the read-only BAR0 registers.
struct Regs {
	std::uint32_t magic, layout_version, profile, state;
	std::uint64_t mem_size;
	std::uint32_t digest, nr_resources;
};
Regs read_regs(Device &dev);
/// BAR0 DIGEST.
std::uint32_t digest(Device &dev);
/// BAR2 size from the registers.
std::uint64_t mem_size(Device &dev);

/// Writes N to the dirty doorbell: the workload dirties N pages.
Status run_workload(Device &dev, std::uint32_t pages);
/// Writes N to the reconfigure doorbell: adds N resources.
Status reconfigure(Device &dev, std::uint32_t resources);
/// Scratch register i (0..63).
Status write_scratch(Device &dev, std::uint32_t i, std::uint32_t value);
Result<std::uint32_t> read_scratch(Device &dev, std::uint32_t i);
/// Fills `len` bytes of BAR2 at `offset` with a pattern derived from `seed`.
Status write_pattern(Device &dev, std::uint64_t offset, std::uint64_t len, std::uint32_t seed);
/// The pattern write_pattern() writes.
Bytes make_pattern(std::uint64_t len, std::uint32_t seed);

/// A small workload touching every kind of migrated state: scratch
/// registers, config scratch, BAR2 patterns and dirty-doorbell pages.
Status scribble(Device &dev, std::uint32_t seed, std::uint32_t dirty_pages = 8);

/// splitmix64 as the uAPI header specifies the workload PRNG: adds the
/// golden gamma to `state` and returns the mixed value.
std::uint64_t splitmix64_next(std::uint64_t &state);

/// A host model of the device state after a reset (config space as read
/// from `config`, everything else zero), driven exactly as the doorbells
/// drive the device, so its digest() predicts the BAR0 DIGEST register.
DeviceModel reset_model(Bytes config, std::uint64_t mem_size);
/// The dirty doorbell: `steps` pages drawn from the PRNG get (u32)z.
void model_dirty(DeviceModel &m, std::uint32_t steps);
/// The reconfigure doorbell: appends `n` resources, one draw each.
void model_reconfigure(DeviceModel &m, std::uint32_t n);
/// The config space as the device shows it.
Bytes read_config(Device &dev);

} // namespace vfiomig::emu
