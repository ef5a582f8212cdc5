// The trace store on its own: the bound, which event goes first, lookups after the ring has wrapped
// many times (the index's deletions), refs to evicted traces, and reused slots starting clean.
#include "runnel/telemetry/trace_store.hpp"

#include <fmt/format.h>
#include <gmock/gmock.h>

#include <algorithm>
#include <deque>
#include <random>
#include <string>

namespace runnel::telemetry {
namespace {

TraceRef Open(TraceStore& store, const std::string& function, const std::string& id) {
  TraceRef ref;
  store.Update([&](TraceStore::Batch& b) { ref = b.Open(function, id); });
  return ref;
}

TEST(TraceStore, KeepsOnlyTheMostRecentEventsAndForgetsTheOldestFirst) {
  TraceStore store(3);
  for (int i = 0; i < 5; ++i) {
    store.Update([&](TraceStore::Batch& b) { b.At(b.Open("f", fmt::format("e{}", i)))->status = "ok"; });
  }
  EXPECT_EQ(store.Size(), 3u);
  EXPECT_TRUE(store.Find("e0").empty());
  EXPECT_TRUE(store.Find("e1").empty());
  for (int i = 2; i < 5; ++i) {
    const auto found = store.Find(fmt::format("e{}", i));
    ASSERT_EQ(found.size(), 1u) << i;
    EXPECT_EQ(found[0].id, fmt::format("e{}", i));
    EXPECT_EQ(found[0].status, "ok");
  }
  Open(store, "f", "e5");
  EXPECT_TRUE(store.Find("e2").empty()) << "the oldest goes first";
  EXPECT_EQ(store.Find("e3").size(), 1u);
}

TEST(TraceStore, OpeningAKnownEventAgainReturnsItsTraceAndEvictsNothing) {
  TraceStore store(2);
  const TraceRef a = Open(store, "f", "a");
  Open(store, "f", "b");
  const TraceRef again = Open(store, "f", "a");
  EXPECT_EQ(again.slot, a.slot);
  EXPECT_EQ(again.index, a.index);
  EXPECT_EQ(again.generation, a.generation);
  EXPECT_EQ(store.Size(), 2u);
  EXPECT_EQ(store.Find("a").size(), 1u);
  EXPECT_EQ(store.Find("b").size(), 1u);
}

TEST(TraceStore, OneEventConsumedByTwoFunctionsHasTwoTracesAndCountsOnceInTheBound) {
  TraceStore store(2);
  store.Update([&](TraceStore::Batch& b) {
    b.At(b.Open("thumb", "x"))->status = "ok";
    b.At(b.Open("index", "x"))->status = "error";
  });
  Open(store, "thumb", "y");
  const auto found = store.Find("x");
  ASSERT_EQ(found.size(), 2u);
  EXPECT_EQ(found[0].function, "thumb");
  EXPECT_EQ(found[0].status, "ok");
  EXPECT_EQ(found[1].function, "index");
  EXPECT_EQ(found[1].status, "error");
  EXPECT_EQ(store.Size(), 2u);
}

TEST(TraceStore, ARefToAnEvictedTraceFindsNothingEvenWhenItsSlotHoldsANewerEvent) {
  TraceStore store(2);
  const TraceRef old = Open(store, "f", "old");
  Open(store, "f", "b");
  const TraceRef newer = Open(store, "f", "c");  // reuses old's slot
  EXPECT_EQ(newer.slot, old.slot);
  store.Update([&](TraceStore::Batch& b) {
    EXPECT_EQ(b.At(old), nullptr);
    ASSERT_NE(b.At(newer), nullptr);
    EXPECT_EQ(b.At(newer)->id, "c");
  });
}

TEST(TraceStore, AReusedSlotStartsAsAFreshTrace) {
  TraceStore store(1);
  store.Update([&](TraceStore::Batch& b) {
    EventTrace& t = *b.At(b.Open("f", "first"));
    t.key = "k";
    t.status = "dead-letter";
    t.error = "boom";
    t.dead_letter_topic = "f.dlq";
    t.deliveries = 3;
    t.attempts.emplace_back().worker = "w-1";
  });
  Open(store, "f", "second");
  const auto found = store.Find("second");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].ToJson().dump(), [&] {
    EventTrace expected;
    expected.id = "second";
    expected.function = "f";
    return expected.ToJson().dump();
  }());
  EXPECT_TRUE(store.Find("first").empty());
}

// Many wraps of a small ring with ids that repeat, checked against a plain model: every id the
// model still holds is found (so deletions from the index never cut a probe run short) and no
// other id is.
TEST(TraceStore, LookupsStayRightAfterTheRingWrapsManyTimes) {
  constexpr std::size_t kBound = 50;
  TraceStore store(kBound);
  std::deque<std::string> model;  // oldest first
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> pick(0, 400);
  for (int step = 0; step < 20'000; ++step) {
    const std::string id = fmt::format("ev-{}", pick(rng));
    Open(store, "f", id);
    if (std::find(model.begin(), model.end(), id) == model.end()) {
      model.push_back(id);
      if (model.size() > kBound) model.pop_front();
    }
    if (step % 997 == 0 || step == 19'999) {
      ASSERT_EQ(store.Size(), model.size()) << "step " << step;
      for (int n = 0; n <= 400; ++n) {
        const std::string probe = fmt::format("ev-{}", n);
        const bool held = std::find(model.begin(), model.end(), probe) != model.end();
        const auto found = store.Find(probe);
        ASSERT_EQ(found.size(), held ? 1u : 0u) << probe << " at step " << step;
        if (held) {
          EXPECT_EQ(found[0].id, probe);
        }
      }
    }
  }
}

// A bound beyond the index's first size: the index grows while the ring fills, then the ring wraps.
TEST(TraceStore, ALargeBoundKeepsEveryRecentEventThroughTheIndexGrowing) {
  constexpr int kBound = 5'000;
  TraceStore store(kBound);
  store.Update([&](TraceStore::Batch& b) {
    for (int i = 0; i < 12'000; ++i) b.At(b.Open("f", fmt::format("id-{}", i)))->offset = i;
  });
  EXPECT_EQ(store.Size(), static_cast<std::size_t>(kBound));
  for (int i = 0; i < 12'000; ++i) {
    const auto found = store.Find(fmt::format("id-{}", i));
    if (i < 12'000 - kBound) {
      ASSERT_TRUE(found.empty()) << i;
    } else {
      ASSERT_EQ(found.size(), 1u) << i;
      EXPECT_EQ(found[0].offset, i);
    }
  }
}

}  // namespace
}  // namespace runnel::telemetry
