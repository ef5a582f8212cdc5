// How many events one call of a function gets: up to `size`, waiting at most `window` for them to
// arrive (Lambda's Kafka trigger does the same, 100 / 500 ms by default). One type for every place
// it lives: runnel.yaml's `batch: {size, window}` (StackConfig), a function's own default
// (functions::Function::Batch), the WELCOME a worker gets and the worker's task pool. A worker
// that holds fewer than `size` events waits out the window.
#pragma once

#include <chrono>
#include <cstddef>

namespace runnel {

struct BatchSpec {
  std::size_t size = 1;  // 1: one event per call (no batching)
  std::chrono::milliseconds window{0};
};

}  // namespace runnel
