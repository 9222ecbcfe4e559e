// A fresh vfio_mig_emu instance owned by one test: its PRECOPY_INFOv2
// opt-in and its knobs die with it, so pooled instances stay untouched.
#pragma once

#include <memory>

#include "common.hpp"

namespace vfiomig::test {

struct Fresh {
	MdevInstance mdev;
	Device dev; ///< declared last: closed before the instance is removed
	static std::unique_ptr<Fresh> make(Profile p)
	{
		MdevInstance m = MdevInstance::create(p);
		Device d = open_device(m.sysfs_path());
		return std::unique_ptr<Fresh>(new Fresh{std::move(m), std::move(d)});
	}
};

} // namespace vfiomig::test
