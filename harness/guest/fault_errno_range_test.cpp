// FAULT_ERRNO takes only errnos userspace can see (1..133): kernel-internal ones (ERESTARTSYS, ...) are refused with EINVAL.
#include "control_expect.hpp"

namespace vfiomig::test {
namespace {

using namespace control;

class FaultErrnoRange : public FullProfileTest {};

TEST_F(FaultErrnoRange, KernelInternalErrnosAreRefusedWithEinval)
{
	const std::string uuid = src().label();
	FaultGuard g(uuid);
	// ERESTARTSYS would reach userspace as 512; ERESTARTNOINTR restarts
	// the syscall into the same fault; ENOIOCTLCMD and the 134..511 gap
	// are no errnos at all.
	for (std::uint32_t e : {512u, 513u, 514u, 515u, 516u, 134u, 200u, 4095u}) {
		Fault f = fault(Site::Read, Effect::Fail);
		f.err = e;
		EXPECT_CONTROL_ERROR(nl()->add_fault(uuid, f), EINVAL, "FAULT_ERRNO");
	}
	EXPECT_TRUE(nl()->faults(uuid).empty()) << "a refused fault was added";
}

TEST_F(FaultErrnoRange, TheLastUserspaceErrnoIsAcceptedAndReturned)
{
	Device &s = src();
	FaultGuard g(s.label());
	auto out = s.set_state(State::StopCopy);
	Fault f = first_call(Site::Read, Effect::Fail);
	f.err = VFIO_MIG_EMU_MAX_FAULT_ERRNO; // EHWPOISON
	nl()->add_fault(s.label(), f);
	std::uint8_t buf[64];
	EXPECT_ERRNO(out.data.read(buf), VFIO_MIG_EMU_MAX_FAULT_ERRNO);
}

} // namespace
} // namespace vfiomig::test
