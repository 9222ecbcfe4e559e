// Callers without CAP_NET_ADMIN may read the control plane but every changing command is refused with EPERM.
#include "control_expect.hpp"

#include <linux/capability.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vfiomig::test {
namespace {

using namespace control;

/// Drops CAP_NET_ADMIN from this process's effective and permitted sets.
bool drop_net_admin()
{
	__user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	__user_cap_data_struct data[2] = {};
	if (::syscall(SYS_capget, &hdr, data) != 0)
		return false;
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].effective &= ~CAP_TO_MASK(CAP_NET_ADMIN);
	data[CAP_TO_INDEX(CAP_NET_ADMIN)].permitted &= ~CAP_TO_MASK(CAP_NET_ADMIN);
	return ::syscall(SYS_capset, &hdr, data) == 0;
}

/// In a child without CAP_NET_ADMIN: one line per check, "ok ..." or "FAIL ...".
std::string unprivileged_report(const std::string &uuid)
{
	std::string out;
	if (!drop_net_admin())
		return "FAIL capset: " + errno_name(errno) + "\n";
	Client c = Client::open(); // the socket is opened without the capability
	auto check = [&](const char *what, bool want_eperm, auto &&fn) {
		auto e = control_error(fn);
		int err = e ? e->err() : 0;
		bool good = want_eperm ? err == EPERM : err == 0;
		out += std::string(good ? "ok " : "FAIL ") + what + ": " + (e ? e->what() : std::string("succeeded")) +
		       "\n";
	};
	check("DEV_GET", false, [&] { c.device(uuid); });
	check("DEV_GET dump", false, [&] { c.devices(); });
	check("FAULT_GET", false, [&] { c.faults(uuid); });
	check("STATS_GET", false, [&] { c.stats(); });
	check("QUIRKS_GET", false, [&] { c.quirks(); });
	check("KNOBS_SET", true, [&] { c.set_knobs(uuid, Knobs{}); });
	check("FAULT_ADD", true, [&] { c.add_fault(uuid, fault(Site::Open, Effect::Fail)); });
	check("FAULT_CLEAR", true, [&] { c.clear_faults(uuid); });
	check("WORKLOAD", true, [&] { c.workload(uuid, Workload::Dirty, 1); });
	check("COUNTERS_RESET", true, [&] { c.reset_counters(uuid); });
	check("QUIRKS_SET", true, [&] { c.set_quirks(0, uuid); });
	return out;
}

class ControlPrivilege : public FullProfileTest {};

TEST_F(ControlPrivilege, ChangingCommandsNeedNetAdmin)
{
	const std::string uuid = src().label();
	std::uint32_t digest = emu::digest(src());
	int pipefd[2];
	ASSERT_EQ(::pipe(pipefd), 0);
	pid_t pid = ::fork();
	ASSERT_GE(pid, 0);
	if (pid == 0) {
		::close(pipefd[0]);
		std::string report;
		try {
			report = unprivileged_report(uuid);
		} catch (const std::exception &e) {
			report = std::string("FAIL exception: ") + e.what() + "\n";
		}
		(void)!::write(pipefd[1], report.data(), report.size());
		::_exit(0);
	}
	::close(pipefd[1]);
	std::string report;
	char buf[4096];
	for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;)
		report.append(buf, static_cast<std::size_t>(n));
	::close(pipefd[0]);
	int status = 0;
	ASSERT_EQ(::waitpid(pid, &status, 0), pid);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(report.find("FAIL"), std::string::npos) << report;
	EXPECT_NE(report.find("ok COUNTERS_RESET"), std::string::npos) << report;
	EXPECT_EQ(emu::digest(src()), digest) << "the refused WORKLOAD changed the device";
}

} // namespace
} // namespace vfiomig::test
