// DEV_GET carries the digest (every page of the device read) only when asked for, and only to CAP_NET_ADMIN.
#include "control_expect.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vfiomig::test {
namespace {

using namespace control;

/// In a forked child without CAP_NET_ADMIN, runs `fn`; its report.
template <typename F>
std::string without_net_admin(F &&fn)
{
	int pipefd[2];
	if (::pipe(pipefd) != 0)
		return "FAIL pipe";
	pid_t pid = ::fork();
	if (pid < 0)
		return "FAIL fork";
	if (pid == 0) {
		::close(pipefd[0]);
		std::string report;
		__user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
		__user_cap_data_struct data[2] = {};
		if (::syscall(SYS_capget, &hdr, data) == 0) {
			data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &= ~CAP_TO_MASK(CAP_NET_ADMIN);
			data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_NET_ADMIN);
		}
		if (::syscall(SYS_capset, &hdr, data) != 0) {
			report = "FAIL capset";
		} else {
			try {
				report = fn();
			} catch (const std::exception &e) {
				report = std::string("FAIL exception: ") + e.what();
			}
		}
		(void)!::write(pipefd[1], report.data(), report.size());
		::_exit(0);
	}
	::close(pipefd[1]);
	std::string report;
	char buf[2048];
	for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;)
		report.append(buf, static_cast<std::size_t>(n));
	::close(pipefd[0]);
	int status = 0;
	::waitpid(pid, &status, 0);
	return report;
}

class DevGetDigest : public FullProfileTest {};

TEST_F(DevGetDigest, APlainDevGetCarriesNoDigest)
{
	auto info = nl()->device(src().label());
	EXPECT_FALSE(info.digest.has_value()) << "DEV_GET read every page of the device without being asked";
	for (const DeviceInfo &d : nl()->devices())
		EXPECT_FALSE(d.digest.has_value()) << "the DEV_GET dump computed the digest of " << d.uuid;
}

TEST_F(DevGetDigest, AskedForItTheDumpCarriesEveryDigest)
{
	std::uint32_t want = emu::digest(src());
	bool seen = false;
	for (const DeviceInfo &d : nl()->devices({.digest = true})) {
		EXPECT_TRUE(d.digest.has_value()) << d.uuid;
		if (d.uuid == src().label()) {
			seen = true;
			EXPECT_EQ(d.digest.value_or(0), want);
		}
	}
	EXPECT_TRUE(seen);
}

TEST_F(DevGetDigest, WithoutNetAdminAskingForTheDigestIsEperm)
{
	const std::string uuid = src().label();
	std::string report = without_net_admin([&]() -> std::string {
		Client c = Client::open();
		std::string out;
		auto e = control_error([&] { c.device(uuid, {.digest = true}); });
		out += e && e->err() == EPERM ? "ok doit; " : "FAIL doit: " + (e ? std::string(e->what()) : "digest given") + "; ";
		e = control_error([&] { c.devices({.digest = true}); });
		out += e && e->err() == EPERM ? "ok dump; " : "FAIL dump: " + (e ? std::string(e->what()) : "digest given") + "; ";
		e = control_error([&] { c.device(uuid); });
		out += !e ? "ok plain" : "FAIL plain: " + std::string(e->what());
		return out;
	});
	EXPECT_EQ(report, "ok doit; ok dump; ok plain");
}

TEST_F(DevGetDigest, UnknownQueryBitsAreRefused)
{
	AttrBuf b;
	b.str(VFIO_MIG_EMU_A_UUID, src().label()).u32(VFIO_MIG_EMU_A_QUERY, 1u << 31);
	RawReply r = nl()->raw_request(VFIO_MIG_EMU_CMD_DEV_GET, b.data());
	EXPECT_EQ(errno_name(r.err), errno_name(EINVAL)) << r.extack;
}

} // namespace
} // namespace vfiomig::test
