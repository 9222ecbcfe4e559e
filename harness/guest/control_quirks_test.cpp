// QUIRKS_SET/QUIRKS_GET keep a module-global and a per-device mask apart, refuse unknown bits without a change.
#include "control_expect.hpp"

namespace vfiomig::test {
namespace {

using namespace control;

/// Clears a device's own quirk mask when it goes out of scope. The global
/// mask is never written by these tests: --quirk-check runs the suite
/// with a global quirk on, which must stay on.
class DeviceQuirkGuard {
public:
	explicit DeviceQuirkGuard(std::string uuid) : uuid_(std::move(uuid)) {}
	DeviceQuirkGuard(const DeviceQuirkGuard &) = delete;
	DeviceQuirkGuard &operator=(const DeviceQuirkGuard &) = delete;
	~DeviceQuirkGuard()
	{
		if (Client *c = nl()) {
			try {
				c->set_quirks(0, uuid_);
			} catch (const Error &) {
			}
		}
	}

private:
	std::string uuid_;
};

class ControlQuirks : public FullProfileTest {};

TEST_F(ControlQuirks, NamesAndBitsRoundTrip)
{
	for (unsigned q = 0; q < kQuirkCount; q++) {
		EXPECT_EQ(parse_quirk(quirk_name(q)), q) << quirk_name(q);
		EXPECT_FALSE(quirk_description(q).empty()) << quirk_name(q);
	}
	EXPECT_EQ(all_quirks(), (std::uint64_t{1} << kQuirkCount) - 1);
	EXPECT_FALSE(parse_quirk("no-such-quirk"));
}

TEST_F(ControlQuirks, UnknownBitIsRefusedAndChangesNothing)
{
	Client &c = *nl();
	const std::string uuid = src().label();
	DeviceQuirkGuard guard(uuid);
	std::uint64_t global = c.quirks();
	std::uint64_t bad = std::uint64_t{1} << kQuirkCount;

	for (std::optional<std::string> scope : {std::optional<std::string>(), std::optional<std::string>(uuid)}) {
		SCOPED_TRACE(scope ? "device " + *scope : std::string("module-global"));
		auto e = control_error([&] { c.set_quirks(bad | 1, scope); });
		ASSERT_TRUE(e) << "QUIRKS_SET with bit " << kQuirkCount << " succeeded";
		EXPECT_EQ(errno_name(e->err()), errno_name(EINVAL)) << e->what();
		EXPECT_NE(e->attribute().find("A_QUIRKS"), std::string::npos)
			<< "the extack points at \"" << e->attribute() << "\", want A_QUIRKS";
	}
	EXPECT_EQ(c.quirks(), global) << "a refused QUIRKS_SET changed the global mask";
	EXPECT_EQ(c.quirks(uuid), 0u) << "a refused QUIRKS_SET changed the device's mask";
}

TEST_F(ControlQuirks, DeviceMaskIsItsOwn)
{
	Client &c = *nl();
	const std::string uuid = src().label();
	const std::string other = dst().label();
	DeviceQuirkGuard guard(uuid);
	std::uint64_t global = c.quirks();
	std::uint64_t mask = std::uint64_t{1} << *parse_quirk("stopcopy-enomsg");

	EXPECT_EQ(c.set_quirks(mask, uuid), mask);
	EXPECT_EQ(c.quirks(uuid), mask);
	EXPECT_EQ(c.quirks(other), 0u) << "another device's mask changed";
	EXPECT_EQ(c.quirks(), global) << "the global mask changed";
	EXPECT_EQ(c.set_quirks(0, uuid), 0u);
	EXPECT_EQ(c.quirks(uuid), 0u);
}

TEST_F(ControlQuirks, UnknownDeviceIsEnodev)
{
	Client &c = *nl();
	EXPECT_CONTROL_ERROR(c.quirks(std::string("00000000-0000-0000-0000-00000000dead")), ENODEV, "no vfio_mig_emu device");
	EXPECT_CONTROL_ERROR(c.set_quirks(0, std::string("00000000-0000-0000-0000-00000000dead")), ENODEV,
			     "no vfio_mig_emu device");
	EXPECT_CONTROL_ERROR(c.set_quirks(0, std::string("not-a-uuid")), EINVAL, "not a uuid");
}

} // namespace
} // namespace vfiomig::test
