// core's supervision pieces: ComponentHealth keeps every component and the first failure;
// failpoints armed through RUNNEL_FAILPOINTS (set here before the first use, which reads it).
#include <gtest/gtest.h>

#include <cstdlib>

#include "runnel/core/component_health.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/failpoints.hpp"

namespace runnel {
namespace {

TEST(ComponentHealth, KeepsEveryComponentInOrderAndTheFirstFailureWithItsReason) {
  ComponentHealth health;
  health.Add("dispatcher echo");
  health.Add("autoscaler");
  EXPECT_FALSE(health.FirstFailure().has_value());
  health.Reporter("autoscaler")("boom");
  health.Fail("dispatcher echo", "later");
  health.Fail("autoscaler", "a second reason");
  const auto first = health.FirstFailure();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->name, "autoscaler");
  EXPECT_EQ(first->reason, "boom");
  const auto all = health.Snapshot();
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(all[0].name, "dispatcher echo");
  EXPECT_FALSE(all[0].up);
  EXPECT_EQ(all[0].reason, "later");
  EXPECT_EQ(all[1].reason, "boom") << "the first reason stays";
}

TEST(ComponentHealth, AFailureOfAnUnknownComponentIsKept) {
  ComponentHealth health;
  health.Fail("scheduler", "tick");
  ASSERT_TRUE(health.FirstFailure().has_value());
  EXPECT_EQ(health.FirstFailure()->name, "scheduler");
  EXPECT_EQ(health.Snapshot().size(), 1u);
}

// The table is read once, at the first use: every test sets the same value.
constexpr const char* kFailpoints = "unit.later=throw:3,unit.now=throw,unit.switch=on";

TEST(Failpoints, ThrowFromTheNthHitOnAndOnlyWhereArmed) {
  ::setenv("RUNNEL_FAILPOINTS", kFailpoints, 1);
  EXPECT_NO_THROW(failpoint::Validate());
  EXPECT_NO_THROW(failpoint::Hit("unit.later"));
  EXPECT_NO_THROW(failpoint::Hit("unit.later"));
  try {
    failpoint::Hit("unit.later");
    ADD_FAILURE() << "the third hit did not throw";
  } catch (const Error& e) {
    EXPECT_STREQ(e.what(), "failpoint unit.later");
  }
  EXPECT_THROW(failpoint::Hit("unit.later"), Error);
  EXPECT_THROW(failpoint::Hit("unit.now"), Error);
  EXPECT_NO_THROW(failpoint::Hit("unit.other"));
  EXPECT_NO_THROW(failpoint::Hit("unit"));
}

TEST(Failpoints, AnOnEntryIsASwitchThatNeverThrows) {
  ::setenv("RUNNEL_FAILPOINTS", kFailpoints, 1);
  EXPECT_NO_THROW(failpoint::Validate());
  EXPECT_TRUE(failpoint::Armed("unit.switch"));
  EXPECT_TRUE(failpoint::Armed("unit.switch"));  // a switch, not a count of hits
  EXPECT_NO_THROW(failpoint::Hit("unit.switch"));
  // A throwing entry is not a switch, and neither is a name that is not listed.
  EXPECT_FALSE(failpoint::Armed("unit.now"));
  EXPECT_FALSE(failpoint::Armed("unit.other"));
  EXPECT_FALSE(failpoint::Armed("unit"));
}

}  // namespace
}  // namespace runnel
