#include "vfiomig/emu.hpp"

#include "vfio_mig_emu.h"

namespace vfiomig::emu {

Regs read_regs(Device &dev)
{
	Regs r{};
	r.magic = dev.read32(kBar0, VFIO_MIG_EMU_REG_MAGIC);
	r.layout_version = dev.read32(kBar0, VFIO_MIG_EMU_REG_VERSION);
	r.profile = dev.read32(kBar0, VFIO_MIG_EMU_REG_PROFILE);
	r.state = dev.read32(kBar0, VFIO_MIG_EMU_REG_STATE);
	r.mem_size = std::uint64_t{dev.read32(kBar0, VFIO_MIG_EMU_REG_MEM_SIZE_LO)} |
		     std::uint64_t{dev.read32(kBar0, VFIO_MIG_EMU_REG_MEM_SIZE_HI)} << 32;
	r.digest = dev.read32(kBar0, VFIO_MIG_EMU_REG_DIGEST);
	r.nr_resources = dev.read32(kBar0, VFIO_MIG_EMU_REG_NR_RESOURCES);
	return r;
}

std::uint32_t digest(Device &dev) { return dev.read32(kBar0, VFIO_MIG_EMU_REG_DIGEST); }

std::uint64_t mem_size(Device &dev)
{
	return std::uint64_t{dev.read32(kBar0, VFIO_MIG_EMU_REG_MEM_SIZE_LO)} |
	       std::uint64_t{dev.read32(kBar0, VFIO_MIG_EMU_REG_MEM_SIZE_HI)} << 32;
}

Status run_workload(Device &dev, std::uint32_t pages)
{
	return dev.try_write32(kBar0, VFIO_MIG_EMU_REG_DIRTY_DOORBELL, pages);
}

Status reconfigure(Device &dev, std::uint32_t resources)
{
	return dev.try_write32(kBar0, VFIO_MIG_EMU_REG_RECONFIG_DOORBELL, resources);
}

Status write_scratch(Device &dev, std::uint32_t i, std::uint32_t value)
{
	return dev.try_write32(kBar0, VFIO_MIG_EMU_REG_SCRATCH + 4 * i, value);
}

Result<std::uint32_t> read_scratch(Device &dev, std::uint32_t i)
{
	return dev.try_read32(kBar0, VFIO_MIG_EMU_REG_SCRATCH + 4 * i);
}

Bytes make_pattern(std::uint64_t len, std::uint32_t seed)
{
	Bytes b(len);
	std::uint32_t x = seed * 2654435761u + 1;
	for (auto &byte : b) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		byte = static_cast<std::uint8_t>(x);
	}
	return b;
}

Status write_pattern(Device &dev, std::uint64_t offset, std::uint64_t len, std::uint32_t seed)
{
	Bytes b = make_pattern(len, seed);
	auto r = dev.try_region_write(kBar2, offset, b);
	if (!r)
		return Status::failure(r.err(), r.context());
	if (*r != len)
		return Status::failure(EIO, "short BAR2 write on " + dev.label());
	return Unit{};
}

Status scribble(Device &dev, std::uint32_t seed, std::uint32_t dirty_pages)
{
	for (std::uint32_t i = 0; i < 4; i++)
		if (auto r = write_scratch(dev, (seed + i * 7) % VFIO_MIG_EMU_NR_SCRATCH, seed * 31 + i); !r)
			return r;
	std::uint8_t cfg[4] = {static_cast<std::uint8_t>(seed), 0x5a, 0xa5, static_cast<std::uint8_t>(seed >> 8)};
	auto c = dev.try_region_write(kConfigRegion, VFIO_MIG_EMU_CONFIG_SCRATCH + 4 * (seed % 16), cfg);
	if (!c)
		return Status::failure(c.err(), c.context());
	std::uint64_t size = mem_size(dev);
	std::uint64_t page = (std::uint64_t{seed} * 7919 % (size / VFIO_MIG_EMU_PAGE_SIZE)) * VFIO_MIG_EMU_PAGE_SIZE;
	if (auto r = write_pattern(dev, page, VFIO_MIG_EMU_PAGE_SIZE, seed); !r)
		return r;
	if (auto r = write_pattern(dev, page / 2 + 123, 777, seed + 1); !r) // unaligned, crosses pages
		return r;
	return dirty_pages ? run_workload(dev, dirty_pages) : Status(Unit{});
}

std::uint64_t splitmix64_next(std::uint64_t &state)
{
	static_assert(sizeof(__u64) == sizeof(std::uint64_t));
	__u64 s = state;
	std::uint64_t z = vfio_mig_emu_splitmix64(&s);
	state = s;
	return z;
}

DeviceModel reset_model(Bytes config, std::uint64_t size)
{
	DeviceModel m;
	m.config = std::move(config);
	m.scratch.assign(VFIO_MIG_EMU_NR_SCRATCH, 0);
	m.memory.assign(size, 0);
	return m;
}

void model_dirty(DeviceModel &m, std::uint32_t steps)
{
	std::uint64_t pages = m.memory.size() / VFIO_MIG_EMU_PAGE_SIZE;
	for (std::uint32_t i = 0; i < steps; i++) {
		std::uint64_t z = splitmix64_next(m.workload_prng);
		std::uint64_t idx = static_cast<std::uint32_t>(z >> 32) % pages;
		auto *p = m.memory.data() + idx * VFIO_MIG_EMU_PAGE_SIZE;
		for (std::size_t b = 0; b < VFIO_MIG_EMU_PAGE_SIZE; b++)
			p[b] = static_cast<std::uint8_t>(z >> (8 * (b % 4)));
	}
}

void model_reconfigure(DeviceModel &m, std::uint32_t n)
{
	for (std::uint32_t i = 0; i < n; i++) {
		std::uint64_t z = splitmix64_next(m.workload_prng);
		m.resources.push_back({static_cast<std::uint32_t>(m.resources.size()),
				       static_cast<std::uint32_t>(z >> 32), z});
	}
	m.nr_resources = static_cast<std::uint32_t>(m.resources.size());
}

Bytes read_config(Device &dev)
{
	Bytes cfg(VFIO_MIG_EMU_CONFIG_SIZE);
	dev.region_read(kConfigRegion, 0, cfg);
	return cfg;
}

} // namespace vfiomig::emu
