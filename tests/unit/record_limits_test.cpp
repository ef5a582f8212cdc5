// What fits in one Kafka record (broker/include/runnel/kafka/record_limits.hpp): librdkafka's size
// of a record, message.max.bytes from the options, the start-up check of max_payload against it,
// and cutting a dead-letter copy down to a limit.
#include "runnel/kafka/record_limits.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "runnel/core/headers.hpp"

namespace runnel::kafka {
namespace {

using ::testing::HasSubstr;

std::string HeaderValue(const Record& r, std::string_view name) {
  for (const Header& h : r.headers) {
    if (h.name == name) return h.value;
  }
  return "(none)";
}

TEST(RecordWireSize, CountsValueKeyHeadersAndTheRecordOverheadAsLibrdkafkaDoes) {
  EXPECT_EQ(RecordWireSize(Record{"t", kAnyPartition, std::nullopt, "", {}}), 36u);
  EXPECT_EQ(RecordWireSize(Record{"t", kAnyPartition, std::string("k"), "abc", {}}), 36u + 1 + 3);
  // Each header: name and value bytes, each length a zig-zag varint (63 takes 1 byte, 64 takes 2).
  EXPECT_EQ(RecordWireSize(Record{"t", kAnyPartition, std::nullopt, "", {{"a", "b"}}}), 36u + 4);
  EXPECT_EQ(RecordWireSize(Record{"t", kAnyPartition, std::nullopt, "", {{"a", std::string(63, 'v')}}}),
            36u + 1 + 63 + 1 + 1);
  EXPECT_EQ(RecordWireSize(Record{"t", kAnyPartition, std::nullopt, "", {{"a", std::string(64, 'v')}}}),
            36u + 1 + 64 + 1 + 2);
}

TEST(MessageMaxBytes, IsRunnelsDefaultUnlessTheOptionsSetAValidOne) {
  EXPECT_EQ(MessageMaxBytes({}), kDefaultMessageMaxBytes);
  EXPECT_EQ(kDefaultMessageMaxBytes, 1'114'112u) << "1 MiB plus 64 KiB, documented in docs/config.md";
  EXPECT_EQ(MessageMaxBytes({{"message.max.bytes", "2000000"}}), 2'000'000u);
  for (const char* bad : {"", "1e6", "12abc", "-5", "999", "1000000001"}) {
    try {
      (void)MessageMaxBytes({{"message.max.bytes", bad}});
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const ConfigError& e) {
      EXPECT_THAT(e.what(),
                  HasSubstr(fmt::format("kafka.options.message.max.bytes: '{}' is not an integer within "
                                        "1000..1000000000",
                                        bad)));
    }
  }
}

// Loads a runnel.yaml with echo and a function `big` whose max_payload is on line 7, and
// kafka.options.message.max.bytes on line 3 when given.
class CheckRecordLimitsTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(file_); }
  std::string CheckError(std::size_t max_payload, std::optional<std::string> message_max_bytes) {
    std::ofstream(file_) << fmt::format(
        "kafka:\n  options:\n    {}\nfunctions:\n  - name: echo\n  - name: big\n    max_payload: {}\n"
        "    handler: builtin:echo\n",
        message_max_bytes ? "message.max.bytes: \"" + *message_max_bytes + "\"" : "client.rack: r1",
        max_payload);
    try {
      CheckRecordLimits(LoadStackConfig(file_));
    } catch (const ConfigError& e) {
      return e.what();
    }
    return "";
  }
  const std::filesystem::path file_ =
      std::filesystem::temp_directory_path() / fmt::format("record-limits-{}.yaml", ::getpid());
};

TEST_F(CheckRecordLimitsTest, TheDefaultsFitAndAnOversizedMaxPayloadNamesItsLineAndBothKeys) {
  EXPECT_EQ(CheckError(1 << 20, std::nullopt), "") << "the default max_payload must fit the default";
  EXPECT_EQ(CheckError(kDefaultMessageMaxBytes - kRunnelHeadersAllowance, std::nullopt), "");
  EXPECT_EQ(
      CheckError(2'000'000, std::nullopt),
      file_.string() +
          ":7: functions[1].max_payload: 2000000 plus 65536 bytes for the headers Runnel adds is over "
          "the producer's message.max.bytes of 1114112 (Runnel's default); lower functions[1].max_payload to "
          "at most 1048576, or set kafka.options.message.max.bytes to at least 2065536 (and the topics' "
          "max.message.bytes on the broker to match)");
  EXPECT_EQ(CheckError(2'000'000, "2065536"), "");
}

