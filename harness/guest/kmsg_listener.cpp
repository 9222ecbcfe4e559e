#include "kmsg_listener.hpp"

#include <fcntl.h>
#include <unistd.h>

namespace vfiomig::test {

const char *kmsg_bad_pattern(const std::string &line)
{
	static const char *const kBad[] = {
		"WARNING:", "BUG:", "Oops", "lockdep", "KASAN", "possible circular locking",
		"hung_task", "blocked for more than", "general protection fault",
	};
	for (const char *p : kBad)
		if (line.find(p) != std::string::npos)
			return p;
	return nullptr;
}

KmsgListener::KmsgListener()
{
	if (auto r = Fd::try_open("/dev/kmsg", O_RDONLY | O_NONBLOCK))
		reader_ = std::move(r.value());
	if (auto w = Fd::try_open("/dev/kmsg", O_WRONLY))
		writer_ = std::move(w.value());
}

void KmsgListener::drain(std::vector<std::string> *out)
{
	if (!reader_)
		return;
	char buf[8192];
	for (;;) {
		ssize_t n = ::read(reader_.get(), buf, sizeof(buf));
		if (n < 0) {
			if (errno == EPIPE) // overwritten records: keep reading
				continue;
			break; // EAGAIN: no more records
		}
		if (out) {
			std::string rec(buf, static_cast<std::size_t>(n));
			// "prio,seq,time,flags;message\n continuation..."
			auto semi = rec.find(';');
			out->push_back(semi == std::string::npos ? rec : rec.substr(semi + 1));
		}
	}
}

void KmsgListener::OnTestStart(const ::testing::TestInfo &info)
{
	drain(nullptr);
	if (writer_) {
		std::string mark = std::string("vfio-migtest: begin ") + info.test_suite_name() + "." + info.name() + "\n";
		(void)!::write(writer_.get(), mark.data(), mark.size());
	}
}

void KmsgListener::OnTestEnd(const ::testing::TestInfo &info)
{
	std::vector<std::string> lines;
	drain(&lines);
	std::string report;
	for (const std::string &l : lines)
		if (const char *p = kmsg_bad_pattern(l))
			report += "  [" + std::string(p) + "] " + l;
	if (!report.empty())
		ADD_FAILURE() << "kernel log during " << info.test_suite_name() << "." << info.name()
			      << " shows problems:\n"
			      << report;
}

} // namespace vfiomig::test
