// RunProcess: one child, its pipes polled with a deadline, its process group killed on timeout,
// on too much output, and after it ends (so no grandchild outlives the call).
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <thread>

#include "runnel/core/error.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/functions/exec_function.hpp"

extern char** environ;

namespace runnel::functions {
namespace {

using Clock = std::chrono::steady_clock;

void SetNonBlocking(int fd) { ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK); }

// This process's environment with `extra` (NAME=VALUE) set on top.
std::vector<std::string> ChildEnvironment(const std::vector<std::string>& extra) {
  std::map<std::string, std::string> env;
  for (char** e = environ; e != nullptr && *e != nullptr; ++e) {
    const std::string entry(*e);
    env[entry.substr(0, entry.find('='))] = entry;
  }
  for (const auto& entry : extra) env[entry.substr(0, entry.find('='))] = entry;
  std::vector<std::string> out;
  out.reserve(env.size());
  for (auto& [name, entry] : env) out.push_back(std::move(entry));
  return out;
}

// Writing to a pipe whose reader is gone raises SIGPIPE in the writing thread: block it here and
// take a pending one back, so the worker never dies of a child that ignored its stdin.
class SigpipeBlocked {
 public:
  SigpipeBlocked() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  SigpipeBlocked(const SigpipeBlocked&) = delete;
  SigpipeBlocked& operator=(const SigpipeBlocked&) = delete;
  ~SigpipeBlocked() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    const timespec zero{0, 0};
    while (::sigtimedwait(&set, nullptr, &zero) == SIGPIPE) {
    }
    ::pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }

 private:
  sigset_t old_;
};

// SIGKILL to the child's whole process group (everything it started).
void KillGroup(pid_t pid, bool& killed) {
  ::kill(-pid, SIGKILL);
  killed = true;
}

// Starts the child on the pipes' far ends (stdin from `stdin_file` when given), in its own process
// group; its pid, or -1 with `outcome.start_error` set.
pid_t Spawn(const ProcessRequest& request, const Pipe& in, const Pipe& out, const Pipe& err,
            ProcessOutcome& outcome) {
  posix_spawn_file_actions_t actions;
  ::posix_spawn_file_actions_init(&actions);
  if (!request.stdin_file.empty()) {
    ::posix_spawn_file_actions_addopen(&actions, 0, request.stdin_file.c_str(), O_RDONLY, 0);
  } else {
    ::posix_spawn_file_actions_adddup2(&actions, in.read.Get(), 0);
  }
  ::posix_spawn_file_actions_adddup2(&actions, out.write.Get(), 1);
  ::posix_spawn_file_actions_adddup2(&actions, err.write.Get(), 2);
  if (!request.working_dir.empty())
    ::posix_spawn_file_actions_addchdir_np(&actions, request.working_dir.c_str());

  posix_spawnattr_t attr;
  ::posix_spawnattr_init(&attr);
  // Its own process group (so a timeout kills everything it started), default signal handling and
  // an empty mask: the worker blocks SIGINT/SIGTERM for its signalfd, and masks are inherited.
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  ::posix_spawnattr_setpgroup(&attr, 0);
  ::posix_spawnattr_setsigmask(&attr, &none);
  ::posix_spawnattr_setsigdefault(&attr, &all);
  ::posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

  std::vector<char*> argv;
  for (const auto& a : request.argv) argv.push_back(const_cast<char*>(a.c_str()));
  argv.push_back(nullptr);
  auto env_strings = ChildEnvironment(request.env);
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);

  pid_t pid = -1;
  const int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), envp.data());
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  if (rc != 0) {
    outcome.start_error = std::string(request.argv[0]) + ": " + std::strerror(rc);
    return -1;
  }
  return pid;
}

