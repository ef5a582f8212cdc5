#include "runnel/core/wire.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace runnel::wire {
namespace {

TaskHeader SampleTask() {
  TaskHeader t;
  t.token = 0x0102030405060708ULL;
  t.topic = "image.thumbnail";
  t.partition = 7;
  t.offset = 1'234'567'890'123;
  t.has_key = true;
  t.key = std::string("k\0ey", 4);
  t.attempt = 3;
  t.timeout_ms = 30'000;
  t.headers = {{"runnel-id", "abc"}, {"x-bin", std::string("\xff\0", 2)}};
  return t;
}

TEST(Wire, TaskRoundTrip) {
  EXPECT_EQ(DecodeTask(Encode(SampleTask())), SampleTask());
  TaskHeader keyless;
  EXPECT_EQ(DecodeTask(Encode(keyless)), keyless);
}

TEST(Wire, ResultRoundTrip) {
  ResultHeader r{42, ResultStatus::kError, 1, 1500, "corrupt JPEG: truncated", "application/json", "[]", {}};
  EXPECT_EQ(DecodeResult(Encode(r)), r);
  ResultHeader ok{7, ResultStatus::kOk, 0, 10, "", "text/plain", "", {}};
  ok.emitted.push_back({"alerts", true, "dev-1", {{"content-type", "application/json"}}, "{\"temp\":95}"});
  ok.emitted.push_back({"audit", false, "", {}, std::string("\0bin", 4)});
  EXPECT_EQ(DecodeResult(Encode(ok)), ok);
  const std::string full = Encode(ok);
  for (std::size_t n = 0; n < full.size(); ++n)
    EXPECT_THROW(DecodeResult(std::string_view(full).substr(0, n)), WireError);
}

TEST(Wire, EveryTruncationIsAnErrorNamingTheField) {
  const std::string full = Encode(SampleTask());
  for (std::size_t n = 0; n < full.size(); ++n) {
    try {
      DecodeTask(std::string_view(full).substr(0, n));
      FAIL() << "decoded a task truncated to " << n << " bytes";
    } catch (const WireError& e) {
      EXPECT_THAT(e.what(), ::testing::HasSubstr("task header"));
    }
  }
  EXPECT_THROW(DecodeTask(full + "x"), WireError);
}

TEST(Wire, WrongKindOrVersionIsRefused) {
  ResultHeader r;
  EXPECT_THROW(DecodeTask(Encode(r)), WireError);
  std::string task = Encode(SampleTask());
  task[1] = 9;
  EXPECT_THAT([&] { DecodeTask(task); },
              ::testing::ThrowsMessage<WireError>(::testing::HasSubstr("protocol version 9")));
}

}  // namespace
}  // namespace runnel::wire
