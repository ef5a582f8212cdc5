// LocalProcessBackend's standby processes (local_backend.hpp, autoscaler/README.md "Standby
// workers"): one per function, exec'd ahead of need and waiting on its stdin socket; a start hands
// it the go byte, and the next tick puts a new one in its place.
#include <fmt/format.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>

#include <filesystem>
#include <thread>

#include "proc_sampling.hpp"
#include "restart_policy.hpp"
#include "runnel/autoscaler/local_backend.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"

namespace runnel::autoscaler {

void LocalProcessBackend::Prepare(const std::string& function, const std::string& dispatcher) {
  if (!standby_enabled_) return;
  Standby& s = standby_[function];
  s.dispatcher = dispatcher;
  s.replace_at = Clock::now();
  TickStandby(function, s, s.replace_at);
}

void LocalProcessBackend::SpawnStandby(const std::string& function, Standby& s) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) != 0) {
    throw Error(fmt::format("cannot start a standby worker for {}: socketpair failed", function), true);
  }
  const std::string id = NextId(function);
  const auto dir = log_dir_ / function;
  std::filesystem::create_directories(dir);
  const std::string log_file = (dir / (id + ".log")).string();
  UniqueFd ours(fds[0]);
  UniqueFd theirs(fds[1]);  // its stdin; closed here once the child has it
  const pid_t pid =
      ForkExec(function, {"--function", function, "--dispatcher", s.dispatcher, "--id", id, "--standby"},
               log_file, theirs.Get());
  s.id = id;
  s.log_file = log_file;
  s.pid = pid;
  s.go = std::move(ours);
  s.started = Clock::now();
  s.next_sample = s.started + std::chrono::milliseconds(200);  // once it has loaded, then every second
  s.info.pid = pid;
  s.info.state = "ready";
  s.info.rss_kb = 0;
}

bool LocalProcessBackend::StartFromStandby(Proc& p) {
  auto it = standby_.find(p.info.function);
  if (it == standby_.end()) return false;
  Standby& s = it->second;
  if (s.pid <= 0 || s.dispatcher != p.dispatcher) {
    ++s.info.exec_starts;
    return false;
  }
  const char go = 'g';
  // A socket, not a pipe: a standby that died gives EPIPE here, without SIGPIPE for the stack.
  const bool sent = ::send(s.go.Get(), &go, 1, MSG_NOSIGNAL) == 1;
  s.go.Reset();
  const pid_t pid = s.pid;
  s.pid = 0;
  s.info.pid = 0;
  s.info.state = "replacing";
  s.replace_at = Clock::now();  // the next Tick starts a new one, off this start's path
  if (!sent) {
    // It died unnoticed since the last Tick: reap it now and start by exec instead.
    ::kill(-pid, SIGKILL);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ++s.info.ended;
    ++s.info.exec_starts;
    s.info.last_exit = WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                         : fmt::format("signal {}", WTERMSIG(status));
    log::kAutoscaler->warn("standby worker {} (pid {}) for {} had ended ({}); starting by fork+exec", s.id,
                           pid, p.info.function, s.info.last_exit);
    return false;
  }
  p.info.id = s.id;
  p.info.log_file = s.log_file;
  p.info.pid = pid;
  p.info.from_standby = true;
  p.info.state = WorkerState::kRunning;
  p.started = Clock::now();
  p.next_sample = p.started;
  ++s.info.used;
  ++ended_[p.info.function].workers_started;
  return true;
}

void LocalProcessBackend::TickStandby(const std::string& function, Standby& s, Clock::time_point now) {
  if (s.pid > 0) {
    int status = 0;
    if (::waitpid(s.pid, &status, WNOHANG) != s.pid) {
      if (now >= s.next_sample) {
        s.info.rss_kb = ProcMemoryKb(s.pid).first;
        s.next_sample = now + kSampleInterval;
      }
      return;
    }
    ::kill(-s.pid, SIGKILL);  // anything it left in its group
    s.go.Reset();
    ++s.info.ended;
    s.info.last_exit = WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                         : fmt::format("signal {}", WTERMSIG(status));
    s.quick_ends = now - s.started < kQuickCrash ? s.quick_ends + 1 : 0;
    const auto backoff =
        std::min<std::chrono::milliseconds>(kBackoffMax, kBackoffMin * (1 << std::min(s.quick_ends, 6)));
    s.replace_at = now + backoff;
    log::kAutoscaler->warn(
        "standby worker {} (pid {}) for {} ended unused ({}); workers of {} start by fork+exec until it "
        "is "
        "replaced in {} ms (log {})",
        s.id, s.pid, function, s.info.last_exit, function, backoff.count(), s.log_file);
    s.pid = 0;
    s.info.pid = 0;
    s.info.rss_kb = 0;
    s.info.state = "replacing";
    return;
  }
  if (now < s.replace_at) return;
  try {
    SpawnStandby(function, s);
  } catch (const Error& e) {
    s.replace_at = now + kBackoffMax;
    log::kAutoscaler->error("function {}: cannot start a standby worker: {}", function, e.what());
  }
}

void LocalProcessBackend::RetireStandby(Standby& s) {
  if (s.pid <= 0) return;
  s.go.Reset();             // it reads the end of its stdin and exits 0
  ::kill(-s.pid, SIGTERM);  // in case it is still loading
  int status = 0;
  const auto until = Clock::now() + std::chrono::seconds(2);
  while (::waitpid(s.pid, &status, WNOHANG) == 0 && Clock::now() < until) {
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  ::kill(-s.pid, SIGKILL);
  ::waitpid(s.pid, &status, WNOHANG);
  std::error_code ignored;
  if (std::filesystem::is_empty(s.log_file, ignored)) std::filesystem::remove(s.log_file, ignored);
  s.pid = 0;
  s.info.pid = 0;
  s.info.state = "off";
}

std::optional<StandbyInfo> LocalProcessBackend::StandbyOf(const std::string& function) const {
  if (!standby_enabled_) return std::nullopt;
  auto it = standby_.find(function);
  if (it == standby_.end()) return std::nullopt;
  return it->second.info;
}

}  // namespace runnel::autoscaler
