// QMP client: the codec and a blocking session over a unix socket.
#include <vfiomig/qmp.hpp>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <thread>

#include <fmt/format.h>

namespace vfiomig::qmp {

CommandError::CommandError(std::string command, std::string endpoint, std::string error_class, std::string desc)
	: std::runtime_error(fmt::format("QMP {} on {}: {}: {}", command, endpoint, error_class, desc)),
	  command_(std::move(command)), class_(std::move(error_class)), desc_(std::move(desc))
{
}

Message parse_message(std::string_view line)
{
	json j = json::parse(line, nullptr, /*allow_exceptions=*/false);
	if (j.is_discarded() || !j.is_object())
		throw ProtocolError(fmt::format("QMP: not a JSON object: {:.200}", line));
	std::optional<json> id;
	if (j.contains("id"))
		id = j["id"];
	if (j.contains("QMP")) {
		if (!j["QMP"].is_object() || !j["QMP"].contains("version"))
			throw ProtocolError(fmt::format("QMP: greeting without a version: {:.200}", line));
		return {Kind::Greeting, std::move(j), std::nullopt};
	}
	if (j.contains("return"))
		return {Kind::Return, std::move(j), std::move(id)};
	if (j.contains("error")) {
		const json &e = j["error"];
		if (!e.is_object() || !e.contains("class") || !e.contains("desc"))
			throw ProtocolError(fmt::format("QMP: error reply without class/desc: {:.200}", line));
		return {Kind::Error, std::move(j), std::move(id)};
	}
	if (j.contains("event")) {
		if (!j["event"].is_string())
			throw ProtocolError(fmt::format("QMP: event name is not a string: {:.200}", line));
		return {Kind::Event, std::move(j), std::nullopt};
	}
	throw ProtocolError(fmt::format("QMP: neither greeting, reply nor event: {:.200}", line));
}

std::string encode_command(std::string_view name, const json &arguments, const std::optional<json> &id)
{
	json j = {{"execute", name}};
	if (!arguments.is_null() && !(arguments.is_object() && arguments.empty()))
		j["arguments"] = arguments;
	if (id)
		j["id"] = *id;
	return j.dump() + "\n";
}

std::vector<std::string> take_lines(std::string &buf)
{
	std::vector<std::string> lines;
	size_t start = 0, nl;
	while ((nl = buf.find('\n', start)) != std::string::npos) {
		std::string line = buf.substr(start, nl - start);
		if (!line.empty() && line.back() == '\r')
			line.pop_back();
		if (!line.empty())
			lines.push_back(std::move(line));
		start = nl + 1;
	}
	buf.erase(0, start);
	return lines;
}

Version greeting_version(const json &greeting)
{
	const json &q = greeting.at("QMP").at("version").at("qemu");
	return {q.at("major").get<int>(), q.at("minor").get<int>(), q.at("micro").get<int>()};
}

Client Client::connect(const std::string &path, std::chrono::milliseconds timeout)
{
	sockaddr_un addr{};
	addr.sun_family = AF_UNIX;
	if (path.size() >= sizeof(addr.sun_path))
		throw_error(ENAMETOOLONG, fmt::format("QMP socket path {}", path));
	std::memcpy(addr.sun_path, path.c_str(), path.size() + 1);

	auto deadline = Clock::now() + timeout;
	int last_err = 0;
	for (;;) {
		Fd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
		if (!fd)
			throw_error(errno, "socket(AF_UNIX) for QMP");
		if (::connect(fd.get(), reinterpret_cast<sockaddr *>(&addr), sizeof(addr)) == 0) {
			Client c(std::move(fd), path);
			auto greeting = c.receive(deadline);
			if (!greeting)
				throw ProtocolError(fmt::format("QMP {}: no greeting within {} ms", path, timeout.count()));
			if (greeting->kind != Kind::Greeting)
				throw ProtocolError(fmt::format("QMP {}: expected the greeting, got {:.200}", path,
								greeting->body.dump()));
			c.greeting_ = std::move(greeting->body);
			c.execute("qmp_capabilities", json::object(), timeout);
			return c;
		}
		last_err = errno;
		if (last_err != ENOENT && last_err != ECONNREFUSED)
			throw_error(last_err, fmt::format("connect({}) for QMP", path));
		if (Clock::now() >= deadline)
			throw_error(last_err, fmt::format("connect({}) for QMP: QEMU did not open it within {} ms", path,
							  timeout.count()));
		std::this_thread::sleep_for(std::chrono::milliseconds(20));
	}
}

void Client::send_line(const std::string &line)
{
	size_t done = 0;
	while (done < line.size()) {
		ssize_t n = ::send(fd_.get(), line.data() + done, line.size() - done, MSG_NOSIGNAL);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			throw_error(errno, fmt::format("send to QMP {}", path_));
		}
		done += static_cast<size_t>(n);
	}
}

