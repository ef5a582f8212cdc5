#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <map>
#include <random>
#include <set>

#include "runnel/broker/dispatch_queue.hpp"
#include "runnel/broker/group_lease.hpp"
#include "runnel/broker/offset_tracker.hpp"
#include "runnel/broker/worker_credit.hpp"
#include "runnel/core/error.hpp"

namespace runnel::broker {
namespace {

WorkerCredit Joined(int capacity, int concurrency, int batch = 1) {
  WorkerCredit w;
  w.Configure(capacity, concurrency, batch);
  return w;
}

TEST(WorkerCredit, StartsAtConcurrencyAndGrowsToCapacityForFastCalls) {
  WorkerCredit w = Joined(256, 8);
  EXPECT_EQ(w.Free(0), 8) << "no prefetch before any result";
  w.Measured(2);  // 2 us calls: 8 calls at once get through far more than 256 in 10 ms
  EXPECT_EQ(w.credit, 256);
  const std::size_t held = 100;  // events it holds
  EXPECT_EQ(w.Free(held), 156);
  w.draining = true;
  EXPECT_EQ(w.Free(held), 0);
}

TEST(WorkerCredit, SlowCallsGetNoPrefetchAndMediumOnesSome) {
  WorkerCredit slow = Joined(256, 8);
  slow.Measured(500'000);  // 500 ms calls
  EXPECT_EQ(slow.credit, 8);
  WorkerCredit medium = Joined(256, 4);
  medium.Measured(1'000);  // 1 ms calls: 4 at once get through 40 in 10 ms
  EXPECT_EQ(medium.credit, 40);
  WorkerCredit small = Joined(4, 8);  // announced capacity below the function's concurrency
  small.Measured(1);
  EXPECT_EQ(small.concurrency, 4);
  EXPECT_EQ(small.credit, 4);
}

TEST(WorkerCredit, FollowsAMovingAverageWhenCallsSlowDown) {
  WorkerCredit w = Joined(256, 8);
  w.Measured(2);
  ASSERT_EQ(w.credit, 256);
  int previous = w.credit;
  for (int i = 0; i < 100; ++i) {
    w.Measured(100'000);  // the function now takes 100 ms a call
    EXPECT_LE(w.credit, previous) << "credit only shrinks while calls stay slow";
    previous = w.credit;
  }
  EXPECT_EQ(w.credit, 8);
}

TEST(WorkerCredit, ABatchFunctionStartsWithAFullBatchPerCall) {
  WorkerCredit w = Joined(1000, 8, 50);
  EXPECT_EQ(w.Base(), 400);
  EXPECT_EQ(w.Free(0), 400) << "8 calls at once, each taking a batch of 50";
  WorkerCredit capped = Joined(256, 8, 50);
  EXPECT_EQ(capped.Free(0), 256) << "never beyond the capacity the worker announced";
}

TEST(WorkerCredit, LongBatchCallsNeverShrinkTheCreditBelowAFullBatchPerCall) {
  WorkerCredit w = Joined(1000, 8, 50);
  for (int i = 0; i < 50; ++i) w.Measured(400'000 / 50);  // 400 ms per batch call: 8 ms an event
  EXPECT_EQ(w.credit, 400);
  WorkerCredit fast = Joined(1000, 8, 50);
  fast.Measured(1'000 / 50);  // 1 ms per call of 50 events: 8 x 50 x 10 calls fit in 10 ms
  EXPECT_EQ(fast.credit, 1000) << "prefetch counts the events a call takes, up to the capacity";
}

TEST(WorkerCredit, ARaisedCapacityKeepsEarnedPrefetchWithinTheNewBounds) {
  WorkerCredit w = Joined(256, 8, 100);  // HELLO before the worker knew its batch
  EXPECT_EQ(w.credit, 256);
  w.Configure(800, 8, 100);  // CAPACITY after WELCOME
  EXPECT_EQ(w.capacity, 800);
  EXPECT_EQ(w.credit, 800);
  WorkerCredit fast = Joined(256, 8);
  fast.Measured(2);
  ASSERT_EQ(fast.credit, 256);
  fast.Configure(512, 8, 1);
  EXPECT_EQ(fast.credit, 256) << "raising the capacity does not grant prefetch not yet earned";
  fast.Measured(2);
  EXPECT_EQ(fast.credit, 512);
}

// An assigned partition is recommitted at its start while idle (the lease goes on); its first record
// starts it at that record's offset, as before, even below the assigned one (an offset reset).
TEST(OffsetTracker, AnAssignedPartitionIsRecommittedUntilItsFirstRecordStartsIt) {
  OffsetTracker t;
  t.Assign(0, 40);
  t.Assign(1, 7);
  EXPECT_TRUE(t.TakeChangedCommits().empty()) << "already committed there";
  EXPECT_EQ(t.TakeChangedCommits(true), (std::map<std::int32_t, std::int64_t>{{0, 40}, {1, 7}}));
  ASSERT_TRUE(t.Add(0, 3)) << "a record below the assigned offset (the broker reset it) is not a redelivery";
  t.Done(0, 3);
  EXPECT_EQ(t.CommitPoint(0), 4);
  EXPECT_EQ(t.TakeChangedCommits(), (std::map<std::int32_t, std::int64_t>{{0, 4}}));
  t.Assign(0, 99);
  EXPECT_EQ(t.CommitPoint(0), 4) << "Assign does not move a partition already known";
}

kafka::CommittedOffset Committed(std::int32_t partition, const std::string& metadata) {
  return {{"echo", partition, 10}, metadata};
}

TEST(GroupLease, RoundTripsAndOtherMetadataIsNotALease) {
  const GroupLease lease{"01JSTACKA", "host-a", 4242, 1'796'000'000'000, false};
  EXPECT_EQ(DecodeLease(EncodeLease(lease)), lease);
  for (const char* other :
       {"", "7,9-12", "{}", R"({"runnel_stack":""})", R"({"runnel_stack":"a","at_ms":"x"})", "{not json"}) {
    EXPECT_FALSE(DecodeLease(other)) << other;
  }
}

TEST(GroupLease, OnlyAnotherStacksFreshLeaseRefusesTheStart) {
  const std::int64_t now = 1'796'000'100'000;
  const auto lease = [&](const std::string& stack, std::int64_t age_ms, bool stopped) {
    return EncodeLease({stack, "host-b", 77, now - age_ms, stopped});
  };
  // Ours (a restart of this stack), another's that stopped with a drain, another's gone quiet for
  // longer than kLeaseFresh, another client's metadata: all let it start.
  EXPECT_NO_THROW(RefuseOtherLiveStack(
      {Committed(0, lease("mine", 10, false)), Committed(1, lease("b", 10, true)),
       Committed(2, lease("c", kLeaseFresh.count() + 1, false)), Committed(3, "7,9-12"), Committed(4, "")},
      "mine", false, "echo", "runnel.echo", now));
  try {
    RefuseOtherLiveStack(
        {Committed(0, lease("mine", 5, false)), Committed(1, lease("01JOTHER", 1200, false))}, "mine", false,
        "echo", "runnel.echo", now);
    ADD_FAILURE() << "another stack's fresh lease was not refused";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("function echo: another stack (id 01JOTHER, pid 77 on host-b) "
                                               "committed consumer group runnel.echo 1.2 s ago"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("two would run every event twice"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("start again in 14 s"));
  }
}

TEST(GroupLease, LeaseHoldersGroupPartitionsByStackWithItsNewestLease) {
  const auto lease = [](const std::string& stack, std::int64_t at_ms, bool shared) {
    return EncodeLease({stack, "host-" + stack, 7, at_ms, false, shared});
  };
  const auto holders = LeaseHolders({{3, lease("b", 1'000, true)},
                                     {0, lease("a", 2'000, true)},
                                     {1, "7,9-12"},  // another client's commit: no lease
                                     {2, lease("b", 5'000, true)},
                                     {4, ""}});
  ASSERT_EQ(holders.size(), 2u);
  EXPECT_EQ(holders[0].lease.stack, "a");
  EXPECT_EQ(holders[0].partitions, (std::vector<std::int32_t>{0}));
  EXPECT_EQ(holders[1].lease.stack, "b");
  EXPECT_EQ(holders[1].lease.at_ms, 5'000);  // the newest of its leases
  EXPECT_EQ(holders[1].partitions, (std::vector<std::int32_t>{2, 3}));
  EXPECT_TRUE(LeaseHolders({}).empty());
}

TEST(GroupLease, SharedStacksMayShareTheGroupButNotWithOneThatDoesNot) {
  const std::int64_t now = 1'796'000'100'000;
  const auto lease = [&](const std::string& stack, bool shared) {
    return EncodeLease({stack, "host-b", 77, now - 500, false, shared});
  };
  EXPECT_TRUE(DecodeLease(lease("b", true))->shared);
  EXPECT_NO_THROW(RefuseOtherLiveStack({Committed(0, lease("b", true)), Committed(1, lease("c", true))},
                                       "mine",
                                       /*own_shared=*/true, "echo", "runnel.echo", now));
  const auto refusal = [&](const std::string& other, bool other_shared, bool own_shared) {
    try {
      RefuseOtherLiveStack({Committed(0, lease(other, other_shared))}, "mine", own_shared, "echo",
                           "runnel.echo", now);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(started)");
  };
  EXPECT_THAT(refusal("b", false, true), ::testing::HasSubstr("and it does not share the function: it takes "
                                                              "every partition"));
  EXPECT_THAT(refusal("b", true, false), ::testing::HasSubstr("Set scaling.shared: true for the function in "
                                                              "every stack's runnel.yaml"));
  EXPECT_EQ(refusal("mine", false, true), "(started)");
}

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

TEST(OffsetTracker, AForgottenPartitionIsNotPendingNotCommittedAndStartsAfresh) {
  OffsetTracker t;
  t.Add(0, 10);
  t.Add(2, 40);
  t.Add(2, 41);
  t.Done(2, 40);
  (void)t.TakeChangedCommits();
  t.Forget(2);  // revoked: 41 is its new owner's
  EXPECT_EQ(t.Pending(), 1u);
  EXPECT_EQ(t.CommitPoint(2), std::nullopt);
  t.Done(2, 41);  // a late outcome of the revoked partition
  EXPECT_EQ(t.Pending(), 1u);
  EXPECT_EQ(t.TakeChangedCommits(/*all=*/true), (std::map<std::int32_t, std::int64_t>{{0, 10}}));
  EXPECT_TRUE(t.Add(2, 30));  // given back later, from an older commit
  EXPECT_EQ(t.CommitPoint(2), 30);
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
