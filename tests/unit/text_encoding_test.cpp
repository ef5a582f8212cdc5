// What turns bytes into JSON text: IsPrintableUtf8 (simdjson's validation), Base64Encode/Decode
// (Abseil's) and core's one JSON string escaper, AppendJsonString, which must write exactly the
// bytes nlohmann's dump() writes (the meta frame's hand-written path is compared with nlohmann's).
#include <gmock/gmock.h>

#include <nlohmann/json.hpp>
#include <string>

#include "runnel/core/json.hpp"
#include "runnel/core/outcome.hpp"

namespace runnel {
namespace {

std::string Escaped(std::string_view text) {
  std::string out = "prefix:";
  AppendJsonString(out, text);
  return out.substr(7);
}

TEST(IsPrintableUtf8, RefusesOverlongFormsSurrogatesAndPastTheLastCodePoint) {
  for (const std::string& bad : {
           std::string("\xC0\xAF"),          // overlong '/'
           std::string("\xE0\x80\xAF"),      // overlong '/' in three bytes
           std::string("\xF0\x80\x80\xAF"),  // ... in four
           std::string("a\xED\xA0\x80z"),    // U+D800, a UTF-16 surrogate
           std::string("\xED\xBF\xBF"),      // U+DFFF
           std::string("\xF4\x90\x80\x80"),  // U+110000, past U+10FFFF
           std::string("\xC3"),              // cut off
           std::string("\x80"),              // a lone continuation byte
           std::string("ok\0no", 5),         // NUL: valid UTF-8, not printable
       }) {
    EXPECT_FALSE(IsPrintableUtf8(bad)) << nlohmann::json::binary({bad.begin(), bad.end()}).dump();
  }
  for (const std::string& good :
       {std::string(), std::string("plain ascii\n\t"), std::string("caf\xC3\xA9"),
        std::string("\xE6\x97\xA5\xE6\x9C\xAC"), std::string("\xED\x9F\xBF"),  // U+D7FF
        std::string("\xF0\x9F\x98\x80"), std::string("\xF4\x8F\xBF\xBF")}) {   // U+10FFFF
    EXPECT_TRUE(IsPrintableUtf8(good)) << good;
  }
}

TEST(Base64, RoundTripsEveryLengthAndByteAndRefusesWhatItWouldNotWrite) {
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");  // RFC 4648's vectors
  EXPECT_EQ(Base64Encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(Base64Encode("f"), "Zg==");
  std::string all;
  for (int b = 0; b < 256; ++b) all += static_cast<char>(b);
  for (std::size_t n = 0; n <= all.size(); n += 1 + n / 8) {
    const std::string bytes = all.substr(all.size() - n);
    const std::string text = Base64Encode(bytes);
    EXPECT_EQ(text.size() % 4, 0u);
    EXPECT_EQ(Base64Decode(text), bytes) << n;
  }
  // Unpadded, URL-safe, whitespace and non-canonical trailing bits ("YR==" is not what "a" gives).
  for (const char* bad : {"YQ", "YQ=", "-_8=", "YQ ==", "YR==", "YWJ=", "Zm9v\nYmFy"}) {
    EXPECT_FALSE(Base64Decode(bad)) << bad;
  }
}

TEST(AppendJsonString, WritesWhatNlohmannWritesForControlCharactersAndNonAscii) {
  std::string controls;
  for (int c = 0; c < 0x20; ++c) controls += static_cast<char>(c);
  controls += "\x7f\"\\/";
  EXPECT_EQ(Escaped(controls), JsonText(controls));
  EXPECT_EQ(Escaped("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(Escaped(std::string("\x01\x1f", 2)), R"("\u0001\u001f")");
  for (const std::string& text :
       {std::string("caf\xC3\xA9 \"quoted\""), std::string("\xE6\x97\xA5\n\xF0\x9F\x98\x80"), std::string(),
        std::string("a\\b")}) {
    EXPECT_EQ(Escaped(text), JsonText(text)) << text;
    EXPECT_EQ(nlohmann::json::parse(Escaped(text)).get<std::string>(), text);
  }
  // Invalid UTF-8 (an overlong form, a surrogate, a cut sequence) becomes U+FFFD: still valid JSON.
  for (const std::string& bad :
       {std::string("x\xC0\xAFy"), std::string("\xED\xA0\x80"), std::string("end\xC3")}) {
    const std::string out = Escaped(bad);
    EXPECT_EQ(out, JsonText(bad));
    EXPECT_THAT(out, ::testing::HasSubstr("\xEF\xBF\xBD"));
    EXPECT_TRUE(nlohmann::json::accept(out));
  }
}

}  // namespace
}  // namespace runnel
