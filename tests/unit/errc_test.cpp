// The one table of error kinds: names, numbers and which kinds a retry or replay may fix.
#include "runnel/core/errc.hpp"

#include <gtest/gtest.h>

namespace runnel {
namespace {

TEST(Errc, NamesRoundTripThroughTheTable) {
  for (const ErrorKindInfo& info : kErrorKinds) {
    EXPECT_EQ(KindName(info.kind), info.name);
    EXPECT_EQ(ParseErrorKind(info.name), info.kind);
  }
  EXPECT_EQ(ParseErrorKind("no-such-kind"), std::nullopt);
  EXPECT_EQ(ParseErrc("bad-input"), Errc::kBadInput);
  EXPECT_EQ(ParseErrc("worker-lost"), std::nullopt);  // not a kind a function raises
}

TEST(Errc, WireCodesOutOfRangeAreInternal) {
  EXPECT_EQ(ErrcFromCode(1), Errc::kBadInput);
  EXPECT_EQ(ErrcFromCode(7), Errc::kInternal);
  EXPECT_EQ(ErrcFromCode(0), Errc::kInternal);
  EXPECT_EQ(ErrcFromCode(8), Errc::kInternal);
  EXPECT_EQ(ErrcFromCode(6), Errc::kTransient);
  EXPECT_EQ(make_error_code(Errc::kTimeout).message(), "timeout");
}

TEST(Errc, PermanentAndRetriableKinds) {
  EXPECT_FALSE(IsRetriable(Errc::kBadInput));
  EXPECT_FALSE(IsRetriable(Errc::kUnknownFunction));
  EXPECT_TRUE(IsRetriable(Errc::kInternal));
  EXPECT_FALSE(IsRetriable(ErrorKind::kRecursion));
  EXPECT_TRUE(IsRetriable(ErrorKind::kExpired));
  EXPECT_FALSE(InfoOf(ErrorKind::kUndelivered).final);
}

}  // namespace
}  // namespace runnel
