#include "runnel/core/trace_context.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "runnel/core/envelope.hpp"

namespace runnel {
namespace {

using ::testing::HasSubstr;

constexpr const char* kValid = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

std::string Why(std::string_view value) {
  std::string why;
  EXPECT_FALSE(ParseTraceparent(value, &why).has_value()) << value;
  return why;
}

TEST(TraceContext, ParsesAVersion00Traceparent) {
  const auto tp = ParseTraceparent(kValid);
  ASSERT_TRUE(tp.has_value());
  EXPECT_EQ(tp->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(tp->parent_id, "00f067aa0ba902b7");
  EXPECT_EQ(tp->flags, "01");
  EXPECT_EQ(FormatTraceparent(*tp), kValid);
}

TEST(TraceContext, RejectsEachKindOfInvalidTraceparent) {
  EXPECT_THAT(Why(""), HasSubstr("version"));
  EXPECT_THAT(Why("0g-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), HasSubstr("version"));
  EXPECT_THAT(Why("ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), HasSubstr("ff"));
  EXPECT_THAT(Why("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1"), HasSubstr("fewer than 55"));
  EXPECT_THAT(Why("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x"), HasSubstr("exactly 55"));
  EXPECT_THAT(Why("00_4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"), HasSubstr("separated"));
  EXPECT_THAT(Why("00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01"), HasSubstr("trace-id is not"));
  EXPECT_THAT(Why("00-00000000000000000000000000000000-00f067aa0ba902b7-01"),
              HasSubstr("trace-id is all zeros"));
  EXPECT_THAT(Why("00-4bf92f3577b34da6a3ce929d0e0e4736-00F067AA0BA902B7-01"), HasSubstr("parent-id is not"));
  EXPECT_THAT(Why("00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01"),
              HasSubstr("parent-id is all zeros"));
  EXPECT_THAT(Why("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0x"), HasSubstr("trace-flags"));
}

TEST(TraceContext, ReadsAHigherVersionByItsFirstFourFields) {
  const auto longer =
      ParseTraceparent("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09-what-the-future-holds");
  ASSERT_TRUE(longer.has_value());
  EXPECT_EQ(longer->trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(longer->flags, "09");
  // Written back as version 00, the version this implementation knows.
  EXPECT_EQ(FormatTraceparent(*longer), "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-09");
  EXPECT_TRUE(ParseTraceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").has_value());
  EXPECT_THAT(Why("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01x"), HasSubstr("start with '-'"));
}

TEST(TraceContext, NewSpanIdsAre16HexDigitsAndDiffer) {
  const std::string a = NewSpanId();
  const std::string b = NewSpanId();
  EXPECT_EQ(a.size(), 16u);
  EXPECT_EQ(a.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(a, b);
}

TEST(TraceContext, TheEnvelopeTakesTheTraceFromTraceparentAndKeepsTracestate) {
  const Headers headers = {{"runnel-id", "e1"}, {"traceparent", kValid}, {"tracestate", "congo=t61rcWkgMzE"}};
  const Envelope env = Envelope::Decode(headers);
  EXPECT_EQ(env.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
  EXPECT_EQ(env.span_id, "00f067aa0ba902b7");
  EXPECT_EQ(env.trace_flags, "01");
  EXPECT_EQ(env.extra, (Headers{{"tracestate", "congo=t61rcWkgMzE"}}));
  EXPECT_EQ(InvalidTraceparent(headers), "");
  EXPECT_EQ(Envelope::Decode(env.Encode()), env);
  const Headers encoded = env.Encode();
  EXPECT_NE(std::find(encoded.begin(), encoded.end(), Header{"traceparent", kValid}), encoded.end());
}

TEST(TraceContext, AnInvalidTraceparentIsDroppedNotAnEnvelopeError) {
  const Headers headers = {{"runnel-id", "e1"},
                           {"traceparent", "00-00000000000000000000000000000000-00f067aa0ba902b7-01"}};
  const Envelope env = Envelope::Decode(headers);
  EXPECT_EQ(env.trace_id, "");
  EXPECT_EQ(env.span_id, "");
  EXPECT_TRUE(env.extra.empty());
  EXPECT_THAT(InvalidTraceparent(headers), HasSubstr("all zeros"));
  const Headers twice = {{"traceparent", kValid}, {"traceparent", kValid}};
  EXPECT_EQ(Envelope::Decode(twice).trace_id, "");
  EXPECT_THAT(InvalidTraceparent(twice), HasSubstr("more than once"));
}

TEST(TraceContext, WithTraceContextReplacesTheTraceHeadersWithAChildSpan) {
  const Headers in = {
      {"runnel-trace", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"}, {"traceparent", kValid}, {"tracestate", "x=1"}};
  const Headers out = WithTraceContext(in, "4bf92f3577b34da6a3ce929d0e0e4736", "1111111111111111", "01");
  EXPECT_EQ(out, (Headers{{"tracestate", "x=1"},
                          {"runnel-trace", "4bf92f3577b34da6a3ce929d0e0e4736"},
                          {"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-01"}}));
  EXPECT_EQ(WithTraceContext(in, "4bf92f3577b34da6a3ce929d0e0e4736", "1111111111111111", "").back().value,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-1111111111111111-00");
}

}  // namespace
}  // namespace runnel
