// Waiting on a condition with a deadline: the only way tests synchronise (never a bare sleep).
#pragma once

#include <chrono>
#include <thread>

namespace runnel::testing {

// Polls `condition` every `interval` until it holds or `deadline` passes; returns its last value.
template <typename Condition>
bool WaitFor(Condition&& condition, std::chrono::milliseconds deadline,
             std::chrono::milliseconds interval = std::chrono::milliseconds(5)) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  while (!condition()) {
    if (std::chrono::steady_clock::now() >= until) return condition();
    std::this_thread::sleep_for(interval);
  }
  return true;
}

}  // namespace runnel::testing
