// Malformed netlink requests (unknown or ill-typed attributes, oversize strings, broken nests, random bytes) are refused cleanly.
#include "control_expect.hpp"

#include <cstring>
#include <linux/netlink.h>
#include <random>

namespace vfiomig::test {
namespace {

using namespace control;

class NetlinkInput : public FullProfileTest {
protected:
	/// Sends `b`'s attributes with `cmd` and expects errno `err` (0: any
	/// error) with an extack message containing `text`.
	void expect_refused(std::uint8_t cmd, const AttrBuf &b, int err, const char *text, std::uint16_t flags = 0,
			    std::uint16_t reserved = 0)
	{
		RawReply r = nl()->raw_request(cmd, b.data(), flags, VFIO_MIG_EMU_GENL_VERSION, reserved);
		if (err)
			EXPECT_EQ(errno_name(r.err), errno_name(err)) << "extack: " << r.extack;
		else
			EXPECT_NE(r.err, 0) << "accepted";
		EXPECT_NE(r.extack.find(text), std::string::npos) << "extack \"" << r.extack << "\" lacks \"" << text
								   << "\"";
	}
	AttrBuf with_uuid()
	{
		AttrBuf b;
		b.str(VFIO_MIG_EMU_A_UUID, src().label());
		return b;
	}
};

TEST_F(NetlinkInput, UnknownAttributeIsRefused)
{
	AttrBuf b = with_uuid();
	b.u32(200, 1);
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, b, EINVAL, "");
	AttrBuf other = with_uuid();
	other.u32(VFIO_MIG_EMU_A_STATE, 1); // a known attribute DEV_GET does not take
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, other, EINVAL, "");
	AttrBuf stats;
	stats.str(VFIO_MIG_EMU_A_UUID, src().label());
	expect_refused(VFIO_MIG_EMU_CMD_STATS_GET, stats, EINVAL, "");
}

TEST_F(NetlinkInput, IllTypedAttributeIsRefused)
{
	AttrBuf b = with_uuid();
	std::size_t n = b.begin_nest(VFIO_MIG_EMU_A_FAULT);
	b.u8(VFIO_MIG_EMU_FAULT_SITE, VFIO_MIG_EMU_SITE_READ); // u32 expected
	b.u32(VFIO_MIG_EMU_FAULT_EFFECT, VFIO_MIG_EMU_EFFECT_FAIL);
	b.end_nest(n);
	expect_refused(VFIO_MIG_EMU_CMD_FAULT_ADD, b, 0, "length");
	RawReply r = nl()->raw_request(VFIO_MIG_EMU_CMD_FAULT_ADD, b.data());
	EXPECT_EQ(r.attribute.rfind("A_FAULT/FAULT_SITE", 0), 0u)
		<< "NLMSGERR_ATTR_OFFS should name the ill-typed attribute: " << r.attribute;
	AttrBuf w = with_uuid();
	w.u64(VFIO_MIG_EMU_A_WORKLOAD_ACTION, 1).u32(VFIO_MIG_EMU_A_WORKLOAD_COUNT, 1);
	expect_refused(VFIO_MIG_EMU_CMD_WORKLOAD, w, 0, "length");
	EXPECT_TRUE(nl()->faults(src().label()).empty());
}

TEST_F(NetlinkInput, OversizeOrUnterminatedStringsAreRefused)
{
	AttrBuf longer;
	longer.str(VFIO_MIG_EMU_A_UUID, src().label() + std::string(64, 'f'));
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, longer, 0, "");
	AttrBuf huge;
	huge.str(VFIO_MIG_EMU_A_UUID, std::string(4000, 'a'));
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, huge, 0, "");
	AttrBuf unterminated;
	const std::string &u = src().label();
	unterminated.raw(VFIO_MIG_EMU_A_UUID, ByteSpan(reinterpret_cast<const std::uint8_t *>(u.data()), u.size()));
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, unterminated, 0, "");
	AttrBuf empty;
	empty.raw(VFIO_MIG_EMU_A_UUID, {});
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, empty, 0, "");
}

TEST_F(NetlinkInput, BrokenNestsAreRefused)
{
	AttrBuf flat = with_uuid(); // A_KNOBS without NLA_F_NESTED
	flat.raw(VFIO_MIG_EMU_A_KNOBS, {});
	expect_refused(VFIO_MIG_EMU_CMD_KNOBS_SET, flat, EINVAL, "");

	AttrBuf truncated = with_uuid();
	std::size_t n = truncated.begin_nest(VFIO_MIG_EMU_A_KNOBS);
	truncated.u32(VFIO_MIG_EMU_KNOB_DIRTY_RATE, 1);
	truncated.end_nest(n);
	Bytes bytes = truncated.data();
	// The inner attribute claims more bytes than its nest holds.
	std::uint16_t inner_len = 200;
	std::memcpy(bytes.data() + n + 4, &inner_len, 2);
	RawReply r = nl()->raw_request(VFIO_MIG_EMU_CMD_KNOBS_SET, bytes);
	EXPECT_NE(r.err, 0) << "a nest with an overlong inner attribute was accepted";

	// A nest longer than the message.
	Bytes cut = truncated.data();
	std::uint16_t nest_len = 400;
	std::memcpy(cut.data() + n, &nest_len, 2);
	r = nl()->raw_request(VFIO_MIG_EMU_CMD_KNOBS_SET, cut);
	EXPECT_NE(r.err, 0) << "a nest running past the message was accepted";

	// Trailing bytes that are not an attribute.
	Bytes tail = with_uuid().data();
	tail.insert(tail.end(), {1, 0, 0, 0});
	r = nl()->raw_request(VFIO_MIG_EMU_CMD_DEV_GET, tail);
	EXPECT_NE(r.err, 0) << "an attribute of length 1 was accepted";
	EXPECT_EQ(nl()->device(src().label()).knobs.dirty_rate, 0u) << "a refused request changed a knob";
}