TEST_F(CheckRecordLimitsTest, ATooSmallMessageMaxBytesNamesTheOptionsLine) {
  EXPECT_EQ(
      CheckError(1000, "1000000"),
      file_.string() +
          ":3: kafka.options.message.max.bytes: 1000000 is too small for functions[0] (echo): its "
          "max_payload of 1048576 plus 65536 bytes for the headers Runnel adds needs 1114112; raise "
          "kafka.options.message.max.bytes to at least 1114112, or lower functions[0].max_payload to at most "
          "934464");
  EXPECT_THAT(CheckError(1000, "lots"),
              HasSubstr(file_.string() + ":3: kafka.options.message.max.bytes: 'lots' is not an integer"));
}

// A dead-letter copy: the original's headers, then Runnel's five.
Record DeadLetter(std::size_t value_size, std::size_t original_headers, std::size_t error_size = 20) {
  Record r{"in.dlq", kAnyPartition, std::string("key"), std::string(value_size, 'v'), {}};
  for (std::size_t i = 0; i < original_headers; ++i)
    r.headers.push_back({fmt::format("x-{}", i), std::string(100, 'h')});
  r.headers.push_back({"runnel-attempt", "1"});
  r.headers.push_back({"runnel-error", std::string(error_size, 'e')});
  r.headers.push_back({"runnel-error-kind", "limit-exceeded"});
  r.headers.push_back({"runnel-origin", "in/0/7"});
  r.headers.push_back({"runnel-function", "echo"});
  return r;
}

TEST(FitDeadLetter, ACopyThatFitsIsLeftAlone) {
  Record r = DeadLetter(500, 2);
  const Record before = r;
  const Truncation t = FitDeadLetter(r, 5, RecordWireSize(r));
  EXPECT_TRUE(t.fits);
  EXPECT_FALSE(t.value_cut);
  EXPECT_EQ(t.headers_dropped, 0u);
  EXPECT_EQ(r.value, before.value);
  EXPECT_EQ(r.headers, before.headers);
}

TEST(FitDeadLetter, TheValueIsCutToExactlyTheLimitAndTheOriginalSizeIsInAHeader) {
  Record r = DeadLetter(1'500'000, 2);
  const Truncation t = FitDeadLetter(r, 5, kDefaultMessageMaxBytes);
  EXPECT_TRUE(t.fits);
  EXPECT_TRUE(t.value_cut);
  EXPECT_EQ(t.value_size, 1'500'000u);
  EXPECT_EQ(RecordWireSize(r), kDefaultMessageMaxBytes) << "as much of the value as fits";
  EXPECT_EQ(r.value, std::string(r.value.size(), 'v'));
  EXPECT_EQ(HeaderValue(r, header::kTruncated), "1500000");
  EXPECT_EQ(HeaderValue(r, "x-1"), std::string(100, 'h')) << "the original's headers stay";
  EXPECT_EQ(HeaderValue(r, header::kTruncatedHeaders), "(none)");
}

TEST(FitDeadLetter, OriginalHeadersGoWhenTheyAloneAreOverAndRunnelsStay) {
  Record r = DeadLetter(5000, 30);  // 30 headers of about 104 bytes: over a 2000-byte limit alone
  const Truncation t = FitDeadLetter(r, 5, 2000);
  EXPECT_TRUE(t.fits);
  EXPECT_TRUE(t.value_cut);
  EXPECT_EQ(t.headers_dropped, 30u);
  EXPECT_LE(RecordWireSize(r), 2000u);
  EXPECT_EQ(HeaderValue(r, header::kTruncatedHeaders), "30");
  EXPECT_EQ(HeaderValue(r, header::kTruncated), "5000");
  EXPECT_EQ(HeaderValue(r, "runnel-origin"), "in/0/7");
  EXPECT_EQ(HeaderValue(r, "x-0"), "(none)");
}

TEST(FitDeadLetter, AHugeReasonIsShortenedAndSaysSo) {
  Record r = DeadLetter(10, 0, 50'000);
  const Truncation t = FitDeadLetter(r, 5, 4000);
  EXPECT_TRUE(t.fits);
  EXPECT_LE(RecordWireSize(r), 4000u);
  const std::string error = HeaderValue(r, "runnel-error");
  EXPECT_GT(error.size(), 3000u) << "as much of the reason as fits";
  EXPECT_THAT(error, ::testing::EndsWith(" [cut]"));
  EXPECT_EQ(HeaderValue(r, "runnel-function"), "echo");
}

TEST(FitDeadLetter, ALimitBelowRunnelsOwnHeadersCannotBeMet) {
  Record r = DeadLetter(10, 0);
  EXPECT_FALSE(FitDeadLetter(r, 5, 60).fits);
}

}  // namespace
}  // namespace runnel::kafka
