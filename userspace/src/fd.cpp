#include "vfiomig/fd.hpp"

#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace vfiomig {

std::string errno_name(int err)
{
	// glibc's names ("EINVAL"; "0" for 0), checked against every errno
	// the suite names; a number it does not know keeps its value.
	if (const char *name = strerrorname_np(err))
		return name;
	return "E" + std::to_string(err);
}

static std::string format_message(int err, const std::string &context)
{
	return context + ": " + std::strerror(err) + " (" + errno_name(err) + ")";
}

Error::Error(int err, std::string context)
	: std::system_error(err, std::generic_category(), context),
	  context_(std::move(context)), message_(format_message(err, context_))
{
}

void throw_error(int err, std::string context)
{
	throw Error(err, std::move(context));
}

long check_neg_errno(long ret, std::string_view context)
{
	if (ret < 0)
		throw_error(static_cast<int>(-ret), std::string(context));
	return ret;
}

void Fd::reset(int fd) noexcept
{
	if (fd_ >= 0 && fd_ != fd)
		::close(fd_);
	fd_ = fd;
}

Result<Fd> Fd::try_open(const std::string &path, int flags, mode_t mode)
{
	int fd = ::open(path.c_str(), flags | O_CLOEXEC, mode);
	if (fd < 0)
		return Result<Fd>::failure(errno, "open(" + path + ")");
	return Fd(fd);
}

Fd Fd::open(const std::string &path, int flags, mode_t mode)
{
	return try_open(path, flags, mode).value();
}

Result<int> ioctl_noarg(FdView fd, unsigned long request, std::string_view context)
{
	int ret = ::ioctl(fd.get(), request);
	if (ret < 0)
		return Result<int>::failure(errno, std::string(context));
	return ret;
}

Result<int> ioctl_value(FdView fd, unsigned long request, unsigned long value,
			std::string_view context)
{
	int ret = ::ioctl(fd.get(), request, value);
	if (ret < 0)
		return Result<int>::failure(errno, std::string(context));
	return ret;
}

std::string read_file(const std::string &path)
{
	Fd fd = Fd::open(path, O_RDONLY);
	std::string out;
	char buf[4096];
	for (;;) {
		ssize_t n = ::read(fd.get(), buf, sizeof(buf));
		if (n < 0) {
			if (errno == EINTR)
				continue;
			throw_error(errno, "read(" + path + ")");
		}
		if (n == 0)
			break;
		out.append(buf, static_cast<size_t>(n));
	}
	return out;
}

Status try_write_file(const std::string &path, std::string_view data)
{
	auto fd = Fd::try_open(path, O_WRONLY);
	if (!fd)
		return Status::failure(fd.err(), fd.context());
	ssize_t n = ::write(fd->get(), data.data(), data.size());
	if (n < 0)
		return Status::failure(errno, "write(" + path + ", \"" + std::string(data) + "\")");
	if (static_cast<size_t>(n) != data.size())
		return Status::failure(EIO, "short write(" + path + ")");
	return Unit{};
}

} // namespace vfiomig
