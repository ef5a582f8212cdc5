// One worker's conversation with its dispatcher (docs/protocol.md §3): HELLO/WELCOME, TASKS in,
// RESULTS out, heartbeats both ways, reconnect on silence, the watchdog, EXIT, and the graceful
// drain on SIGTERM/SIGINT.
//
// Run() is the I/O thread: it owns the DEALER socket exclusively and polls it together with the
// task pool's eventfd and a signalfd, waking at least for the next heartbeat or watchdog check.
// Function calls run in a TaskPool created after WELCOME; they never touch ZeroMQ.
//
// Thread-safety: a session is used by one thread. Construct it before any other thread when
// handle_signals is set: the constructor blocks SIGINT and SIGTERM in the calling thread so that
// threads started later inherit the mask and only the signalfd sees them.
// Destructor: closes the socket (ZeroMQ linger bounded at 1 s) and destroys the task pool, which
// waits for calls in progress. When Run() says tasks were abandoned, do not destroy the session:
// end the process with _exit (RunWorker does).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <string>

#include "runnel/security/curve.hpp"

namespace runnel::workers {

struct WorkerOptions {
  std::string function;                 // the function to run, by its registry name
  std::string dispatcher;               // the dispatcher's ROUTER endpoint, e.g. tcp://127.0.0.1:5555
  std::string id;                       // worker id in HELLO; empty = <hostname>-<pid>
  std::optional<std::size_t> capacity;  // credit announced in HELLO; default kDefaultCapacity
  std::size_t threads = 1;              // OS threads running fibers
  bool handle_signals = true;           // drain on SIGTERM/SIGINT (via a signalfd)
  bool apply_memory_limit = true;       // setrlimit(RLIMIT_AS) from WELCOME's memory_mb
  std::chrono::milliseconds watchdog_grace{100};  // how far past its timeout a call may run
  // CURVE to the dispatcher (the stack's server key and this worker's pair); nullopt: plain.
  std::optional<security::ClientKeys> curve;
};

// The default credit is large so that a fast function's events travel in large batches; the
// dispatcher grants prefetch beyond the function's concurrency only to fast functions
// (docs/protocol.md §3.2), so a slow function's worker never holds this many.
inline constexpr std::size_t kDefaultCapacity = 256;
// A worker without --capacity raises its capacity after WELCOME to hold a full batch for each
// concurrent call (fibers x batch size, at most this many) and tells the dispatcher (CAPACITY).
inline constexpr std::size_t kMaxBatchCapacity = 10'000;
// Concurrent calls when WELCOME gives no concurrency (0): the capacity, at most this many.
inline constexpr std::size_t kDefaultFibers = 16;

// How a session ended. exit_code: 0 drained or stopped cleanly, 1 refused (bad function, bad
// params, REJECT), 3 left with calls unfinished (watchdog, EXIT, drain overran).
struct SessionEnd {
  int exit_code = 0;
  bool tasks_abandoned = false;  // a call may still be running: end the process with _exit
  std::string reason;
};

class WorkerSession {
 public:
  explicit WorkerSession(WorkerOptions options);
  ~WorkerSession();
  WorkerSession(const WorkerSession&) = delete;
  WorkerSession& operator=(const WorkerSession&) = delete;

  // Runs until the worker must stop. Before returning it has sent BYE where the protocol asks
  // for one and flushed the socket (bounded by a short linger).
  SessionEnd Run();

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

// The `runnel worker` process body: runs a session, prints why it ended (stderr) when it failed,
// and returns the exit code; when calls were abandoned it ends the process with _exit(3) instead
// of returning. Construct ShutdownSignals (or equivalent) before calling, before any thread starts.
int RunWorker(WorkerOptions options);

}  // namespace runnel::workers
