#include "runnel/testing/child_process.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

namespace runnel::testing {
namespace {

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace

std::string RunnelBin() {
  const char* bin = std::getenv("RUNNEL_BIN");
  return bin != nullptr ? bin : RUNNEL_DEFAULT_BIN;
}

std::string RunnelWorkerBin() {
  return (std::filesystem::path(RunnelBin()).parent_path() / "runnel-worker").string();
}

std::filesystem::path SourceDir() { return RUNNEL_SOURCE_DIR; }

std::filesystem::path TempDir(const std::string& tag) {
  static std::atomic<int> counter{0};
  auto dir =
      std::filesystem::temp_directory_path() / fmt::format("runnel-{}-{}-{}", tag, ::getpid(), counter++);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

ChildProcess::ChildProcess(std::vector<std::string> argv, const std::map<std::string, std::string>& env,
                           const std::string& stdin_text) {
  const auto dir = TempDir("child");
  out_ = dir / "stdout";
  err_ = dir / "stderr";
  const auto in_path = dir / "stdin";
  std::ofstream(in_path) << stdin_text;
  const pid_t parent = ::getpid();
  pid_ = ::fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    // A test binary killed by ctest's timeout runs no destructors: the child goes with it. (The
    // signal follows the forking thread: tests fork from the thread that also waits for the child.)
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(127);
    // Undo the test's blocked signals so the child reacts to SIGTERM/SIGINT normally.
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
    const int in = ::open(in_path.c_str(), O_RDONLY);
    const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(in, 0);
    ::dup2(out, 1);
    ::dup2(err, 2);
    for (const auto& [k, v] : env) ::setenv(k.c_str(), v.c_str(), 1);
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s failed\n", args[0]);
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
}

ChildProcess::~ChildProcess() {
  if (!exit_code_) {
    ::kill(-pid_, SIGKILL);
    Wait(std::chrono::seconds(10));
  }
  std::filesystem::remove_all(out_.parent_path());
}

std::string ChildProcess::Stdout() const { return ReadFile(out_); }
std::string ChildProcess::Stderr() const { return ReadFile(err_); }

bool ChildProcess::WaitForOutput(const std::string& text, std::chrono::milliseconds deadline) {
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (Stdout().find(text) != std::string::npos) return true;
    if (Wait(std::chrono::milliseconds(0)) || std::chrono::steady_clock::now() >= until) {
      return Stdout().find(text) != std::string::npos;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

std::optional<int> ChildProcess::Wait(std::chrono::milliseconds deadline) {
  if (exit_code_) return exit_code_;
  const auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    int status = 0;
    const pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      ::kill(-pid_, SIGKILL);  // anything the child left in its group
      return exit_code_;
    }
    if (std::chrono::steady_clock::now() >= until) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

void ChildProcess::Signal(int sig) {
  if (!exit_code_) ::kill(pid_, sig);
}

RunResult RunCommand(std::vector<std::string> argv, std::chrono::milliseconds deadline,
                     const std::string& stdin_text) {
  ChildProcess child(std::move(argv), {}, stdin_text);
  RunResult result;
  auto code = child.Wait(deadline);
  result.out = child.Stdout();
  result.err = child.Stderr();
  if (!code) {
    ADD_FAILURE() << "command did not finish within " << deadline.count() << " ms; stderr: " << result.err;
    return result;
  }
  result.exit_code = *code;
  return result;
}

}  // namespace runnel::testing
