// The QMP codec: what QEMU sends is classified, commands are encoded as
// QEMU reads them, and a byte stream splits into messages at newlines.
#include <gtest/gtest.h>

#include <vfiomig/qemu.hpp>
#include <vfiomig/qmp.hpp>

using namespace vfiomig;
using qmp::Kind;

TEST(QmpCodec, GreetingCarriesTheVersion)
{
	auto m = qmp::parse_message(
		R"({"QMP": {"version": {"qemu": {"micro": 3, "minor": 1, "major": 11}, "package": "Debian 1:11.1.3+ds-1"}, "capabilities": ["oob"]}})");
	ASSERT_EQ(m.kind, Kind::Greeting);
	EXPECT_EQ(qmp::greeting_version(m.body), (qmp::Version{11, 1, 3}));
}

TEST(QmpCodec, ReturnAndErrorKeepTheirId)
{
	auto r = qmp::parse_message(R"({"return": {}, "id": 7})");
	ASSERT_EQ(r.kind, Kind::Return);
	ASSERT_TRUE(r.id);
	EXPECT_EQ(*r.id, 7);
	auto e = qmp::parse_message(R"({"error": {"class": "GenericError", "desc": "no"}, "id": 8})");
	ASSERT_EQ(e.kind, Kind::Error);
	EXPECT_EQ(*e.id, 8);
}

TEST(QmpCodec, EventIsRecognised)
{
	auto m = qmp::parse_message(
		R"({"timestamp": {"seconds": 1, "microseconds": 2}, "event": "MIGRATION", "data": {"status": "completed"}})");
	ASSERT_EQ(m.kind, Kind::Event);
	EXPECT_EQ(m.body["data"]["status"], "completed");
}

TEST(QmpCodec, MalformedLinesAreProtocolErrors)
{
	EXPECT_THROW(qmp::parse_message("not json"), qmp::ProtocolError);
	EXPECT_THROW(qmp::parse_message("[1, 2]"), qmp::ProtocolError);
	EXPECT_THROW(qmp::parse_message(R"({"something": 1})"), qmp::ProtocolError);
	EXPECT_THROW(qmp::parse_message(R"({"error": "just a string"})"), qmp::ProtocolError);
	EXPECT_THROW(qmp::parse_message(R"({"QMP": {}})"), qmp::ProtocolError);
	EXPECT_THROW(qmp::parse_message(R"({"event": 3})"), qmp::ProtocolError);
}

TEST(QmpCodec, CommandsAreOneLineWithArgumentsOnlyWhenGiven)
{
	EXPECT_EQ(qmp::encode_command("query-status", qmp::json::object(), std::nullopt),
		  "{\"execute\":\"query-status\"}\n");
	auto line = qmp::encode_command("migrate", {{"uri", "unix:/x"}}, qmp::json(3));
	auto j = qmp::json::parse(line);
	EXPECT_EQ(line.back(), '\n');
	EXPECT_EQ(line.find('\n'), line.size() - 1);
	EXPECT_EQ(j["execute"], "migrate");
	EXPECT_EQ(j["arguments"]["uri"], "unix:/x");
	EXPECT_EQ(j["id"], 3);
}

TEST(QmpCodec, LinesSplitAtNewlinesAndKeepThePartialTail)
{
	std::string buf = "{\"a\":1}\r\n{\"b\":2}\n\n{\"c\":";
	auto lines = qmp::take_lines(buf);
	ASSERT_EQ(lines.size(), 2u);
	EXPECT_EQ(lines[0], "{\"a\":1}");
	EXPECT_EQ(lines[1], "{\"b\":2}");
	EXPECT_EQ(buf, "{\"c\":");
	buf += "3}\n";
	lines = qmp::take_lines(buf);
	ASSERT_EQ(lines.size(), 1u);
	EXPECT_EQ(lines[0], "{\"c\":3}");
	EXPECT_TRUE(buf.empty());
}

TEST(QmpCodec, CommandErrorNamesTheCommandAndEndpoint)
{
	qmp::CommandError e("migrate", "/tmp/src.qmp", "GenericError", "vfio vme0: failed");
	EXPECT_STREQ(e.what(), "QMP migrate on /tmp/src.qmp: GenericError: vfio vme0: failed");
}

TEST(QemuVersion, ParsesTheVersionLine)
{
	auto v = qemu::parse_version_line("QEMU emulator version 10.0.2 (Debian 1:10.0.2+ds-2+deb13u1~bpo12+1)\n");
	ASSERT_TRUE(v);
	EXPECT_EQ(*v, (qmp::Version{10, 0, 2}));
	EXPECT_FALSE(qemu::parse_version_line("bash: qemu: command not found"));
	EXPECT_LT((qmp::Version{10, 0, 2}), (qmp::Version{11, 1, 0}));
}

TEST(QemuVmConfig, CommandLineCarriesEveryDeviceAndTheIncomingMode)
{
	qemu::VmConfig c;
	c.build.binary = "/q/qemu";
	c.name = "dst";
	c.dir = "/r";
	c.devices = {{"/sys/bus/mdev/devices/a", "vme0"}, {"/sys/bus/mdev/devices/b", "vme1"}};
	c.incoming = true;
	c.trace = {"vfio_*"};
	auto a = c.argv();
	std::string joined;
	for (auto &s : a)
		joined += s + " ";
	EXPECT_EQ(a[0], "/q/qemu");
	EXPECT_NE(joined.find("vfio-pci,sysfsdev=/sys/bus/mdev/devices/a,id=vme0,enable-migration=on"), std::string::npos);
	EXPECT_NE(joined.find("vfio-pci,sysfsdev=/sys/bus/mdev/devices/b,id=vme1,enable-migration=on"), std::string::npos);
	EXPECT_NE(joined.find("-incoming defer"), std::string::npos);
	EXPECT_NE(joined.find("-qmp unix:/r/dst.qmp,server=on,wait=off"), std::string::npos);
	EXPECT_NE(joined.find("-trace vfio_* -msg timestamp=on"), std::string::npos);
}

TEST(QemuTrace, BothLogFormatsParseToWallClockSeconds)
{
	auto a = qemu::parse_trace_line("212@1795607424.674024:vfio_migration_realize  (d8a8c621)");
	ASSERT_TRUE(a);
	EXPECT_EQ(a->event, "vfio_migration_realize");
	EXPECT_EQ(a->args, " (d8a8c621)");
	EXPECT_NEAR(a->wall_s, 1795607424.674024, 1e-6);
	auto b = qemu::parse_trace_line("2026-11-25T11:50:15.921339Z vfio_query_precopy_size  (x) init 0, dirty 4096, reinit 1, ret 0");
	ASSERT_TRUE(b);
	EXPECT_EQ(b->event, "vfio_query_precopy_size");
	EXPECT_NEAR(b->wall_s, 1795607415.921339, 1e-6);
	EXPECT_NE(b->args.find("reinit 1"), std::string::npos);
	EXPECT_FALSE(qemu::parse_trace_line("qemu-system-x86_64: -device vfio-pci: warning: something"));
	EXPECT_FALSE(qemu::parse_trace_line("2026-11-25T11:50:15.407794Z qemu-system-x86_64: -device x: warning: y"));
}
