// Functions as external programs (exec:COMMAND): the event payload on stdin, headers as RUNNEL_*
// environment variables, the result on stdout, failure by exit status with stderr as the reason.
// functions/README.md documents the contract for program authors.
//
// RunProcess is the blocking core (posix_spawn, non-blocking pipes, poll, a deadline that kills
// the child's whole process group). ExecFunction runs it on a helper thread per call and waits on
// a boost::fibers::future, so the worker's fiber thread keeps running other events meanwhile.
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/functions/function.hpp"

namespace runnel::functions {

struct ProcessRequest {
  std::vector<std::string> argv;  // argv[0]: a path, or a name searched in PATH
  std::string working_dir;        // empty: inherit
  std::vector<std::string> env;   // NAME=VALUE entries set on top of this process's environment
  std::string stdin_data;         // written to the child's stdin, then closed
  std::string stdin_file;         // if set, the child's stdin is this file instead
  std::optional<std::chrono::steady_clock::time_point> deadline;  // past it the group is killed
  std::size_t max_output = 16 << 20;                              // stdout past this kills the group
  std::size_t max_stderr = 4096;                                  // the last bytes of stderr kept
};

struct ProcessOutcome {
  bool started = false;
  std::string start_error;  // why posix_spawn failed
  int exit_code = -1;       // when it exited normally
  int signal = 0;           // when a signal ended it
  bool timed_out = false;
  bool output_exceeded = false;
  std::string out;
  std::string err_tail;  // the last max_stderr bytes of stderr
};

// Runs a child to completion, blocking the calling thread (not a fiber's: see ExecFunction). The
// child runs in a process group of its own with default signal dispositions and an empty signal
// mask; when it ends (or is killed) anything left in its group is killed too.
ProcessOutcome RunProcess(const ProcessRequest& request);

// Exit status meaning "bad input": the event is dead-lettered at once rather than retried.
inline constexpr int kExecBadInputExit = 2;

// Builds an exec function. params: max_output (bytes, default 16 MiB, 1..1 GiB), content_type
// (default: application/json when stdout is JSON, else application/octet-stream); every param
// reaches the program as RUNNEL_PARAMS. Throws FunctionError(kBadConfig) for bad params.
std::unique_ptr<Function> MakeExecFunction(std::vector<std::string> argv, std::string working_dir,
                                           const nlohmann::json& params, std::string function_name = {});

}  // namespace runnel::functions
