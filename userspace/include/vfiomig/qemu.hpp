// QEMU as a migration consumer: finding a build, launching it with RAII
// (a process group killed and reaped on every path), and the command line
// of a VM that carries vfio-pci devices.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include <sys/types.h>

#include <vfiomig/qmp.hpp>

namespace vfiomig::qemu {

/// A QEMU build: how to run it and what it says it is.
struct Build {
	/// Label for reports: "10.0", "11.1", or "QEMU" for a build named by
	/// $QEMU.
	std::string label;
	/// The executable or launcher script (fetch-qemu's run the prefix's
	/// own loader).
	std::string binary;
	/// From `binary --version`.
	qmp::Version version;
	std::string version_text;

	/// PRECOPY_INFOv2 opt-in, the re-usable switchover-ack and REINIT: the
	/// series merged for 11.1.
	bool has_precopy_info_v2() const { return version >= qmp::Version{11, 1, 0}; }
};

/// Runs `binary --version` and parses "QEMU emulator version X.Y.Z";
/// nullopt with the reason in why when it does not run or says otherwise.
std::optional<Build> probe_build(const std::string &label, const std::string &binary, std::string *why);

/// Parses the first line of `qemu-system-x86_64 --version`.
std::optional<qmp::Version> parse_version_line(const std::string &text);

/// The builds the lane uses: $QEMU (or $VFIOMIG_QEMU) alone when set, else $VFIOMIG_QEMU_10 and
/// $VFIOMIG_QEMU_11 (scripts/fetch-qemu --print-env). A variable naming a build
/// that does not run is reported in missing, never dropped silently.
struct Builds {
	std::vector<Build> found;
	std::vector<std::string> missing;
};
Builds builds_from_env();

/// A child process in its own process group, with stdout and stderr going
/// to a log file. The destructor kills the whole group (SIGKILL) and reaps
/// the child, on every path.
class Process {
public:
	/// Starts argv[0] with argv; throws Error naming the program.
	static Process start(const std::vector<std::string> &argv, const std::string &log_path);

	Process(Process &&other) noexcept;
	Process &operator=(Process &&other) noexcept;
	Process(const Process &) = delete;
	Process &operator=(const Process &) = delete;
	~Process();

	pid_t pid() const noexcept { return pid_; }
	/// The exit status (waitpid's) if it has exited; does not block.
	std::optional<int> poll();
	/// Waits up to timeout for the exit; nullopt if it is still running.
	std::optional<int> wait(std::chrono::milliseconds timeout);
	/// SIGKILL to the group, then reap; returns the status.
	int kill();
	/// "exited 1", "killed by SIGABRT" for a waitpid status.
	static std::string describe_status(int status);

private:
	Process(pid_t pid) : pid_(pid) {}
	pid_t pid_ = -1;
	std::optional<int> status_;
};

/// One device a VM carries.
struct VfioDevice {
	/// sysfs path of the mdev (/sys/bus/mdev/devices/UUID).
	std::string sysfsdev;
	/// QEMU's device id ("vme0").
	std::string id;
};

/// What a VM is made of; argv() turns it into a command line.
struct VmConfig {
	Build build;
	std::string name;		// "src", "dst": file names in dir
	std::string dir;		// logs and traces
	std::string socket_dir;		// QMP socket (default: dir); not on 9p
	std::vector<VfioDevice> devices;
	bool incoming = false;		// -incoming defer
	bool paused = false;		// -S
	unsigned mem_mib = 128;
	std::string machine = "q35";
	/// Trace event patterns (-trace PATTERN). They go to QEMU's log
	/// (log_path()): 11.1 prints trace lines there whatever -D says.
	std::vector<std::string> trace;
	/// Extra arguments appended as they are.
	std::vector<std::string> extra;

	std::string qmp_path() const { return (socket_dir.empty() ? dir : socket_dir) + "/" + name + ".qmp"; }
	std::string log_path() const { return dir + "/" + name + ".log"; }
	std::vector<std::string> argv() const;
};

/// A running VM: the QEMU process and its QMP session.
class Vm {
public:
	/// Starts QEMU and connects to its QMP socket; throws (naming the VM
	/// and the tail of its log) if it exits or does not answer.
	static Vm start(const VmConfig &config, std::chrono::milliseconds timeout = std::chrono::seconds(60));

	qmp::Client &qmp() { return qmp_; }
	const VmConfig &config() const { return config_; }
	Process &process() { return process_; }
	/// Asks QEMU to quit; kills it if it has not exited within timeout.
	void quit(std::chrono::milliseconds timeout = std::chrono::seconds(10));
	/// The last lines of its stdout/stderr log, for error messages.
	std::string log_tail(size_t lines = 20) const;

private:
	Vm(VmConfig config, Process process, qmp::Client qmp)
		: config_(std::move(config)), process_(std::move(process)), qmp_(std::move(qmp))
	{
	}
	VmConfig config_;
	Process process_;
	qmp::Client qmp_;
};

/// One trace line of QEMU's "log" trace backend, which prints either
/// "PID@SECONDS.MICROS:event args" or, with -msg timestamp=on in newer
/// builds, "2026-11-25T11:50:15.921339Z event args".
struct TraceLine {
	double wall_s = 0; ///< CLOCK_REALTIME seconds
	std::string event;
	std::string args;
};
std::optional<TraceLine> parse_trace_line(std::string_view line);
/// The trace lines of a log whose event is `event` (all when empty).
std::vector<TraceLine> read_trace(const std::string &path, std::string_view event = {});

/// Reads a file's last lines (logs in error messages).
std::string tail_lines(const std::string &path, size_t lines);

} // namespace vfiomig::qemu
