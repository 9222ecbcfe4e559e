// QMP, the QEMU Machine Protocol: a client over a unix socket, and the
// pure message codec it is built on (host-tested without a QEMU).
#pragma once

#include <chrono>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include <vfiomig/fd.hpp>

namespace vfiomig::qmp {

using json = nlohmann::json;
using Clock = std::chrono::steady_clock;

/// QEMU answered a command with {"error": ...}. what() reads e.g.
/// "QMP migrate on /run/src.qmp: GenericError: vfio 0000:00:02.0: ...".
class CommandError : public std::runtime_error {
public:
	CommandError(std::string command, std::string endpoint, std::string error_class, std::string desc);
	const std::string &command() const noexcept { return command_; }
	const std::string &error_class() const noexcept { return class_; }
	const std::string &desc() const noexcept { return desc_; }

private:
	std::string command_, class_, desc_;
};

/// The peer broke the protocol (malformed JSON, an unexpected message) or
/// went away; what() names the endpoint and what was expected.
class ProtocolError : public std::runtime_error {
public:
	using std::runtime_error::runtime_error;
};

/// What a line from QEMU is.
enum class Kind { Greeting, Return, Error, Event };

/// One message received from QEMU.
struct Message {
	Kind kind;
	json body;
	/// The "id" of a Return or Error, when the command carried one.
	std::optional<json> id;
};

/// Parses one line (one JSON object) QEMU sent; throws ProtocolError on a
/// line that is not a QMP server message.
Message parse_message(std::string_view line);

/// The line to send for a command (with its newline); arguments are left
/// out when empty, as QEMU accepts.
std::string encode_command(std::string_view name, const json &arguments, const std::optional<json> &id);

/// Splits received bytes into lines: complete lines are moved out of buf,
/// a partial tail stays for the next read.
std::vector<std::string> take_lines(std::string &buf);

/// The QEMU version a greeting announces: {major, minor, micro}.
struct Version {
	int major = 0, minor = 0, micro = 0;
	auto operator<=>(const Version &) const = default;
};
Version greeting_version(const json &greeting);

/// A QMP session on a unix socket: negotiated (qmp_capabilities) on
/// connect, commands answered in order, events kept until asked for.
class Client {
public:
	/// Connects to a QEMU's QMP server socket, retrying until it appears
	/// (QEMU creates it at start-up) or timeout; reads the greeting and
	/// enters command mode.
	static Client connect(const std::string &path, std::chrono::milliseconds timeout);

	Client(Client &&) noexcept = default;
	Client &operator=(Client &&) noexcept = default;

	/// Runs a command and returns its "return" value; throws CommandError
	/// on an error reply, ProtocolError when QEMU goes away or does not
	/// answer within timeout.
	json execute(std::string_view command, const json &arguments = json::object(),
		     std::chrono::milliseconds timeout = std::chrono::seconds(60));

	/// Waits for the next event named name (events received before that
	/// one are kept); nullopt on timeout. An event already received is
	/// returned at once.
	std::optional<json> wait_event(std::string_view name, std::chrono::milliseconds timeout);

	/// Every event received so far, in order (taken ones included).
	const std::vector<json> &events() const noexcept { return all_events_; }
	const json &greeting() const noexcept { return greeting_; }
	Version version() const { return greeting_version(greeting_); }
	const std::string &path() const noexcept { return path_; }

private:
	Client(Fd fd, std::string path) : fd_(std::move(fd)), path_(std::move(path)) {}
	/// Next message; nullopt at the deadline.
	std::optional<Message> receive(Clock::time_point deadline);
	void send_line(const std::string &line);
	void note_event(const json &event);

	Fd fd_;
	std::string path_;
	std::string buf_;
	json greeting_;
	std::deque<json> unclaimed_events_;
	std::vector<json> all_events_;
	unsigned next_id_ = 1;
};

} // namespace vfiomig::qmp
