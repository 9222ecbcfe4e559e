// Helpers for the device IRQ tests: VFIO_DEVICE_GET_IRQ_INFO,
// VFIO_DEVICE_SET_IRQS with its variable-length data, eventfds, and the
// module's live eventfd counter.
#pragma once

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "common.hpp"

namespace vfiomig::test::irq {

inline constexpr std::uint32_t kTrigger = VFIO_IRQ_SET_ACTION_TRIGGER;
inline constexpr std::uint32_t kNone = VFIO_IRQ_SET_DATA_NONE;
inline constexpr std::uint32_t kBool = VFIO_IRQ_SET_DATA_BOOL;
inline constexpr std::uint32_t kEventfd = VFIO_IRQ_SET_DATA_EVENTFD;

/// VFIO_DEVICE_GET_IRQ_INFO for `index`.
inline Result<struct vfio_irq_info> info(Device &dev, std::uint32_t index)
{
	struct vfio_irq_info i = {};
	i.argsz = sizeof(i);
	i.index = index;
	auto r = ioctl(dev.fd(), VFIO_DEVICE_GET_IRQ_INFO, &i,
		       dev.label() + " VFIO_DEVICE_GET_IRQ_INFO(index " + std::to_string(index) + ")");
	if (!r)
		return Result<struct vfio_irq_info>::failure(r.err(), r.describe());
	return i;
}

/// VFIO_DEVICE_SET_IRQS: the header followed by `data`; argsz is the
/// whole unless `argsz` is given. Returns 0 or the errno.
inline int set(Device &dev, std::uint32_t flags, std::uint32_t index, std::uint32_t start, std::uint32_t count,
	       const std::vector<std::uint8_t> &data = {}, std::optional<std::uint32_t> argsz = std::nullopt)
{
	std::vector<std::uint8_t> buf(sizeof(struct vfio_irq_set) + data.size());
	struct vfio_irq_set hdr = {};
	hdr.argsz = argsz.value_or(static_cast<std::uint32_t>(buf.size()));
	hdr.flags = flags;
	hdr.index = index;
	hdr.start = start;
	hdr.count = count;
	std::memcpy(buf.data(), &hdr, sizeof(hdr));
	if (!data.empty())
		std::memcpy(buf.data() + sizeof(hdr), data.data(), data.size());
	return ::ioctl(dev.fd().get(), VFIO_DEVICE_SET_IRQS, buf.data()) < 0 ? errno : 0;
}

/// The int32 fd as SET_IRQS' data.
inline std::vector<std::uint8_t> fd_data(int fd)
{
	std::vector<std::uint8_t> d(sizeof(std::int32_t));
	std::int32_t v = fd;
	std::memcpy(d.data(), &v, sizeof(v));
	return d;
}

/// Registers `fd` as the trigger of `index` (fd -1 unregisters).
inline int set_eventfd(Device &dev, std::uint32_t index, int fd)
{
	return set(dev, kEventfd | kTrigger, index, 0, 1, fd_data(fd));
}

/// A non-blocking eventfd, closed on scope exit.
inline Fd make_eventfd()
{
	int fd = ::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (fd < 0)
		throw_error(errno, "eventfd()");
	return Fd(fd);
}

/// Waits up to `timeout_ms` for the eventfd to be signalled and returns
/// its counter (reading it resets it); 0 when it was not signalled.
inline std::uint64_t take(const Fd &efd, int timeout_ms = 0)
{
	struct pollfd p = {efd.get(), POLLIN, 0};
	if (::poll(&p, 1, timeout_ms) != 1)
		return 0;
	std::uint64_t v = 0;
	if (::read(efd.get(), &v, sizeof(v)) != sizeof(v))
		return 0;
	return v;
}

/// The module's count of eventfd contexts it holds (parent sysfs stats),
/// or nullopt when the module has no such counter.
inline std::optional<long> live_eventfds()
{
	std::ifstream f(std::string("/sys/class/") + VFIO_MIG_EMU_NAME + "/" + VFIO_MIG_EMU_NAME +
			"/stats/live_eventfds");
	long v = 0;
	if (!(f >> v))
		return std::nullopt;
	return v;
}

} // namespace vfiomig::test::irq
