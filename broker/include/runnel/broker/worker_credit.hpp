// How many events the dispatcher may hand one connected worker at once (its credit). The credit is
// enough for every call it runs at once to take a full batch (concurrency x the function's batch
// size, the base), plus a prefetch for fast functions: as many more events as its concurrent calls
// get through in kPrefetchWindow at the service time measured so far, never more than the capacity
// it announced. Prefetch lets the dispatcher and the worker exchange events in large batches (fewer
// messages and wake-ups per event) while an event held idle at one worker waits at most about
// kPrefetchWindow for its turn; a slow function is never prefetched, and a batching one is never
// held below its base (a long batch call would otherwise starve the next batch of events).
#pragma once

#include <algorithm>
#include <chrono>
#include <cstddef>
#include <cstdint>

namespace runnel::broker {

struct WorkerCredit {
  static constexpr std::chrono::microseconds kPrefetchWindow{10'000};

  int capacity = 0;        // announced in HELLO or CAPACITY: the most it may ever hold
  int concurrency = 1;     // calls it runs at once
  int batch = 1;           // events one call takes at most (the function's batch size)
  int credit = 1;          // what it may hold now: Base() <= credit <= capacity
  double service_us = -1;  // moving average of its calls' durations; < 0 until the first result
  bool draining = false;   // a draining worker is handed nothing more

  // What it may be handed now while it holds `held` events.
  int Free(std::size_t held) const { return draining ? 0 : credit - static_cast<int>(held); }
  // The credit before any prefetch: a full batch for each concurrent call, within the capacity.
  int Base() const { return std::min(capacity, concurrency * batch); }

  // What the worker announced (HELLO, then CAPACITY when it raises it) and what the function runs
  // (config `concurrency` and batch size). Prefetch already earned stays, within the new bounds.
  void Configure(int announced_capacity, int function_concurrency, int batch_size) {
    capacity = std::max(1, announced_capacity);
    concurrency = std::max(1, std::min(capacity, function_concurrency));
    batch = std::max(1, batch_size);
    credit = std::clamp(credit, Base(), capacity);
  }

  // Folds one event's duration into the average and sets the credit from it. The events of a batch
  // call each report their share of the call (its duration divided by its events).
  void Measured(std::uint32_t duration_us) {
    const double d = static_cast<double>(duration_us);
    service_us = service_us < 0 ? d : service_us + (d - service_us) / 8;
    const double window = static_cast<double>(kPrefetchWindow.count());
    const double fits = static_cast<double>(concurrency) * window / std::max(service_us, 1.0);
    credit = static_cast<int>(std::clamp(fits, static_cast<double>(Base()), static_cast<double>(capacity)));
  }
};

}  // namespace runnel::broker
