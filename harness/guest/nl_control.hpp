// A minimal client of the vfio_mig_emu generic netlink control plane,
// private to the suite (faults, DEV_GET, events). The library's own
// control-plane client (issue 3, vfiomig/control.hpp) is developed
// separately; once it lands the suite should move to it and drop this.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "vfiomig/fd.hpp"
#include "vfiomig/stream.hpp"

struct nl_sock;
struct nl_msg;

namespace vfiomig::test {

/// The attributes of a message or nest, by type (repeats kept in order).
class NlAttrs {
public:
	NlAttrs() = default;
	explicit NlAttrs(ByteSpan raw);
	std::optional<std::uint8_t> u8(std::uint16_t type) const;
	std::optional<std::uint32_t> u32(std::uint16_t type) const;
	std::optional<std::uint64_t> u64(std::uint16_t type) const;
	std::optional<std::string> str(std::uint16_t type) const;
	NlAttrs nested(std::uint16_t type) const;
	std::vector<NlAttrs> all_nested(std::uint16_t type) const;
	bool has(std::uint16_t type) const { return attrs_.count(type) != 0; }

private:
	std::multimap<std::uint16_t, Bytes> attrs_;
};

/// Appends attributes to a message being built.
class NlBuilder {
public:
	explicit NlBuilder(nl_msg *msg) : msg_(msg) {}
	NlBuilder &put_u32(std::uint16_t type, std::uint32_t v);
	NlBuilder &put_u64(std::uint16_t type, std::uint64_t v);
	NlBuilder &put_str(std::uint16_t type, const std::string &v);
	NlBuilder &nest(std::uint16_t type, const std::function<void(NlBuilder &)> &fill);

private:
	nl_msg *msg_;
};

/// DEV_GET reply.
struct DevInfo {
	std::string uuid;
	std::uint32_t profile = 0;
	std::uint32_t state = 0;
	std::uint64_t mem_size = 0;
	bool device_open = false;
	std::uint32_t sessions = 0;
	std::uint32_t digest = 0;
	std::uint32_t nr_resources = 0;
	std::map<std::uint16_t, std::uint64_t> counters; ///< VFIO_MIG_EMU_CNT_*
	std::optional<std::uint64_t> initial_bytes, dirty_bytes, stop_copy_bytes;
	NlAttrs knobs;
	static DevInfo from(const NlAttrs &a);
};

/// FAULT_ADD request; unset fields take the kernel's defaults.
struct FaultSpec {
	std::uint32_t site = 0;
	std::uint32_t effect = 0;
	std::optional<std::uint32_t> from_state, to_state, trigger, n, probability_ppm;
	std::optional<std::uint64_t> seed;
	std::optional<std::uint32_t> err, delay_us;
};

/// An event of the "events" group.
struct Event {
	std::uint8_t cmd = 0;
	NlAttrs attrs;
	std::string uuid;
	std::uint64_t seq = 0;
};

class NlControl {
public:
	NlControl(NlControl &&) noexcept;
	NlControl &operator=(NlControl &&) noexcept;
	~NlControl();

	/// Resolves the family; with `events`, also joins the events group.
	static Result<NlControl> open(bool events = false);

	Result<std::vector<NlAttrs>> request(std::uint8_t cmd, const std::function<void(NlBuilder &)> &fill,
					     bool dump = false);
	Result<DevInfo> dev_get(const std::string &uuid);
	Result<std::vector<DevInfo>> dev_dump();
	Result<std::uint32_t> fault_add(const std::string &uuid, const FaultSpec &f);
	Status fault_clear(const std::string &uuid, std::optional<std::uint32_t> id = std::nullopt);
	Status workload(const std::string &uuid, std::uint32_t action, std::uint32_t count);
	Status counters_reset(const std::string &uuid);
	Result<NlAttrs> knobs_set(const std::string &uuid, const std::function<void(NlBuilder &)> &fill);
	/// Events received within `timeout_ms` (poll), possibly none.
	std::vector<Event> read_events(int timeout_ms);

private:
	NlControl();
	struct SockDeleter {
		void operator()(nl_sock *s) const;
	};
	std::unique_ptr<nl_sock, SockDeleter> sock_;
	std::unique_ptr<nl_sock, SockDeleter> events_;
	int family_ = -1;
};

} // namespace vfiomig::test
