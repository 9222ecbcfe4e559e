// Joining the "events" multicast group needs CAP_NET_ADMIN: an unprivileged process cannot subscribe.
#include "control_expect.hpp"

#include <grp.h>
#include <sys/wait.h>
#include <unistd.h>

namespace vfiomig::test {
namespace {

using namespace control;

/// Runs `fn` in a forked child that became nobody (uid/gid 65534: no
/// capabilities left); returns the child's one-line report.
template <typename F>
std::string as_nobody(F &&fn)
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
		if (::setgroups(0, nullptr) != 0 || ::setgid(65534) != 0 || ::setuid(65534) != 0) {
			report = "FAIL setuid(nobody): " + errno_name(errno);
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
	char buf[1024];
	for (ssize_t n; (n = ::read(pipefd[0], buf, sizeof(buf))) > 0;)
		report.append(buf, static_cast<std::size_t>(n));
	::close(pipefd[0]);
	int status = 0;
	::waitpid(pid, &status, 0);
	return report;
}

class EventsPrivilege : public FullProfileTest {};

TEST_F(EventsPrivilege, AnUnprivilegedProcessCannotSubscribe)
{
	std::string report = as_nobody([]() -> std::string {
		try {
			EventSubscription sub;
			return "FAIL subscribed without CAP_NET_ADMIN";
		} catch (const ControlError &e) {
			return e.err() == EPERM ? "ok EPERM" : std::string("FAIL ") + e.what();
		}
	});
	EXPECT_EQ(report, "ok EPERM");
	// Root still can (the suite's own subscription works).
	EXPECT_NO_THROW(EventSubscription{});
}

TEST_F(EventsPrivilege, AnUnprivilegedProcessStillReadsTheDevice)
{
	const std::string uuid = src().label();
	std::string report = as_nobody([&]() -> std::string {
		Client c = Client::open();
		return c.device(uuid).uuid == uuid ? "ok" : "FAIL wrong device";
	});
	EXPECT_EQ(report, "ok");
}

} // namespace
} // namespace vfiomig::test
