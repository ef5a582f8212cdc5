// Tracks the function calls running in a worker so the I/O thread can notice one that overran its
// timeout. A running call cannot be cancelled (a fiber cannot be interrupted, a library call may
// never return), so the only remedy is to report the timeout and end the process.
//
// Thread-safety: every method may be called from any thread (fibers on pool threads call Start and
// Finish; the I/O thread calls FirstOverdue, NextDeadline and Running). The destructor waits for
// nothing.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <optional>
#include <unordered_map>

namespace runnel::workers {

class Watchdog {
 public:
  using Clock = std::chrono::steady_clock;

  struct Overdue {
    std::uint64_t token = 0;
    std::chrono::milliseconds budget{0};
    std::chrono::milliseconds ran{0};
  };

  // `grace` is how long past its budget a call may still finish before it counts as overdue.
  explicit Watchdog(std::chrono::milliseconds grace = std::chrono::milliseconds(100)) : grace_(grace) {}

  // A call for `token` started at `start` with `budget`; a budget of 0 means no timeout.
  void Start(std::uint64_t token, std::chrono::milliseconds budget, Clock::time_point start = Clock::now());
  void Finish(std::uint64_t token);

  // The running call that passed budget + grace the longest ago, if any.
  std::optional<Overdue> FirstOverdue(Clock::time_point now = Clock::now()) const;
  // When the next running call will become overdue; nullopt when none has a budget.
  std::optional<Clock::time_point> NextDeadline() const;
  std::size_t Running() const;

 private:
  struct Entry {
    Clock::time_point start;
    std::chrono::milliseconds budget;
  };
  std::chrono::milliseconds grace_;
  mutable std::mutex mutex_;
  std::unordered_map<std::uint64_t, Entry> running_;
};

}  // namespace runnel::workers
