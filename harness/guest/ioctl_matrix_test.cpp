// The ioctl edge-case matrix: one test per row of fixtures/ioctl-matrix.tsv and profile, named after the row.
#include <cstdio>
#include <cstdlib>

#include "fresh.hpp"
#include "ioctl_matrix_cells.hpp"

namespace vfiomig::test {
namespace {

struct Cell {
	const matrix::Row *row;
	Target target;
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
	    << ") on " << c.target.name();
}

std::vector<Cell> all_cells()
{
	std::vector<Cell> out;
	for (const matrix::Row &r : table()) {
		for (const Target &t : target_params())
			out.push_back({&r, t});
	}
	return out;
}

std::string cell_name(const ::testing::TestParamInfo<Cell> &info)
{
	return info.param.row->name + "_" + info.param.target.name();
}

class IoctlMatrix : public ProfileFixture, public ::testing::WithParamInterface<Cell> {
protected:
	Target target() const override { return GetParam().target; }
};

// Runs on every target: the streams a cell writes come from the target's
// own saving fd, and scenes the uAPI alone cannot reach skip with the
// reason (ioctl_matrix_cells.cpp).
TEST_P(IoctlMatrix, Cell)
{
	const Target t = GetParam().target;
	Device &dev = src();
	cells::Devices d;
	d.param = t;
	d.src = &dev;
	d.dst = has_destination() ? &dst() : nullptr;
	d.target.mig_flags = flags();
	// PROBE only: the pooled source instance must not opt in.
	d.target.precopy_v2 = dev.probe_feature(VFIO_DEVICE_FEATURE_MIG_PRECOPY_INFOv2, VFIO_DEVICE_FEATURE_SET) == 0;
	d.target.dma_logging = dev.probe_feature(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, VFIO_DEVICE_FEATURE_SET) == 0;
	// The instance that has opted in to PRECOPY_INFOv2 for as long as it is
	// open: a pooled one of our own, or on a foreign target the source
	// opened again for this cell alone (the opt-in dies with the close).
	std::unique_ptr<Fresh> own_v2;
	d.v2 = [&]() -> Device & {
		Device *v = nullptr;
		if (t.foreign() && d.target.precopy_v2) {
			own_v2 = Fresh::make(t);
			v = &own_v2->dev;
		} else if (t.foreign()) {
			v = &dev; // nothing to opt in to: the rows expect ENOTTY
		} else {
			v = &pool(profile(), 2).dev;
		}
		v->reset();
		if (d.target.precopy_v2)
			v->try_precopy_v2_opt_in().value();
		return *v;
	};
	cells::run(*GetParam().row, d);
}

INSTANTIATE_TEST_SUITE_P(, IoctlMatrix, ::testing::ValuesIn(all_cells()), cell_name);

} // namespace
} // namespace vfiomig::test
