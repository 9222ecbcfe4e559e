// The QEMU launcher and the QMP client against a real QEMU on the host
// (the system's qemu-system-x86_64, -machine none: no guest, no module):
// greeting, commands, an error reply, an event, and a process group that
// is gone after the owner is.
#include <gtest/gtest.h>

#include <signal.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>

#include <vfiomig/qemu.hpp>

using namespace vfiomig;
using namespace std::chrono_literals;

namespace {

std::optional<qemu::Build> host_qemu(std::string *why)
{
	const char *env = std::getenv("VFIOMIG_HOST_QEMU");
	return qemu::probe_build("host", env ? env : "/usr/bin/qemu-system-x86_64", why);
}

qemu::VmConfig none_machine(const qemu::Build &b, const std::string &dir)
{
	qemu::VmConfig c;
	c.build = b;
	c.name = "none";
	c.dir = dir;
	c.machine = "none";
	c.mem_mib = 16;
	c.paused = true;
	return c;
}

class QemuProcess : public ::testing::Test {
protected:
	void SetUp() override
	{
		std::string why;
		auto b = host_qemu(&why);
		if (!b)
			GTEST_SKIP() << "no QEMU on the host to talk to: " << why;
		build_ = *b;
		dir_ = std::filesystem::temp_directory_path() / ("vfiomig-qmp-" + std::to_string(::getpid()));
		std::filesystem::create_directories(dir_);
	}
	void TearDown() override
	{
		if (!dir_.empty())
			std::filesystem::remove_all(dir_);
	}
	qemu::Build build_;
	std::filesystem::path dir_;
};

} // namespace

TEST_F(QemuProcess, QmpSessionAnswersCommandsErrorsAndEvents)
{
	auto vm = qemu::Vm::start(none_machine(build_, dir_), 30s);
	EXPECT_EQ(vm.qmp().version(), build_.version);
	auto status = vm.qmp().execute("query-status");
	EXPECT_EQ(status["status"], "prelaunch");
	try {
		vm.qmp().execute("no-such-command");
		FAIL() << "an unknown command returned";
	} catch (const qmp::CommandError &e) {
		EXPECT_EQ(e.command(), "no-such-command");
		EXPECT_EQ(e.error_class(), "CommandNotFound");
	}
	vm.qmp().execute("cont");
	auto resume = vm.qmp().wait_event("RESUME", 10s);
	ASSERT_TRUE(resume) << "no RESUME event after cont";
	EXPECT_FALSE(vm.qmp().wait_event("RESUME", 50ms)) << "an event was handed out twice";
	vm.quit();
	auto st = vm.process().poll();
	ASSERT_TRUE(st);
	EXPECT_EQ(qemu::Process::describe_status(*st), "exited 0");
}

TEST_F(QemuProcess, OwnerGoingAwayKillsAndReapsTheGroup)
{
	pid_t pid;
	{
		auto vm = qemu::Vm::start(none_machine(build_, dir_), 30s);
		pid = vm.process().pid();
		ASSERT_EQ(::kill(pid, 0), 0);
	}
	// Reaped: the pid no longer exists (not even as a zombie of ours).
	EXPECT_EQ(::kill(pid, 0), -1);
	EXPECT_EQ(errno, ESRCH);
}

TEST_F(QemuProcess, StartupFailureNamesTheVmAndQuotesItsLog)
{
	auto c = none_machine(build_, dir_);
	c.extra = {"-device", "no-such-device"};
	try {
		qemu::Vm::start(c, 30s);
		FAIL() << "QEMU started with a bad device";
	} catch (const std::runtime_error &e) {
		std::string what = e.what();
		EXPECT_NE(what.find("QEMU none (host) exited 1"), std::string::npos) << what;
		EXPECT_NE(what.find("no-such-device"), std::string::npos) << what;
	}
}

TEST(QemuBuilds, VariableNamingABrokenBuildIsReportedNotDropped)
{
	::setenv("QEMU", "/nonexistent/qemu-system-x86_64", 1);
	auto b = qemu::builds_from_env();
	::unsetenv("QEMU");
	EXPECT_TRUE(b.found.empty());
	ASSERT_EQ(b.missing.size(), 1u);
	EXPECT_NE(b.missing[0].find("$QEMU"), std::string::npos) << b.missing[0];
}
