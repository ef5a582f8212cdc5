// RFC 3339 timestamps and the small JSON text writer.
#include "iot/timestamp.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "iot/json_text.hpp"

namespace runnel::functions::iot {
namespace {

TEST(IotTimestamp, ParsesRfc3339Forms) {
  EXPECT_EQ(ParseRfc3339Ms("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseRfc3339Ms("2000-01-01T00:00:00Z"), kMinReadingTsMs);
  EXPECT_EQ(ParseRfc3339Ms("2023-11-14T22:13:20Z"), 1'700'000'000'000);
  EXPECT_EQ(ParseRfc3339Ms("2023-11-14t22:13:20.5z"), 1'700'000'000'500);
  EXPECT_EQ(ParseRfc3339Ms("2023-11-14 22:13:20.123456789Z"), 1'700'000'000'123);
  EXPECT_EQ(ParseRfc3339Ms("2023-11-15T00:13:20+02:00"), 1'700'000'000'000);
  EXPECT_EQ(ParseRfc3339Ms("2023-11-14T16:43:20-05:30"), 1'700'000'000'000);
  EXPECT_EQ(ParseRfc3339Ms("2024-02-29T00:00:00Z"), 1'709'164'800'000);
  EXPECT_EQ(ParseRfc3339Ms("2016-12-31T23:59:60Z"), ParseRfc3339Ms("2017-01-01T00:00:00Z"));
}

TEST(IotTimestamp, RefusesWhatIsNotRfc3339) {
  for (const char* text : {"", "2023-11-14", "2023-11-14T22:13:20", "2023-11-14T22:13Z",
                           "2023-13-01T00:00:00Z", "2023-02-29T00:00:00Z", "2023-11-31T00:00:00Z",
                           "2023-11-14T24:00:00Z", "2023-11-14T22:13:20.Z", "2023-11-14T22:13:20+0200",
                           "2023-11-14T22:13:20Zjunk", "１９７０-01-01T00:00:00Z", "20231114T221320Z"}) {
    EXPECT_FALSE(ParseRfc3339Ms(text)) << text;
  }
}

TEST(IotTimestamp, FormatRoundTrips) {
  EXPECT_EQ(FormatRfc3339Ms(1'700'000'000'123), "2023-11-14T22:13:20.123Z");
  EXPECT_EQ(FormatRfc3339Ms(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatRfc3339Ms(-1), "1969-12-31T23:59:59.999Z");
  for (std::int64_t ms :
       {kMinReadingTsMs, std::int64_t{1'709'164'800'001}, std::int64_t{4'102'444'800'000}}) {
    EXPECT_EQ(ParseRfc3339Ms(FormatRfc3339Ms(ms)), ms);
  }
}

TEST(IotJsonText, EscapesAndReplacesInvalidUtf8) {
  std::string out;
  json_text::AppendString(out, "a\"b\\c\n\x01\xc3\xa9");
  EXPECT_EQ(out, R"("a\"b\\c\n\u0001é")");
  out.clear();
  json_text::AppendString(out, "cut \xc3");
  EXPECT_EQ(nlohmann::json::parse(out), "cut \xef\xbf\xbd");
  out.clear();
  json_text::AppendNumber(out, 0.1);
  out += ",";
  json_text::AppendNumber(out, std::nan(""));
  out += ",";
  json_text::AppendNumber(out, -2.5e300);
  EXPECT_EQ(nlohmann::json::parse("[" + out + "]"), nlohmann::json::parse("[0.1,null,-2.5e300]"));
}

}  // namespace
}  // namespace runnel::functions::iot
