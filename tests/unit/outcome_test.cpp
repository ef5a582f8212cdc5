// The results feed's meta frame: the hand-written fast path gives the same bytes as nlohmann.
#include "runnel/core/outcome.hpp"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "runnel/core/json.hpp"

namespace runnel {
namespace {

Outcome Basic() {
  Outcome o;
  o.id = "echo-0-42";
  o.function = "echo";
  o.topic = "echo";
  o.partition = 1;
  o.offset = 42;
  o.content_type = "text/plain";
  o.output = "hello";
  o.duration_us = 17;
  o.worker = "host-123";
  return o;
}

void ExpectSameAsNlohmann(const Outcome& o) {
  const std::string fast = o.MetaJson();
  EXPECT_EQ(fast, o.MetaJsonGeneric());
  EXPECT_EQ(nlohmann::json::parse(fast).dump(), fast);  // nlohmann's canonical form
}

TEST(OutcomeMetaJson, OkOutcome) {
  const Outcome o = Basic();
  EXPECT_EQ(
      o.MetaJson(),
      R"({"attempts":1,"content_type":"text/plain","duration_us":17,"function":"echo","id":"echo-0-42",)"
      R"("offset":42,"partition":1,"status":"ok","topic":"echo","worker":"host-123"})");
  ExpectSameAsNlohmann(o);
}

TEST(OutcomeMetaJson, EveryOptionalField) {
  Outcome o = Basic();
  o.key = "user-42";
  o.reply_to = "caller-7";
  o.trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
  o.job_id = "job.1";
  o.attempts = 3;
  o.offset = 9'000'000'000;
  ExpectSameAsNlohmann(o);
  o.status = OutcomeStatus::kDeadLetter;
  o.error = "gave up";
  o.error_kind = "transient";
  ExpectSameAsNlohmann(o);
  o.status = OutcomeStatus::kError;
  ExpectSameAsNlohmann(o);
}

TEST(OutcomeMetaJson, EscapesLikeNlohmann) {
  Outcome o = Basic();
  o.status = OutcomeStatus::kError;
  o.error =
      std::string("quote \" backslash \\ tab \t nl \n cr \r bs \b ff \f bell \x07 nul ") + '\0' + " del \x7f";
  o.error_kind = "bad-input";
  o.key = std::string("k\x01\"y");
  ExpectSameAsNlohmann(o);
}

TEST(OutcomeMetaJson, BinaryAndNonAsciiFallBackToNlohmann) {
  Outcome o = Basic();
  o.key = std::string("\x00\xff\x10", 3);  // not printable: key_base64
  ExpectSameAsNlohmann(o);
  o.key = "clé";  // printable UTF-8, not ASCII
  ExpectSameAsNlohmann(o);
  o.key.reset();
  o.status = OutcomeStatus::kError;
  o.error = "fichier illisible: é";
  o.error_kind = "bad-input";
  ExpectSameAsNlohmann(o);
  o.status = OutcomeStatus::kOk;
  o.files_json = R"([{"path":"/tmp/a.jpg","bytes":10,"facts":{"w":1}}])";
  ExpectSameAsNlohmann(o);
  EXPECT_NE(o.MetaJson().find(R"("files":[{"bytes":10,)"), std::string::npos);
}

}  // namespace
}  // namespace runnel

namespace runnel {
namespace {

// A function's error message is arbitrary bytes: serialising it must never throw (it would stop
// the dispatcher), and what comes out must be valid JSON.
TEST(OutcomeJson, InvalidUtf8IsReplacedNotThrown) {
  Outcome o;
  o.id = "e1";
  o.function = "f";
  o.status = OutcomeStatus::kError;
  o.error = std::string("bad \xff\xfe bytes \xc3", 13);
  o.error_kind = "bad-input";
  o.key = std::string("k\xff", 2);
  std::string meta;
  ASSERT_NO_THROW(meta = o.MetaJson());
  const auto parsed = nlohmann::json::parse(meta);
  EXPECT_NE(parsed["error"].get<std::string>().find("bytes"), std::string::npos);
  EXPECT_TRUE(parsed.contains("key_base64"));
  EXPECT_NO_THROW(JsonText(o.ToJson(false)));
}

TEST(Base64, DecodeUndoesEncodeAndRefusesWhatIsNotBase64) {
  for (const std::string& bytes : {std::string(), std::string("a"), std::string("ab"), std::string("abc"),
                                   std::string("\x00\xff\x10\x80", 4)}) {
    EXPECT_EQ(Base64Decode(Base64Encode(bytes)), bytes);
  }
  for (const char* bad : {"abc", "ab=c", "a===", "=abc", "ab!c", "YQ==YQ=="})
    EXPECT_FALSE(Base64Decode(bad)) << bad;
}

}  // namespace
}  // namespace runnel
