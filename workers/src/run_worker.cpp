#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

#include "runnel/workers/worker_session.hpp"

namespace runnel::workers {

int RunWorker(WorkerOptions options) {
  // On the heap and deliberately leaked on the _exit path: destroying it would wait for calls that
  // may never return.
  auto session = std::make_unique<WorkerSession>(std::move(options));
  const SessionEnd end = session->Run();
  if (end.exit_code != 0 && !end.reason.empty()) fmt::print(stderr, "runnel worker: {}\n", end.reason);
  if (end.tasks_abandoned) {
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(end.exit_code);
  }
  return end.exit_code;
}

}  // namespace runnel::workers
