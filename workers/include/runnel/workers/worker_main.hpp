// The body of `runnel-worker`, the slim worker executable: the same process as `runnel worker`
// (same flags, same exit codes) without the rest of the command line, so a worker starts in a few
// milliseconds and maps only what serving a function needs (no librdkafka, no OpenCV unless it
// serves a media function). The autoscaler's local backend starts this binary.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "runnel/workers/worker_session.hpp"

namespace runnel::workers {

// Flags as `runnel worker` takes them: --function F --dispatcher ENDPOINT [--id ID]
// [--capacity N] [--threads N], each also as --flag=value. Exactly one of the fields is set.
struct ParsedWorkerArgs {
  std::optional<WorkerOptions> options;
  std::string error;    // a usage error, for stderr
  std::string message;  // what --help or --version prints, for stdout
};
ParsedWorkerArgs ParseWorkerArgs(const std::vector<std::string>& args);

// main(): parses argv, sets up logging and the shutdown signals, runs the worker (RunWorker).
// Exit codes as RunWorker, plus 2 for a usage error.
int WorkerMain(int argc, char** argv);

}  // namespace runnel::workers
