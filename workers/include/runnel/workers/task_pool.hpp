// Runs function calls on Boost.Fiber fibers so one worker thread holds many events at once (a call
// that waits, e.g. on I/O or boost::this_fiber::sleep_for, lets the others run).
//
// The I/O thread submits tasks (TrySubmit never blocks) and collects outcomes (TakeCompleted);
// fibers never touch ZeroMQ. `threads` OS threads share `fibers` fibers (Boost's shared_work
// scheduler when threads > 1); each fiber pops tasks from a buffered_channel, runs the function
// (HandleBatch with up to options.batch.size tasks when that is above 1, else Handle), turns
// every outcome, exception included, into a result and appends it to the outbox. NotifyFd() becomes
// readable once per TakeCompleted, when the outbox holds a result and either no task is waiting for
// a fiber or kNotifyBatch results are ready: while fibers still have queued work, results gather
// into one batch (one wake-up of the I/O thread, one RESULTS message) instead of one each. Boost's
// shared_work keeps one ready queue per process, so at most one pool with threads > 1 may live in a
// process at a time (a worker has one).
//
// Thread-safety: TrySubmit, TakeCompleted, NotifyFd and ClearNotify may be called from any thread,
// but are meant for the one I/O thread. The destructor closes the queue and waits for every fiber,
// so it returns only after the calls in progress have returned: a process that must not wait for a
// stuck call ends with _exit instead of destroying its pool.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/core/output_target.hpp"
#include "runnel/core/wire.hpp"
#include "runnel/functions/function.hpp"
#include "runnel/workers/watchdog.hpp"

namespace runnel::workers {

struct PoolOptions {
  std::string function_name;  // for the output store's paths and logs
  nlohmann::json params = nlohmann::json::object();
  std::filesystem::path output_dir;  // root of the OutputStore; empty = ./outputs
  // WELCOME's outputs: each successful call's files are PUT there (functions::UploadOutputs) before
  // its result is reported; an upload that fails fails the event (transient). Absent: they stay.
  std::optional<OutputTarget> outputs;
  std::size_t threads = 1;
  std::size_t fibers = 16;  // concurrent calls at most
  std::size_t queued = 64;  // tasks waiting for a fiber that TrySubmit accepts (the worker's credit)
  // Events per call (HandleBatch above 1) and the longest wait to fill a call: the session sets
  // functions::EffectiveBatch; the default is one event per call.
  BatchSpec batch;
};

// One event ready to run. `budget` is its timeout (0 = none), counted from the call's start.
struct PendingTask {
  std::uint64_t token = 0;
  std::chrono::milliseconds budget{0};
  functions::Event event;
};

// A finished call: the result header and the output frame, ready for a RESULTS message.
struct CompletedTask {
  wire::ResultHeader header;
  std::string output;
};

// The result of a call that failed with `code` (also used by the I/O thread for tasks it refuses).
CompletedTask ErrorResult(std::uint64_t token, functions::Errc code, std::string message,
                          std::uint32_t duration_us = 0);

class TaskPool {
 public:
  static constexpr std::size_t kNotifyBatch = 64;

  // Starts the threads and fibers. `function` and `watchdog` must outlive the pool.
  TaskPool(functions::Function& function, PoolOptions options, Watchdog& watchdog);
  ~TaskPool();
  TaskPool(const TaskPool&) = delete;
  TaskPool& operator=(const TaskPool&) = delete;

  // Queues a task; false (and `task` untouched) when the queue is full: try again later.
  bool TrySubmit(PendingTask& task);
  // Submitted tasks no fiber has taken yet.
  std::size_t Waiting() const;
  // Every result finished since the last call, in completion order.
  std::vector<CompletedTask> TakeCompleted();
  // An eventfd that becomes readable when results are ready (see above); ClearNotify resets it.
  // Call ClearNotify before TakeCompleted, never between TakeCompleted and the next wait, or a
  // result added meanwhile would not wake the waiter. Results that gather while queued tasks remain
  // are also taken by any TakeCompleted, so a waiter that wakes on a timer anyway gets them then.
  int NotifyFd() const;
  void ClearNotify();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::workers
