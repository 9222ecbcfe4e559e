// The ioctl edge-case matrix: one test per row of fixtures/ioctl-matrix.tsv and profile, named after the row.
#include <cstdio>
#include <cstdlib>

#include "ioctl_matrix_cells.hpp"

namespace vfiomig::test {
namespace {

struct Cell {
	const matrix::Row *row;
	Profile profile;
};

// Read while InitGoogleTest expands the instantiation below: a table that
// does not parse, names something the suite cannot run, or leaves out
// something it can, stops the whole suite here.
const std::vector<matrix::Row> &table()
{
	static const std::vector<matrix::Row> rows = [] {
		std::string path = matrix::find_table(VFIOMIG_SOURCE_DIR);
		try {
			return matrix::load_table(path, cells::registry());
		} catch (const std::exception &e) {
			std::fprintf(stderr, "vfio-migtest: the ioctl matrix table %s is not usable:\n%s", path.c_str(),
				     e.what());
			std::exit(2);
		}
	}();
	return rows;
}

// gtest prints the parameter of a failed test: the row, not its bytes.
[[maybe_unused]] void PrintTo(const Cell &c, std::ostream *os)
{
	*os << "row " << c.row->line << " " << c.row->call << " x " << c.row->condition << " (requires "
	    << c.row->needs.text() << ", expected " << c.row->expected.text() << ", after " << c.row->after.text()
	    << ") on " << profile_name(c.profile);
}

std::vector<Cell> all_cells()
{
	std::vector<Cell> out;
	for (const matrix::Row &r : table()) {
		for (Profile p : kAllProfiles)
			out.push_back({&r, p});
	}
	return out;
}

std::string cell_name(const ::testing::TestParamInfo<Cell> &info)
{
	return info.param.row->name + "_" + profile_name(info.param.profile);
}

class IoctlMatrix : public ProfileFixture, public ::testing::WithParamInterface<Cell> {
protected:
	Profile profile() const override { return GetParam().profile; }
};

TEST_P(IoctlMatrix, Cell)
{
	Device &dev = src();
	cells::Devices d;
	d.profile = profile();
	d.src = &dev;
	d.target.mig_flags = flags();
	// PROBE only: the pooled source instance must not opt in.
	d.target.precopy_v2 = dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_DEVICE_FEATURE_SET) == 0;
	d.target.dma_logging = dev.probe_feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET) == 0;
	// The instance PrecopyInfoV2 uses: opted in for as long as it is open.
	d.v2 = [this, &d]() -> Device & {
		Device &v = pool(profile(), 2).dev;
		v.reset();
		if (d.target.precopy_v2)
			v.try_precopy_v2_opt_in().value();
		return v;
	};
	cells::run(*GetParam().row, d);
}

INSTANTIATE_TEST_SUITE_P(, IoctlMatrix, ::testing::ValuesIn(all_cells()), cell_name);

} // namespace
} // namespace vfiomig::test