// Feeds the child's stdin and reads its stdout and stderr until both are closed, the deadline
// passes, or stdout outgrows `max_output` (then its group is killed). True when it killed the group.
bool Exchange(pid_t pid, const ProcessRequest& request, Clock::time_point deadline, Pipe& in, Pipe& out,
              Pipe& err, ProcessOutcome& outcome) {
  bool killed = false;
  std::size_t written = 0;
  if (in.write.Get() >= 0 && request.stdin_data.empty()) in.write.Reset();
  char buffer[65536];
  while (out.read.Get() >= 0 || err.read.Get() >= 0) {
    const auto now = Clock::now();
    if (now >= deadline) {
      outcome.timed_out = true;
      KillGroup(pid, killed);
      break;
    }
    pollfd fds[3];
    nfds_t n = 0;
    int out_i = -1, err_i = -1, in_i = -1;
    if (out.read.Get() >= 0) {
      out_i = static_cast<int>(n);
      fds[n++] = {out.read.Get(), POLLIN, 0};
    }
    if (err.read.Get() >= 0) {
      err_i = static_cast<int>(n);
      fds[n++] = {err.read.Get(), POLLIN, 0};
    }
    if (in.write.Get() >= 0) {
      in_i = static_cast<int>(n);
      fds[n++] = {in.write.Get(), POLLOUT, 0};
    }
    const auto left = deadline == Clock::time_point::max()
                          ? std::chrono::milliseconds(1000)
                          : std::chrono::ceil<std::chrono::milliseconds>(deadline - now);
    const int ready = ::poll(fds, n, static_cast<int>(std::min<std::int64_t>(left.count(), 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0) continue;
    if (in_i >= 0 && fds[in_i].revents != 0) {
      const ssize_t w =
          ::write(in.write.Get(), request.stdin_data.data() + written, request.stdin_data.size() - written);
      if (w > 0) written += static_cast<std::size_t>(w);
      if ((w < 0 && errno != EAGAIN && errno != EINTR) || written == request.stdin_data.size())
        in.write.Reset();
    }
    if (out_i >= 0 && fds[out_i].revents != 0) {
      const ssize_t r = ::read(out.read.Get(), buffer, sizeof buffer);
      if (r > 0) {
        outcome.out.append(buffer, static_cast<std::size_t>(r));
        if (outcome.out.size() > request.max_output) {
          outcome.output_exceeded = true;
          outcome.out.resize(request.max_output);
          KillGroup(pid, killed);
          break;
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        out.read.Reset();
      }
    }
    if (err_i >= 0 && fds[err_i].revents != 0) {
      const ssize_t r = ::read(err.read.Get(), buffer, sizeof buffer);
      if (r > 0) {
        outcome.err_tail.append(buffer, static_cast<std::size_t>(r));
        if (outcome.err_tail.size() > 2 * request.max_stderr) {
          outcome.err_tail.erase(0, outcome.err_tail.size() - request.max_stderr);
        }
      } else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        err.read.Reset();
      }
    }
  }
  return killed;
}

// Waits for the child to end (killing its group at the deadline), kills what it left in its group,
// reaps it and records how it ended.
void Reap(pid_t pid, const ProcessRequest& request, Clock::time_point deadline, bool killed,
          ProcessOutcome& outcome) {
  // Wait for the child to end without reaping it (WNOWAIT), so its pid still names its group when
  // the group is killed; then reap it.
  auto pause = std::chrono::microseconds(200);
  for (;;) {
    siginfo_t info{};
    const int w = ::waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT | (killed ? 0 : WNOHANG));
    if (w == 0 && info.si_pid == pid) break;
    if (w != 0 && errno != EINTR) break;
    if (!killed && Clock::now() >= deadline) {
      outcome.timed_out = true;
      KillGroup(pid, killed);
      continue;
    }
    std::this_thread::sleep_for(pause);
    pause = std::min<std::chrono::microseconds>(pause * 2, std::chrono::milliseconds(10));
  }
  ::kill(-pid, SIGKILL);
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(status)) outcome.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) outcome.signal = WTERMSIG(status);
  if (outcome.err_tail.size() > request.max_stderr) {
    outcome.err_tail.erase(0, outcome.err_tail.size() - request.max_stderr);
  }
}

}  // namespace

ProcessOutcome RunProcess(const ProcessRequest& request) {
  ProcessOutcome outcome;
  if (request.argv.empty()) {
    outcome.start_error = "no program given";
    return outcome;
  }
  SigpipeBlocked sigpipe;
  Pipe in, out, err;
  try {
    in = MakePipe(0, "the child's stdin pipe");
    out = MakePipe(0, "the child's stdout pipe");
    err = MakePipe(0, "the child's stderr pipe");
  } catch (const Error& e) {
    outcome.start_error = e.what();
    return outcome;
  }
  const pid_t pid = Spawn(request, in, out, err, outcome);
  if (pid < 0) return outcome;
  outcome.started = true;
  in.read.Reset();
  out.write.Reset();
  err.write.Reset();
  if (!request.stdin_file.empty()) in.write.Reset();
  if (in.write.Get() >= 0) SetNonBlocking(in.write.Get());
  SetNonBlocking(out.read.Get());
  SetNonBlocking(err.read.Get());

  const auto deadline = request.deadline.value_or(Clock::time_point::max());
  const bool killed = Exchange(pid, request, deadline, in, out, err, outcome);
  in.write.Reset();
  out.read.Reset();
  err.read.Reset();
  Reap(pid, request, deadline, killed, outcome);
  return outcome;
}

}  // namespace runnel::functions
