// Moving a migration stream from a saving data fd to a resuming one.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <vector>

#include "vfiomig/stream.hpp"
#include "vfiomig/vfio.hpp"

namespace vfiomig {

/// How a pump decides the stream (or this phase of it) is over.
enum class PumpUntil {
	Eof,    ///< STOP_COPY: read() == 0; ENOMSG is an error
	NoMsg,  ///< PRE_COPY: read() fails ENOMSG (temporary end); 0 also ends
};

struct PumpStats {
	std::uint64_t bytes_read = 0;
	std::uint64_t bytes_written = 0;
	std::uint64_t reads = 0;  ///< read() calls that returned data
	std::uint64_t writes = 0; ///< write() calls (partial ones included)
	bool eof = false;         ///< ended with read() == 0
	bool enomsg = false;      ///< ended with ENOMSG
	std::chrono::nanoseconds elapsed{0};
};

struct PumpOptions {
	PumpUntil until = PumpUntil::Eof;
	/// Read chunk sizes, used cyclically (default: 64 KiB).
	std::vector<std::size_t> read_sizes;
	/// Write chunk sizes, used cyclically (default: whatever was read).
	std::vector<std::size_t> write_sizes;
	/// Appends everything read here when set.
	Bytes *capture = nullptr;
};

/// Reads `src` until the end condition, writing everything to `dst` (when
/// non-null) with short writes retried. Fails with the first read/write
/// error (its context names the fd and the call).
Result<PumpStats> pump(DataFd &src, DataFd *dst, const PumpOptions &opt = {});

/// Writes all of `data`, in chunks of the given sizes (cyclic; empty =
/// one call per remaining buffer), retrying short writes.
Result<PumpStats> write_all(DataFd &dst, ByteSpan data, const std::vector<std::size_t> &sizes = {});

} // namespace vfiomig
