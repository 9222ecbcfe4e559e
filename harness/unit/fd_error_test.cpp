// Errors name the call, its context and the errno; Fd owns exactly one descriptor.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <unistd.h>

#include "vfiomig/fd.hpp"

using namespace vfiomig;

TEST(Error, MessageNamesContextAndErrno)
{
	Error e(EINVAL, "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE RUNNING->STOP_COPY) on 6f1c");
	EXPECT_EQ(e.err(), EINVAL);
	EXPECT_STREQ(e.what(),
		     "VFIO_DEVICE_FEATURE(SET MIG_DEVICE_STATE RUNNING->STOP_COPY) on 6f1c: Invalid argument (EINVAL)");
	EXPECT_EQ(errno_name(ENOMSG), "ENOMSG");
	EXPECT_EQ(errno_name(ESPIPE), "ESPIPE");
}

TEST(Error, ErrnoNamesAreTheSymbols)
{
	EXPECT_EQ(errno_name(EINVAL), "EINVAL");
	EXPECT_EQ(errno_name(EAGAIN), "EAGAIN"); // not EWOULDBLOCK
	EXPECT_EQ(errno_name(EOPNOTSUPP), "EOPNOTSUPP");
	EXPECT_EQ(errno_name(ENOTTY), "ENOTTY");
	EXPECT_EQ(errno_name(0), "0");
	EXPECT_EQ(errno_name(4000), "E4000") << "an unknown number keeps its value";
}

TEST(Error, NegativeErrnoHelperThrowsTheSameType)
{
	EXPECT_EQ(check_neg_errno(5, "io_uring_submit"), 5);
	try {
		check_neg_errno(-EBUSY, "io_uring_submit");
		FAIL() << "no throw";
	} catch (const Error &e) {
		EXPECT_EQ(e.err(), EBUSY);
		EXPECT_EQ(e.context(), "io_uring_submit");
	}
}

TEST(Result, CarriesErrnoOrValue)
{
	Result<int> ok = 3;
	EXPECT_TRUE(ok.ok());
	EXPECT_EQ(ok.value(), 3);
	auto bad = Result<int>::failure(ENODEV, "read on x");
	EXPECT_FALSE(bad);
	EXPECT_EQ(bad.err(), ENODEV);
	EXPECT_THROW(bad.value(), Error);
}

TEST(Fd, MoveOnlyOwnershipAndCloexec)
{
	Fd a = Fd::open("/dev/null", O_RDONLY);
	ASSERT_TRUE(a.valid());
	EXPECT_TRUE(fcntl(a.get(), F_GETFD) & FD_CLOEXEC);
	int raw = a.get();
	Fd b = std::move(a);
	EXPECT_FALSE(a.valid());
	EXPECT_EQ(b.get(), raw);
	int released = b.release();
	EXPECT_EQ(released, raw);
	EXPECT_FALSE(b.valid());
	b.reset(released);
	b.reset();
	EXPECT_EQ(fcntl(raw, F_GETFD), -1); // closed
	auto r = Fd::try_open("/nonexistent/x", O_RDONLY);
	EXPECT_EQ(r.err(), ENOENT);
}
