// QEMU builds, processes and VM command lines.
#include <vfiomig/qemu.hpp>

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <deque>
#include <fstream>
#include <memory>
#include <regex>
#include <thread>

#include <fmt/format.h>

namespace vfiomig::qemu {

std::optional<qmp::Version> parse_version_line(const std::string &text)
{
	static const std::regex re(R"(QEMU emulator version (\d+)\.(\d+)\.(\d+))");
	std::smatch m;
	if (!std::regex_search(text, m, re))
		return std::nullopt;
	return qmp::Version{std::stoi(m[1]), std::stoi(m[2]), std::stoi(m[3])};
}

std::optional<Build> probe_build(const std::string &label, const std::string &binary, std::string *why)
{
	if (::access(binary.c_str(), X_OK) != 0) {
		if (why)
			*why = fmt::format("{} ({}): not executable: {}", label, binary, std::strerror(errno));
		return std::nullopt;
	}
	std::string cmd = fmt::format("'{}' --version 2>&1", binary);
	std::unique_ptr<FILE, int (*)(FILE *)> pipe(::popen(cmd.c_str(), "r"), ::pclose);
	if (!pipe) {
		if (why)
			*why = fmt::format("{} ({}): popen failed: {}", label, binary, std::strerror(errno));
		return std::nullopt;
	}
	std::string out;
	char buf[512];
	while (size_t n = std::fread(buf, 1, sizeof(buf), pipe.get()))
		out.append(buf, n);
	auto v = parse_version_line(out);
	if (!v) {
		if (why)
			*why = fmt::format("{} ({}): --version printed no QEMU version: {:.200}", label, binary, out);
		return std::nullopt;
	}
	std::string first = out.substr(0, out.find('\n'));
	return Build{label, binary, *v, first};
}

Builds builds_from_env()
{
	Builds b;
	auto add = [&](const char *var, const char *label) {
		const char *path = std::getenv(var);
		if (!path || !*path)
			return;
		std::string why;
		if (auto build = probe_build(label, path, &why))
			b.found.push_back(std::move(*build));
		else
			b.missing.push_back(fmt::format("${}: {}", var, why));
	};
	// $QEMU names one build of the user's; the scripts pass it into the
	// guest as $VFIOMIG_QEMU.
	for (const char *var : {"QEMU", "VFIOMIG_QEMU"}) {
		if (const char *one = std::getenv(var); one && *one) {
			add(var, "QEMU");
			return b;
		}
	}
	add("VFIOMIG_QEMU_10", "10.0");
	add("VFIOMIG_QEMU_11", "11.1");
	return b;
}

Process Process::start(const std::vector<std::string> &argv, const std::string &log_path)
{
	if (argv.empty())
		throw_error(EINVAL, "Process::start with no program");
	Fd log = Fd::open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
	std::vector<char *> args;
	for (const auto &a : argv)
		args.push_back(const_cast<char *>(a.c_str()));
	args.push_back(nullptr);

	// The exec error travels back through a close-on-exec pipe.
	int pfd[2];
	if (::pipe2(pfd, O_CLOEXEC) < 0)
		throw_error(errno, "pipe2 for Process::start");
	Fd rd(pfd[0]), wr(pfd[1]);

	pid_t pid = ::fork();
	if (pid < 0)
		throw_error(errno, fmt::format("fork for {}", argv[0]));
	if (pid == 0) {
		::setpgid(0, 0);
		::dup2(log.get(), STDOUT_FILENO);
		::dup2(log.get(), STDERR_FILENO);
		int devnull = ::open("/dev/null", O_RDONLY);
		if (devnull >= 0)
			::dup2(devnull, STDIN_FILENO);
		::execv(args[0], args.data());
		int err = errno;
		(void)!::write(wr.get(), &err, sizeof(err));
		::_exit(127);
	}
	// Both sides set the group so that a kill right after fork() finds it.
	::setpgid(pid, pid);
	Process p(pid);
	wr.reset();
	int err = 0;
	ssize_t n;
	do
		n = ::read(rd.get(), &err, sizeof(err));
	while (n < 0 && errno == EINTR);
	if (n == sizeof(err)) {
		p.wait(std::chrono::seconds(5));
		throw_error(err, fmt::format("execv({})", argv[0]));
	}
	return p;
}

Process::Process(Process &&other) noexcept
	: pid_(std::exchange(other.pid_, -1)), status_(std::exchange(other.status_, std::nullopt))
{
}

Process &Process::operator=(Process &&other) noexcept
{
	if (this != &other) {
		if (pid_ > 0 && !status_)
			kill();
		pid_ = std::exchange(other.pid_, -1);
		status_ = std::exchange(other.status_, std::nullopt);
	}
	return *this;
}

Process::~Process()
{
	if (pid_ > 0 && !status_)
		kill();
	else if (pid_ > 0)
		::kill(-pid_, SIGKILL); // stragglers the launcher left behind
}

std::optional<int> Process::poll()
{
	if (status_ || pid_ <= 0)
		return status_;
	int st;
	pid_t r = ::waitpid(pid_, &st, WNOHANG);
	if (r == pid_)
		status_ = st;
	return status_;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout)
{
	auto deadline = std::chrono::steady_clock::now() + timeout;
	while (!poll()) {
		if (std::chrono::steady_clock::now() >= deadline)
			return std::nullopt;
		std::this_thread::sleep_for(std::chrono::milliseconds(10));
	}
	return status_;
}

int Process::kill()
{
	if (pid_ <= 0)
		return -1;
	::kill(-pid_, SIGKILL);
	::kill(pid_, SIGKILL);
	if (!status_) {
		int st;
		pid_t r;
		do
			r = ::waitpid(pid_, &st, 0);
		while (r < 0 && errno == EINTR);
		status_ = r == pid_ ? st : -1;
	}
	return *status_;
}

std::string Process::describe_status(int status)
{
	if (WIFEXITED(status))
		return fmt::format("exited {}", WEXITSTATUS(status));
	if (WIFSIGNALED(status))
		return fmt::format("killed by {}", sigabbrev_np(WTERMSIG(status)) ? sigabbrev_np(WTERMSIG(status)) : "?");
	return fmt::format("status {:#x}", status);
}

std::vector<std::string> VmConfig::argv() const
{
	std::vector<std::string> a = {build.binary,  "-name",	name,	"-machine", machine, "-m",
				      std::to_string(mem_mib), "-nodefaults", "-display", "none", "-accel",
				      "tcg", "-qmp", fmt::format("unix:{},server=on,wait=off", qmp_path())};
	for (const auto &d : devices) {
		a.push_back("-device");
		a.push_back(fmt::format("vfio-pci,sysfsdev={},id={},enable-migration=on", d.sysfsdev, d.id));
	}
	if (!trace.empty()) {
		for (const auto &t : trace) {
			a.push_back("-trace");
			a.push_back(t);
		}
		// Wall-clock stamps, to order trace lines against each other.
		a.push_back("-msg");
		a.push_back("timestamp=on");
	}
	if (incoming) {
		a.push_back("-incoming");
		a.push_back("defer");
	}
	if (paused)
		a.push_back("-S");
	a.insert(a.end(), extra.begin(), extra.end());
	return a;
}

std::optional<TraceLine> parse_trace_line(std::string_view line)
{
	static const std::regex pid_form(R"(^(\d+)@(\d+)\.(\d+):([A-Za-z0-9_]+)(?:\s(.*))?$)");
	static const std::regex iso_form(
		R"(^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})\.(\d+)Z ([A-Za-z0-9_]+)(?:\s(.*))?$)");
	std::string s(line);
	std::smatch m;
	if (std::regex_match(s, m, pid_form)) {
		double frac = std::stod("0." + m[3].str());
		return TraceLine{std::stod(m[2]) + frac, m[4], m[5]};
	}
	if (std::regex_match(s, m, iso_form)) {
		std::tm tm{};
		tm.tm_year = std::stoi(m[1]) - 1900;
		tm.tm_mon = std::stoi(m[2]) - 1;
		tm.tm_mday = std::stoi(m[3]);
		tm.tm_hour = std::stoi(m[4]);
		tm.tm_min = std::stoi(m[5]);
		tm.tm_sec = std::stoi(m[6]);
		double frac = std::stod("0." + m[7].str());
		return TraceLine{static_cast<double>(::timegm(&tm)) + frac, m[8], m[9]};
	}
	return std::nullopt;
}

std::vector<TraceLine> read_trace(const std::string &path, std::string_view event)
{
	std::vector<TraceLine> out;
	std::ifstream in(path);
	std::string line;
	while (std::getline(in, line)) {
		auto t = parse_trace_line(line);
		if (t && (event.empty() || t->event == event))
			out.push_back(std::move(*t));
	}
	return out;
}

std::string tail_lines(const std::string &path, size_t lines)
{
	std::ifstream in(path);
	std::deque<std::string> last;
	std::string line;
	while (std::getline(in, line)) {
		last.push_back(line);
		if (last.size() > lines)
			last.pop_front();
	}
	std::string out;
	for (const auto &l : last)
		out += l + "\n";
	return out;
}

Vm Vm::start(const VmConfig &config, std::chrono::milliseconds timeout)
{
	::unlink(config.qmp_path().c_str());
	Process p = Process::start(config.argv(), config.log_path());
	auto deadline = std::chrono::steady_clock::now() + timeout;
	// QEMU opens the QMP socket early in start-up; a QEMU that dies on a
	// bad device (realize failed) exits before or right after.
	for (;;) {
		if (auto st = p.poll())
			throw std::runtime_error(fmt::format("QEMU {} ({}) {} at start-up:\n{}", config.name,
							     config.build.label, Process::describe_status(*st),
							     tail_lines(config.log_path(), 20)));
		if (::access(config.qmp_path().c_str(), F_OK) == 0)
			break;
		if (std::chrono::steady_clock::now() >= deadline)
			throw std::runtime_error(fmt::format("QEMU {} ({}) opened no QMP socket in {} ms:\n{}",
							     config.name, config.build.label, timeout.count(),
							     tail_lines(config.log_path(), 20)));
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
	auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
	try {
		qmp::Client c =
			qmp::Client::connect(config.qmp_path(), std::max(left, std::chrono::milliseconds(1000)));
		return Vm(config, std::move(p), std::move(c));
	} catch (const std::exception &e) {
		// A QEMU that fails to realize a device exits right after it
		// opened the socket: say so with its log, not with ECONNRESET.
		if (auto st = p.wait(std::chrono::seconds(2)))
			throw std::runtime_error(fmt::format("QEMU {} ({}) {} at start-up:\n{}", config.name,
							     config.build.label, Process::describe_status(*st),
							     tail_lines(config.log_path(), 20)));
		throw;
	}
}

void Vm::quit(std::chrono::milliseconds timeout)
{
	if (process_.poll())
		return;
	try {
		qmp_.execute("quit", qmp::json::object(), timeout);
	} catch (const std::exception &) {
		// QEMU may close the socket before it answers: the wait decides.
	}
	if (!process_.wait(timeout))
		process_.kill();
}

std::string Vm::log_tail(size_t lines) const
{
	return tail_lines(config_.log_path(), lines);
}

} // namespace vfiomig::qemu
