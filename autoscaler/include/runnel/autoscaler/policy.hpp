// The scaling policy: a pure function from what was measured about one function to the number of
// workers it should have, with the reason in words. No clocks, no I/O: the scaling loop measures
// and remembers (DesireWindow), the policy decides, and the unit tests drive it from tables.
//
// The rule, per function:
//   needed = ceil(arrival/s x service time / (concurrency x kTargetUtilization)
//                 + backlog x service time / (concurrency x target_drain))
//   (with no service time measured yet: ceil((backlog + in flight) / concurrency))
//   anything waiting, running or arriving needs at least one worker; `warm` is added on top;
//   then clamped to [min, max]. Never capped by the partition count.
// Scale-up is at once. Scale-in takes the highest desire seen over the stabilization window, so a
// steady load never flaps; a function idle for idle_to_zero goes to max(min, warm) directly.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/kafka/admin.hpp"

namespace runnel::autoscaler {

// Workers are sized so that, at the measured arrival rate, they are this busy at most.
inline constexpr double kTargetUtilization = 0.8;

// Events waiting, from Kafka's offsets and what the dispatcher holds:
//  - per partition, with the dispatcher's consume position known: the records past it (never the
//    ones the log start has already passed: those are lost, not waiting);
//  - without it (a standalone autoscaler): the group's lag (end - committed, or end - log start
//    when nothing is committed or retention dropped records past the committed offset);
//  - plus the events the dispatcher consumed that wait for a worker (`queued`).
struct Backlog {
  std::int64_t waiting = 0;  // events not yet at a worker
  std::int64_t lost = 0;     // records the log start passed before the group processed them
};
Backlog MeasureBacklog(const std::vector<kafka::PartitionOffsets>& partitions,
                       const std::map<std::int32_t, std::int64_t>& positions, std::int64_t queued);

struct Load {
  std::int64_t backlog = 0;    // events waiting (MeasureBacklog)
  std::int64_t in_flight = 0;  // at workers now
  double arrival_per_s = 0;    // smoothed
  double service_s = 0;        // mean service time per event; 0: not measured yet
  int concurrency = 1;         // events one worker runs at once
  bool arriving = false;       // events arrived since the last decision (or one waits for a worker)
};

struct PolicyInput {
  ScalingSpec spec;
  Load load;
  int current = 0;                        // the count decided last time
  std::chrono::milliseconds idle_for{0};  // since anything was waiting, running or arriving
  bool ever_active = false;               // anything ever happened (else idle_for is meaningless)
  int window_max = 0;  // highest desire (Decision::wanted) within the last stabilization window
};

struct Decision {
  int desired = 0;     // the count to run now
  int wanted = 0;      // what the load alone asks for now (clamped), before stabilization
  std::string reason;  // e.g. "backlog 5000 (drain in 1s) needs 13, capped at max 6"
};

Decision Decide(const PolicyInput& in);

// The desires of the last stabilization window, for PolicyInput::window_max.
class DesireWindow {
 public:
  using Clock = std::chrono::steady_clock;
  void Add(Clock::time_point at, int wanted);
  // The highest desire added within `window` before `now` (0 when none); forgets older ones.
  int Max(Clock::time_point now, std::chrono::milliseconds window);
  void Clear() { samples_.clear(); }

 private:
  std::vector<std::pair<Clock::time_point, int>> samples_;
};

}  // namespace runnel::autoscaler
