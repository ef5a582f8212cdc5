// A child process for end-to-end and interop tests: started in its own process group, its stdout
// and stderr captured to files, and killed (the whole group) when the object goes away, so a
// failing test never leaves processes behind.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace runnel::testing {

class ChildProcess {
 public:
  // Starts argv[0] (searched in PATH) with the given extra environment.
  explicit ChildProcess(std::vector<std::string> argv, const std::map<std::string, std::string>& env = {},
                        const std::string& stdin_text = {});
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t Pid() const { return pid_; }
  std::string Stdout() const;
  std::string Stderr() const;
  // Waits until stdout contains `text`; false if the process exited or the deadline passed first.
  bool WaitForOutput(const std::string& text, std::chrono::milliseconds deadline);
  // Waits for exit; returns the exit code (128+signal when killed), or nullopt on timeout.
  std::optional<int> Wait(std::chrono::milliseconds deadline);
  void Signal(int sig);

 private:
  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::filesystem::path out_;
  std::filesystem::path err_;
};

// Runs a command to completion (bounded); returns {exit code, stdout}. Fails the test on timeout.
struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};
RunResult RunCommand(std::vector<std::string> argv,
                     std::chrono::milliseconds deadline = std::chrono::seconds(60),
                     const std::string& stdin_text = {});

// Path of the `runnel` binary under test: $RUNNEL_BIN, else the one this build made.
std::string RunnelBin();
// Path of the slim worker executable under test: `runnel-worker` next to RunnelBin().
std::string RunnelWorkerBin();
// The project's source tree (for scripts and sample data the tests use).
std::filesystem::path SourceDir();
// A fresh, empty directory for this test, removed by the caller or left for inspection on failure.
std::filesystem::path TempDir(const std::string& tag);

}  // namespace runnel::testing
