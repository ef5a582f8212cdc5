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
// [--capacity N] [--threads N] [--standby], each also as --flag=value. Exactly one of options,
// error and message is set.
struct ParsedWorkerArgs {
  std::optional<WorkerOptions> options;
  bool standby = false;   // --standby: wait for AwaitStart before anything else
  std::string keys_dir;   // --keys: a stack's key directory, read after the standby wait
  std::string join_file;  // --join: a join token (endpoints and keys), read then too
  std::string error;      // a usage error, for stderr
  std::string message;    // what --help or --version prints, for stdout
};
ParsedWorkerArgs ParseWorkerArgs(const std::vector<std::string>& args);

// Completes `options` from --keys DIR (the local CURVE keys of a stack's state dir) or --join
// TOKEN_FILE (the dispatcher of options.function in the join token, and its keys). Throws
// ConfigError with the reason (a key that cannot be read, a token expired or for other functions).
void ApplyCurveFlags(WorkerOptions& options, const std::string& keys_dir, const std::string& join_file);

// A standby worker (--standby) is started ahead of need, with all its flags, by the autoscaler's
// local backend: it has paid for exec and the dynamic loader, and waits, single-threaded and with
// nothing connected, for one byte on `fd` (its stdin, a socket). True when the byte came (`fd` is then
// /dev/null); false when the input ended first (the backend retired it, or died).
// While it waits, the process is named kStandbyProcessName (/proc/<pid>/comm); then its own name again.
bool AwaitStart(int fd);
inline constexpr const char* kStandbyProcessName = "runnel-standby";

// main(): parses argv, sets up logging and the shutdown signals, runs the worker (RunWorker).
// Exit codes as RunWorker, plus 2 for a usage error.
int WorkerMain(int argc, char** argv);

}  // namespace runnel::workers
