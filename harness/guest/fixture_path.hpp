// Where the suite's data files (fixtures/) are: next to the binary's tree
// (build/cmake/harness/vfio-migtest -> <tree>/fixtures), installed
// (<prefix>/bin -> <prefix>/share/vfio-migtest/fixtures), else under the
// source tree the binary was built from.
#pragma once

#include <filesystem>
#include <string>

namespace vfiomig::test {

inline std::string find_fixture(const std::string &relative, const std::string &source_dir)
{
	namespace fs = std::filesystem;
	std::error_code ec;
	fs::path exe = fs::read_symlink("/proc/self/exe", ec);
	if (!ec) {
		for (fs::path dir = exe.parent_path(); !dir.empty() && dir != dir.root_path(); dir = dir.parent_path()) {
			for (fs::path p : {dir / "fixtures" / relative, dir / "share" / "vfio-migtest" / "fixtures" / relative}) {
				if (fs::exists(p, ec))
					return p.string();
			}
		}
	}
	return (fs::path(source_dir) / "fixtures" / relative).string();
}

} // namespace vfiomig::test
