#include <gtest/gtest.h>

#include <random>
#include <set>

#include "runnel/broker/dispatch_queue.hpp"
#include "runnel/broker/offset_tracker.hpp"

namespace runnel::broker {
namespace {

TEST(OffsetTracker, CommitsTheLowestOffsetNotDone) {
  OffsetTracker t;
  for (std::int64_t o = 10; o < 15; ++o) ASSERT_TRUE(t.Add(0, o));
  EXPECT_EQ(t.CommitPoint(0), 10);
  t.Done(0, 12);
  t.Done(0, 11);
  EXPECT_EQ(t.CommitPoint(0), 10);  // 10 still running
  t.Done(0, 10);
  EXPECT_EQ(t.CommitPoint(0), 13);
  EXPECT_EQ(t.Pending(), 2u);
  EXPECT_EQ(t.TakeChangedCommits(), (std::map<std::int32_t, std::int64_t>{{0, 13}}));
  EXPECT_TRUE(t.TakeChangedCommits().empty());
}

TEST(OffsetTracker, GapsCountAsDoneAndRedeliveriesAreIgnored) {
  OffsetTracker t;
  t.Add(1, 0);
  t.Add(1, 5);  // 1..4 vanished (retention)
  t.Done(1, 0);
  EXPECT_EQ(t.CommitPoint(1), 5);
  EXPECT_FALSE(t.Add(1, 5));
  EXPECT_FALSE(t.Add(1, 3));
  t.Done(1, 5);
  EXPECT_EQ(t.CommitPoint(1), 6);
  t.Done(1, 5);  // a late duplicate outcome changes nothing
  EXPECT_EQ(t.Pending(), 0u);
  EXPECT_EQ(t.CommitPoint(7), std::nullopt);
}

TEST(OffsetTracker, RandomCompletionOrderNeverCommitsPastAnUnfinishedOffset) {
  OffsetTracker t;
  std::vector<std::int64_t> offsets(2000);
  for (std::int64_t i = 0; i < 2000; ++i) {
    offsets[static_cast<std::size_t>(i)] = i;
    t.Add(3, i);
  }
  std::shuffle(offsets.begin(), offsets.end(), std::mt19937(7));
  std::set<std::int64_t> open(offsets.begin(), offsets.end());
  for (auto o : offsets) {
    t.Done(3, o);
    open.erase(o);
    const std::int64_t expected = open.empty() ? 2000 : *open.begin();
    ASSERT_EQ(t.CommitPoint(3), expected);
  }
}

TEST(DispatchQueue, SameKeyRunsOneAtATimeInOrder) {
  DispatchQueue q;
  q.Push(1, "a");
  q.Push(2, "a");
  q.Push(3, "b");
  q.Push(4, std::nullopt);
  q.Push(5, "a");
  EXPECT_EQ(q.Pop(), 1u);
  EXPECT_EQ(q.Pop(), 3u);
  EXPECT_EQ(q.Pop(), 4u);
  EXPECT_EQ(q.Pop(), std::nullopt);  // 2 and 5 wait behind 1
  EXPECT_EQ(q.Waiting(), 2u);
  q.Release("a");
  EXPECT_EQ(q.Pop(), 2u);
  EXPECT_EQ(q.Pop(), std::nullopt);
  q.Release("a");
  EXPECT_EQ(q.Pop(), 5u);
  q.Release("a");
  q.Release("b");
  q.Push(6, "a");  // the key is free again
  EXPECT_EQ(q.Pop(), 6u);
}

TEST(DispatchQueue, RequeuedRetryRunsBeforeLaterEventsOfItsKey) {
  DispatchQueue q;
  q.Push(1, "k");
  q.Push(2, "k");
  ASSERT_EQ(q.Pop(), 1u);
  q.Requeue(1);  // failed, retry due: the key stays taken
  EXPECT_EQ(q.Pop(), 1u);
  EXPECT_EQ(q.Pop(), std::nullopt);
  q.Release("k");
  EXPECT_EQ(q.Pop(), 2u);
}

}  // namespace
}  // namespace runnel::broker
