#include "vfiomig/pump.hpp"

#include <algorithm>

namespace vfiomig {

namespace {

std::size_t pick(const std::vector<std::size_t> &sizes, std::uint64_t n, std::size_t dflt)
{
	return sizes.empty() ? dflt : std::max<std::size_t>(1, sizes[n % sizes.size()]);
}

} // namespace

Result<PumpStats> write_all(DataFd &dst, ByteSpan data, const std::vector<std::size_t> &sizes)
{
	PumpStats st;
	auto t0 = std::chrono::steady_clock::now();
	std::size_t pos = 0;
	while (pos < data.size()) {
		std::size_t len = std::min(pick(sizes, st.writes, data.size() - pos), data.size() - pos);
		auto w = dst.write(data.subspan(pos, len));
		st.writes++;
		if (!w)
			return Result<PumpStats>::failure(w.err(), w.context() + " at stream offset " + std::to_string(pos));
		if (*w == 0)
			return Result<PumpStats>::failure(EIO, "write() returned 0 on " + dst.describe());
		pos += *w;
		st.bytes_written += *w;
	}
	st.elapsed = std::chrono::steady_clock::now() - t0;
	return st;
}

Result<PumpStats> pump(DataFd &src, DataFd *dst, const PumpOptions &opt)
{
	PumpStats st;
	auto t0 = std::chrono::steady_clock::now();
	Bytes buf;
	for (;;) {
		std::size_t len = pick(opt.read_sizes, st.reads, 64 * 1024);
		buf.resize(len);
		auto r = src.read(buf);
		if (!r) {
			if (r.err() == ENOMSG && opt.until == PumpUntil::NoMsg) {
				st.enomsg = true;
				break;
			}
			return Result<PumpStats>::failure(r.err(), r.context() + " after " +
									   std::to_string(st.bytes_read) + " bytes");
		}
		if (*r == 0) {
			st.eof = true;
			break;
		}
		st.reads++;
		st.bytes_read += *r;
		ByteSpan chunk(buf.data(), *r);
		if (opt.capture)
			opt.capture->insert(opt.capture->end(), chunk.begin(), chunk.end());
		if (dst) {
			auto w = write_all(*dst, chunk, opt.write_sizes);
			if (!w)
				return Result<PumpStats>::failure(w.err(), w.context());
			st.bytes_written += w->bytes_written;
			st.writes += w->writes;
		}
	}
	st.elapsed = std::chrono::steady_clock::now() - t0;
	return st;
}

} // namespace vfiomig