std::optional<Message> Client::receive(Clock::time_point deadline)
{
	for (;;) {
		size_t nl = buf_.find('\n');
		if (nl != std::string::npos) {
			std::string line = buf_.substr(0, nl);
			buf_.erase(0, nl + 1);
			if (line.empty() || line == "\r")
				continue;
			try {
				return parse_message(line);
			} catch (const ProtocolError &e) {
				throw ProtocolError(fmt::format("{} (from {})", e.what(), path_));
			}
		}
		auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
		if (left.count() <= 0)
			return std::nullopt;
		pollfd p{fd_.get(), POLLIN, 0};
		int r = ::poll(&p, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
		if (r < 0 && errno != EINTR)
			throw_error(errno, fmt::format("poll on QMP {}", path_));
		if (r <= 0)
			continue;
		char chunk[65536];
		ssize_t n = ::recv(fd_.get(), chunk, sizeof(chunk), 0);
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			throw_error(errno, fmt::format("recv from QMP {}", path_));
		}
		if (n == 0)
			throw ProtocolError(fmt::format("QMP {}: QEMU closed the connection", path_));
		buf_.append(chunk, static_cast<size_t>(n));
	}
}

void Client::note_event(const json &event)
{
	all_events_.push_back(event);
	unclaimed_events_.push_back(event);
}

json Client::execute(std::string_view command, const json &arguments, std::chrono::milliseconds timeout)
{
	json id = next_id_++;
	send_line(encode_command(command, arguments, id));
	auto deadline = Clock::now() + timeout;
	for (;;) {
		auto m = receive(deadline);
		if (!m)
			throw ProtocolError(fmt::format("QMP {} on {}: no answer within {} ms", command, path_,
							timeout.count()));
		switch (m->kind) {
		case Kind::Event:
			note_event(m->body);
			continue;
		case Kind::Greeting:
			throw ProtocolError(fmt::format("QMP {} on {}: a second greeting", command, path_));
		case Kind::Return:
		case Kind::Error:
			if (m->id && *m->id != id)
				throw ProtocolError(fmt::format("QMP {} on {}: answer to id {} while waiting for {}",
								command, path_, m->id->dump(), id.dump()));
			if (m->kind == Kind::Error) {
				const json &e = m->body["error"];
				throw CommandError(std::string(command), path_, e["class"].get<std::string>(),
						   e["desc"].get<std::string>());
			}
			return m->body["return"];
		}
	}
}

std::optional<json> Client::wait_event(std::string_view name, std::chrono::milliseconds timeout)
{
	auto take = [&]() -> std::optional<json> {
		for (auto it = unclaimed_events_.begin(); it != unclaimed_events_.end(); ++it) {
			if ((*it)["event"] == name) {
				json e = std::move(*it);
				unclaimed_events_.erase(it);
				return e;
			}
		}
		return std::nullopt;
	};
	if (auto e = take())
		return e;
	auto deadline = Clock::now() + timeout;
	for (;;) {
		auto m = receive(deadline);
		if (!m)
			return std::nullopt;
		if (m->kind != Kind::Event)
			throw ProtocolError(fmt::format("QMP {}: unexpected {:.200} while waiting for event {}", path_,
							m->body.dump(), name));
		note_event(m->body);
		if (auto e = take())
			return e;
	}
}

} // namespace vfiomig::qmp
