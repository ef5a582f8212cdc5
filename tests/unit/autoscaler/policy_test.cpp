// The scaling policy as a pure function: table-driven cases, then sequences through the
// stabilization window as the scaling loop feeds it.
#include "runnel/autoscaler/policy.hpp"

#include <gmock/gmock.h>

#include "runnel/core/duration_text.hpp"

namespace runnel::autoscaler {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

kafka::PartitionOffsets Part(std::int32_t p, std::int64_t log_start, std::int64_t end,
                             std::optional<std::int64_t> committed) {
  kafka::PartitionOffsets o;
  o.partition = p;
  o.log_start = log_start;
  o.end = end;
  o.committed = committed;
  return o;
}

struct BacklogCase {
  const char* name;
  std::vector<kafka::PartitionOffsets> partitions;
  std::map<std::int32_t, std::int64_t> positions;
  std::int64_t queued;
  std::int64_t waiting;
  std::int64_t lost;
};

TEST(MeasureBacklog, Table) {
  const std::vector<BacklogCase> cases = {
      {"empty topic", {Part(0, 0, 0, std::nullopt)}, {}, 0, 0, 0},
      {"no committed offset: counted from the log start", {Part(0, 10, 250, std::nullopt)}, {}, 0, 240, 0},
      {"committed", {Part(0, 0, 100, 60), Part(1, 0, 50, 50)}, {}, 0, 40, 0},
      {"retention passed the committed offset: lost, not waiting", {Part(0, 500, 800, 100)}, {}, 0, 300, 400},
      {"dispatcher position: only what it has not consumed, plus its queue",
       {Part(0, 0, 100, 60), Part(1, 0, 80, 10)},
       {{0, 90}, {1, 80}},
       25,
       10 + 25,
       0},
      {"dispatcher position behind the log start", {Part(0, 500, 800, 100)}, {{0, 100}}, 0, 300, 400},
      {"position past a stale end offset is never negative", {Part(0, 0, 100, 100)}, {{0, 130}}, 3, 3, 0},
      {"partition without a position falls back to the lag",
       {Part(0, 0, 10, 4), Part(1, 0, 10, std::nullopt)},
       {{0, 10}},
       0,
       10,
       0},
  };
  for (const auto& c : cases) {
    const Backlog b = MeasureBacklog(c.partitions, c.positions, c.queued);
    EXPECT_EQ(b.waiting, c.waiting) << c.name;
    EXPECT_EQ(b.lost, c.lost) << c.name;
  }
}

ScalingSpec Spec(int min, int max, int warm = 0) {
  ScalingSpec s;
  s.min = min;
  s.max = max;
  s.warm = warm;
  s.target_drain = seconds(10);
  s.idle_to_zero = seconds(30);
  s.stabilization = seconds(30);
  return s;
}

Load Busy(std::int64_t backlog, std::int64_t in_flight, double arrival, double service_s, int concurrency) {
  return Load{backlog, in_flight, arrival, service_s, concurrency, arrival > 0};
}

struct DecideCase {
  const char* name;
  ScalingSpec spec;
  Load load;
  int current;
  milliseconds idle_for;
  bool ever_active;
  int window_max;
  int desired;
  const char* reason_has;
};

TEST(Decide, Table) {
  const std::vector<DecideCase> cases = {
      {"never active, min 0: nothing runs", Spec(0, 4), {}, 0, seconds(0), false, 0, 0, "keep 0"},
      {"never active, min 2", Spec(2, 4), {}, 0, seconds(0), false, 0, 2, "scale up to 2"},
      {"warm workers kept when idle", Spec(0, 4, 1), {}, 0, seconds(100), true, 0, 1, "+1 warm"},
      {"one event, nothing measured: one worker", Spec(0, 4), Busy(1, 0, 0, 0, 8), 0, seconds(0), true, 0, 1,
       "scale up to 1"},
      {"unmeasured backlog sized by concurrency", Spec(0, 10), Busy(40, 0, 0, 0, 8), 0, seconds(0), true, 0,
       5, "no service time"},
      // 100/s x 20 ms / (1 x 0.8) = 2.5 -> 3
      {"steady arrival", Spec(0, 10), Busy(0, 2, 100, 0.020, 1), 0, seconds(0), true, 0, 3,
       "arrival 100.0/s"},
      // 5000 x 20 ms / (8 x 1 s) = 12.5 -> capped at 6; not capped by partitions (there are none here)
      {"burst capped at max",
       [] {
         auto s = Spec(0, 6);
         s.target_drain = seconds(1);
         return s;
       }(),
       Busy(5000, 0, 0, 0.020, 8), 1, seconds(0), true, 0, 6, "clamped to [0, 6]"},
      // 5000 x 20 ms / (8 x 10 s) = 1.25 -> 2
      {"backlog drained within target_drain", Spec(0, 6), Busy(5000, 0, 0, 0.020, 8), 0, seconds(0), true, 0,
       2, "backlog 5000 in 10s"},
      {"more workers than events cannot help", Spec(0, 10), Busy(3, 0, 0, 100.0, 1), 0, seconds(0), true, 0,
       3, ""},
      {"scale up at once, ignoring the window", Spec(0, 10), Busy(0, 8, 400, 0.020, 1), 2, seconds(0), true,
       2, 10, "scale up to 10"},
      {"lower desire held by the window", Spec(0, 10), Busy(0, 1, 10, 0.020, 1), 6, seconds(0), true, 6, 6,
       "hold 6"},
      {"scale in to the window's highest desire", Spec(0, 10), Busy(0, 1, 10, 0.020, 1), 6, seconds(0), true,
       3, 3, "scale in to 3"},
      {"idle but within idle_to_zero: one worker stays",
       Spec(0, 10),
       {},
       4,
       seconds(5),
       true,
       0,
       1,
       "idle for 5s of idle_to_zero 30s"},
      {"idle past idle_to_zero: to zero despite the window",
       Spec(0, 10),
       {},
       4,
       seconds(30),
       true,
       4,
       0,
       "idle for 30s"},
      {"idle past idle_to_zero with min 1", Spec(1, 10), {}, 4, seconds(31), true, 4, 1, "scale to 1"},
      {"fixed count (workers: 3)", Spec(3, 3), Busy(10'000, 0, 1000, 0.5, 1), 3, seconds(0), true, 3, 3,
       "keep 3"},
      {"workers: 0 disables the function", Spec(0, 0), Busy(10, 0, 0, 0, 1), 0, seconds(0), true, 0, 0,
       "keep 0"},
      {"a decaying arrival average alone does not keep a worker", Spec(0, 10),
       Load{0, 0, 0.001, 0.020, 1, false}, 1, seconds(31), true, 1, 0, "idle for 31s"},
      {"warm on top of the load", Spec(0, 10, 2), Busy(0, 2, 100, 0.020, 1), 0, seconds(0), true, 0, 5,
       "+2 warm"},
      // issue 18: a 14 µs service time read "x 0.0 ms".
      {"a sub-millisecond service time in µs", Spec(0, 10), Busy(0, 2, 100, 0.000014, 1), 0, seconds(0), true,
       0, 1, "100.0/s x 14 µs / 1 per worker"},
      {"a service time in ms", Spec(0, 10), Busy(0, 2, 100, 0.020, 1), 0, seconds(0), true, 0, 3,
       "x 20.0 ms"},
  };
  for (const auto& c : cases) {
    PolicyInput in;
    in.spec = c.spec;
    in.load = c.load;
    in.current = c.current;
    in.idle_for = c.idle_for;
    in.ever_active = c.ever_active;
    in.window_max = c.window_max;
    const Decision d = Decide(in);
    EXPECT_EQ(d.desired, c.desired) << c.name << ": " << d.reason;
    EXPECT_THAT(d.reason, ::testing::HasSubstr(c.reason_has)) << c.name;
  }
}

// The loop's use of the policy: desire is recorded every tick; scale-in waits for the window.
struct Sim {
  explicit Sim(ScalingSpec s) : spec(s) {}
  ScalingSpec spec;
  DesireWindow window;
  int current = 0;
  DesireWindow::Clock::time_point t0 = DesireWindow::Clock::now();
  int changes = 0;
  int Step(milliseconds at, const Load& load, milliseconds idle_for) {
    const auto now = t0 + at;
    PolicyInput in{spec, load, current, idle_for, true, window.Max(now, spec.stabilization)};
    const Decision d = Decide(in);
    window.Add(now, d.wanted);
    if (d.desired != current) ++changes;
    current = d.desired;
    return current;
  }
};

TEST(Decide, NoFlappingUnderANoisySteadyLoad) {
  Sim sim(Spec(0, 20));
  // 100/s +-15% x 20 ms / 0.8 = 2.1 .. 2.9 -> 3 workers, whatever the noise.
  const double noise[] = {1.0, 0.85, 1.15, 0.9, 1.1, 0.95, 1.05, 0.86, 1.14};
  for (int i = 0; i < 600; ++i) {  // one minute at 100 ms ticks
    sim.Step(milliseconds(100 * i), Busy(0, 2, 100 * noise[i % 9], 0.020, 1), milliseconds(0));
  }
  EXPECT_EQ(sim.current, 3);
  EXPECT_EQ(sim.changes, 1);
}

TEST(Decide, ScaleInOnlyAfterTheStabilizationWindow) {
  Sim sim(Spec(0, 20));
  sim.spec.stabilization = seconds(30);
  EXPECT_EQ(sim.Step(seconds(0), Busy(0, 8, 400, 0.020, 1), milliseconds(0)), 10);
  // The load drops to a quarter: desire 3, but 10 stays until 30 s after the last desire of 10.
  for (int s = 1; s < 30; ++s)
    EXPECT_EQ(sim.Step(seconds(s), Busy(0, 2, 100, 0.020, 1), milliseconds(0)), 10) << s;
  EXPECT_EQ(sim.Step(seconds(31), Busy(0, 2, 100, 0.020, 1), milliseconds(0)), 3);
  // A new peak is followed at once.
  EXPECT_EQ(sim.Step(seconds(32), Busy(0, 8, 400, 0.020, 1), milliseconds(0)), 10);
}

TEST(Decide, ABurstRisesToMaxDrainsAndReturnsToZero) {
  Sim sim(Spec(0, 6));
  sim.spec.target_drain = seconds(1);
  sim.spec.idle_to_zero = seconds(2);
  EXPECT_EQ(sim.Step(milliseconds(0), Busy(5000, 0, 0, 0, 8), milliseconds(0)),
            6);  // unmeasured: by concurrency
  EXPECT_EQ(sim.Step(milliseconds(100), Busy(4000, 48, 5000, 0.020, 8), milliseconds(0)), 6);
  EXPECT_EQ(sim.Step(milliseconds(3000), Load{0, 0, 0, 0.020, 8, false}, milliseconds(500)), 6);
  EXPECT_EQ(sim.Step(milliseconds(4500), Load{0, 0, 0, 0.020, 8, false}, milliseconds(2000)), 0);
}

TEST(DesireWindow, ForgetsWhatIsOlderThanTheWindow) {
  DesireWindow w;
  const auto t = DesireWindow::Clock::now();
  w.Add(t, 5);
  w.Add(t + seconds(10), 2);
  EXPECT_EQ(w.Max(t + seconds(20), seconds(30)), 5);
  EXPECT_EQ(w.Max(t + seconds(31), seconds(30)), 2);
  EXPECT_EQ(w.Max(t + seconds(50), seconds(30)), 0);
}

// How `runnel status` and the scaling explanation print a service time (issue 18).
TEST(MillisText, PicksAUnitThatShowsTheValue) {
  const std::vector<std::pair<double, std::string>> cases = {
      {0.014, "14 µs"},  {0.0042, "4.2 µs"},   {0.9994, "999 µs"}, {0.9996, "1.0 ms"}, {1.0, "1.0 ms"},
      {20.0, "20.0 ms"}, {999.94, "999.9 ms"}, {1500, "1.50 s"},   {0, "0 ms"},        {-3, "0 ms"}};
  for (const auto& [ms, text] : cases) EXPECT_EQ(MillisText(ms), text) << ms;
}

}  // namespace
}  // namespace runnel::autoscaler
