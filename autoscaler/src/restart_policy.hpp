// How LocalProcessBackend restarts a worker or a standby that ended without being asked to: a
// backoff that doubles with each quick crash, and the crash-loop state after a run of them.
#pragma once

#include <chrono>

namespace runnel::autoscaler {

inline constexpr auto kBackoffMin = std::chrono::milliseconds(200);
inline constexpr auto kBackoffMax = std::chrono::milliseconds(10'000);
// An exit sooner than this after start counts as a crash loop step.
inline constexpr auto kQuickCrash = std::chrono::seconds(5);
inline constexpr int kCrashLoopAfter = 5;

}  // namespace runnel::autoscaler
