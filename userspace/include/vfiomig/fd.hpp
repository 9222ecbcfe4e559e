// Owning and non-owning file descriptors, the error type, and Result<T>.
#pragma once

#include <cerrno>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <sys/ioctl.h>

namespace vfiomig {

/// "EINVAL", "ENOMSG", ... for an errno value ("E123" when unknown).
std::string errno_name(int err);

/// An OS error with context: which call, its arguments, the device and state.
/// what() reads e.g. "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE
/// RUNNING->STOP_COPY) on 6f1c...: Invalid argument (EINVAL)".
class Error : public std::system_error {
public:
	Error(int err, std::string context);
	/// The errno value.
	int err() const noexcept { return code().value(); }
	/// The context alone, without the errno text.
	const std::string &context() const noexcept { return context_; }
	const char *what() const noexcept override { return message_.c_str(); }

private:
	std::string context_;
	std::string message_;
};

/// Throws Error(err, context).
[[noreturn]] void throw_error(int err, std::string context);

/// For APIs returning -errno (liburing, libnl): throws Error when ret < 0,
/// returns ret otherwise.
long check_neg_errno(long ret, std::string_view context);

/// Empty value for Result<Unit>.
struct Unit {};

/// A value or an errno with context. The suite inspects err() directly;
/// value() throws the corresponding Error.
template <typename T>
class [[nodiscard]] Result {
public:
	Result(T value) : value_(std::move(value)) {}
	static Result failure(int err, std::string context)
	{
		Result r;
		r.err_ = err;
		r.context_ = std::move(context);
		return r;
	}

	bool ok() const noexcept { return value_.has_value(); }
	explicit operator bool() const noexcept { return ok(); }
	/// 0 on success, the errno otherwise.
	int err() const noexcept { return err_; }
	const std::string &context() const noexcept { return context_; }

	T &value() &
	{
		check();
		return *value_;
	}
	const T &value() const &
	{
		check();
		return *value_;
	}
	T &&value() &&
	{
		check();
		return std::move(*value_);
	}
	T *operator->() { return &value(); }
	T &operator*() & { return value(); }

	/// Error text for assertions ("ok" on success).
	std::string describe() const
	{
		return ok() ? std::string("ok") : Error(err_, context_).what();
	}

private:
	Result() = default;
	void check() const
	{
		if (!value_)
			throw_error(err_, context_);
	}
	std::optional<T> value_;
	int err_ = 0;
	std::string context_;
};

using Status = Result<Unit>;

/// Non-owning view of a file descriptor.
class FdView {
public:
	constexpr FdView() noexcept = default;
	constexpr explicit FdView(int fd) noexcept : fd_(fd) {}
	constexpr int get() const noexcept { return fd_; }
	constexpr bool valid() const noexcept { return fd_ >= 0; }
	constexpr explicit operator bool() const noexcept { return valid(); }

private:
	int fd_ = -1;
};

/// Move-only owning file descriptor; closes on destruction.
class Fd {
public:
	Fd() noexcept = default;
	/// Takes ownership of fd (may be -1).
	explicit Fd(int fd) noexcept : fd_(fd) {}
	Fd(const Fd &) = delete;
	Fd &operator=(const Fd &) = delete;
	Fd(Fd &&other) noexcept : fd_(other.release()) {}
	Fd &operator=(Fd &&other) noexcept
	{
		if (this != &other)
			reset(other.release());
		return *this;
	}
	~Fd() { reset(); }

	/// open(2) with O_CLOEXEC added; throws Error naming the path.
	static Fd open(const std::string &path, int flags, mode_t mode = 0);
	/// As open() but returns the errno instead of throwing.
	static Result<Fd> try_open(const std::string &path, int flags, mode_t mode = 0);

	int get() const noexcept { return fd_; }
	FdView view() const noexcept { return FdView(fd_); }
	bool valid() const noexcept { return fd_ >= 0; }
	explicit operator bool() const noexcept { return valid(); }
	/// Gives up ownership and returns the descriptor.
	int release() noexcept { return std::exchange(fd_, -1); }
	/// Closes the current descriptor (if any) and owns fd.
	void reset(int fd = -1) noexcept;

private:
	int fd_ = -1;
};

/// ioctl(fd, request, arg) returning 0/the ioctl's value or the errno.
/// The single place the project calls ioctl(2) with a typed argument.
template <typename T>
Result<int> ioctl(FdView fd, unsigned long request, T *arg, std::string_view context)
{
	int ret = ::ioctl(fd.get(), request, arg);
	if (ret < 0)
		return Result<int>::failure(errno, std::string(context));
	return ret;
}

/// ioctl without an argument (VFIO_DEVICE_RESET, VFIO_GET_API_VERSION).
Result<int> ioctl_noarg(FdView fd, unsigned long request, std::string_view context);
/// ioctl with an integer argument passed by value (VFIO_SET_IOMMU).
Result<int> ioctl_value(FdView fd, unsigned long request, unsigned long value,
			std::string_view context);

/// Reads a whole (small) file, e.g. from sysfs; throws Error.
std::string read_file(const std::string &path);
/// Writes a string to a file (sysfs attribute); returns the errno on failure.
Status try_write_file(const std::string &path, std::string_view data);

} // namespace vfiomig