TEST_F(NetlinkInput, BadHeadersAndCommandsAreRefused)
{
	AttrBuf b = with_uuid();
	expect_refused(VFIO_MIG_EMU_CMD_DEV_GET, b, EINVAL, "", 0, 1); // genlmsghdr.reserved != 0
	RawReply r = nl()->raw_request(99, b.data());
	EXPECT_EQ(errno_name(r.err), "EOPNOTSUPP");
	for (std::uint8_t ev = VFIO_MIG_EMU_CMD_EVENT_STATE; ev <= VFIO_MIG_EMU_CMD_EVENT_RESET; ev++) {
		r = nl()->raw_request(ev, b.data());
		EXPECT_EQ(errno_name(r.err), "EOPNOTSUPP") << "event command " << int(ev) << " sent as a request";
	}
	r = nl()->raw_request(VFIO_MIG_EMU_CMD_COUNTERS_RESET, b.data(), NLM_F_DUMP);
	EXPECT_EQ(errno_name(r.err), "EOPNOTSUPP") << "COUNTERS_RESET has no dump";
	r = nl()->raw_request(VFIO_MIG_EMU_CMD_DEV_GET, {});
	EXPECT_EQ(errno_name(r.err), "EINVAL");
	EXPECT_NE(r.extack.find("VFIO_MIG_EMU_A_UUID"), std::string::npos) << r.extack;
	EXPECT_EQ(r.attribute, "missing A_UUID") << "NLMSGERR_ATTR_MISS_TYPE";
}

TEST_F(NetlinkInput, RandomBytesAreRefusedWithoutKernelWarnings)
{
	// Seeded: a failure names its iteration and replays exactly.
	std::mt19937_64 rng(0x7666696f);
	const std::uint8_t cmds[] = {VFIO_MIG_EMU_CMD_DEV_GET,     VFIO_MIG_EMU_CMD_KNOBS_SET,
				     VFIO_MIG_EMU_CMD_FAULT_ADD,   VFIO_MIG_EMU_CMD_FAULT_GET,
				     VFIO_MIG_EMU_CMD_FAULT_CLEAR, VFIO_MIG_EMU_CMD_WORKLOAD,
				     VFIO_MIG_EMU_CMD_COUNTERS_RESET};
	int refused = 0, with_extack = 0;
	for (int i = 0; i < 300; i++) {
		std::uint8_t cmd = cmds[rng() % std::size(cmds)];
		Bytes junk(4 + rng() % 125);
		for (auto &byte : junk)
			byte = static_cast<std::uint8_t>(rng());
		std::uint16_t flags = (rng() % 4 == 0) ? NLM_F_DUMP : 0;
		RawReply r = nl()->raw_request(cmd, junk, flags);
		EXPECT_NE(r.err, 0) << "iteration " << i << ": random bytes accepted by command " << int(cmd);
		refused += r.err != 0;
		with_extack += !r.extack.empty();
	}
	RecordProperty("refused", refused);
	RecordProperty("with_extack", with_extack);
	EXPECT_GT(with_extack, 0) << "no refusal explained itself";
}

TEST_F(NetlinkInput, RandomAttributesAroundAValidDeviceAreHandled)
{
	// Valid header and uuid, then random attributes (types, lengths, nest
	// flags): whatever the kernel decides, it must answer and stay clean.
	MdevInstance victim = MdevInstance::create(Profile::Full);
	std::mt19937_64 rng(0x6d696774);
	const std::uint8_t cmds[] = {VFIO_MIG_EMU_CMD_DEV_GET, VFIO_MIG_EMU_CMD_KNOBS_SET, VFIO_MIG_EMU_CMD_FAULT_ADD,
				     VFIO_MIG_EMU_CMD_FAULT_GET, VFIO_MIG_EMU_CMD_WORKLOAD};
	for (int i = 0; i < 200; i++) {
		AttrBuf b;
		b.str(VFIO_MIG_EMU_A_UUID, victim.uuid());
		std::uint8_t cmd = cmds[rng() % std::size(cmds)];
		int nattrs = 1 + static_cast<int>(rng() % 4);
		for (int a = 0; a < nattrs; a++) {
			auto type = static_cast<std::uint16_t>(rng() % 32);
			if (rng() % 2) {
				std::size_t n = b.begin_nest(type);
				for (int k = 0; k < static_cast<int>(rng() % 3); k++)
					b.u32(static_cast<std::uint16_t>(rng() % 20), static_cast<std::uint32_t>(rng()));
				b.end_nest(n);
			} else {
				Bytes payload(rng() % 13);
				for (auto &byte : payload)
					byte = static_cast<std::uint8_t>(rng());
				b.raw(type, payload);
			}
		}
		RawReply r = nl()->raw_request(cmd, b.data());
		(void)r; // success is possible (e.g. a valid knob); a hang or a warning is not
	}
	EXPECT_NO_THROW(nl()->device(victim.uuid()));
}

} // namespace
} // namespace vfiomig::test
