// The module's per-device kernel memory accounting (DEV_GET A_KMEM): never-written pages cost nothing, written pages cost one page each, a saving session holds one record buffer however large the state.
#include "fresh.hpp"

namespace vfiomig::test {
namespace {

class KmemAccounting : public ::testing::Test {
protected:
	void SetUp() override
	{
		REQUIRE_CONTROL();
		if (!module_loaded())
			GTEST_SKIP() << "vfio_mig_emu is not loaded";
		REQUIRE_CONTROL();
	}
	control::Kmem kmem(const std::string &uuid)
	{
		auto k = nl()->device(uuid).kmem;
		EXPECT_TRUE(k) << "DEV_GET has no A_KMEM";
		return k.value_or(control::Kmem{});
	}
};

TEST_F(KmemAccounting, PagesMaterializeOnWriteAndSessionsStreamWithOneBuffer)
{
	SKIP_UNLESS_OFFERED(Profile::Full);
	const std::uint64_t mem = 64ull << 20;
	MdevInstance m = MdevInstance::create(Profile::Full);
	control::Knobs k;
	k.mem_size = mem;
	nl()->set_knobs(m.uuid(), k);
	{
		Device dev = open_device(m.sysfs_path());
		control::Kmem idle = kmem(m.uuid());
		EXPECT_EQ(idle.pages, 0u) << "never-written pages must cost nothing";
		EXPECT_EQ(idle.buffers, 0u);
		EXPECT_EQ(idle.bitmaps, 2 * (mem / 4096 / 8)) << "present + dirty bitmaps, 1 bit per page";
		// The digest's cache (uAPI KMEM_DIGEST): a stale bit per page, a
		// CRC and a stale bit per 16 pages, a pointer per 1024 pages.
		const std::uint64_t pages = mem / 4096, chunks = pages / 16, blocks = pages / 1024;
		const std::uint64_t digest_idle = pages / 8 + chunks * 4 + chunks / 8 + blocks * 8;
		EXPECT_EQ(idle.digest_cache, digest_idle) << "64 MiB never written: about 100 bytes per MiB";

		std::vector<std::uint8_t> chunk(1 << 20, 0xa5);
		for (std::uint64_t off = 0; off < (4u << 20); off += chunk.size())
			dev.region_write(VFIO_PCI_BAR2_REGION_INDEX, off, chunk);
		control::Kmem written = kmem(m.uuid());
		EXPECT_EQ(written.pages, 4u << 20);
		EXPECT_EQ(written.digest_cache, digest_idle + 4096) << "4 MiB written: one block of 1024 page CRCs";

		auto s = dev.set_state(State::StopCopy);
		ASSERT_TRUE(s.has_data());
		std::vector<std::uint8_t> buf(1 << 20);
		ASSERT_OK(s.data.read(buf));
		control::Kmem saving = kmem(m.uuid());
		EXPECT_EQ(saving.pages, written.pages) << "the saving path must not copy pages";
		EXPECT_GT(saving.buffers, 0u);
		EXPECT_LE(saving.buffers, 2u * VFIO_MIG_EMU_MAX_RECORD_PAYLOAD) << "one record staged, not the state";
		EXPECT_EQ(saving.bitmaps, idle.bitmaps * 5 / 2) << "3 session bitmaps";
		s.data.close();
		dev.set_state(State::Stop);
		control::Kmem after = kmem(m.uuid());
		EXPECT_EQ(after.buffers, 0u);
		EXPECT_EQ(after.bitmaps, idle.bitmaps);
		dev.reset();
		EXPECT_EQ(kmem(m.uuid()).pages, 0u) << "reset frees the memory";
		EXPECT_EQ(kmem(m.uuid()).digest_cache, digest_idle) << "reset frees the page CRC blocks";
	}
}

} // namespace
} // namespace vfiomig::test
