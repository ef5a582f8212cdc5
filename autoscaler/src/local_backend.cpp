#include "runnel/autoscaler/local_backend.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <thread>

#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"

namespace runnel::autoscaler {
namespace {

constexpr auto kBackoffMin = std::chrono::milliseconds(200);
constexpr auto kBackoffMax = std::chrono::milliseconds(10'000);
constexpr auto kQuickCrash = std::chrono::seconds(5);  // an exit sooner than this after start counts as a crash loop step
constexpr int kCrashLoopAfter = 5;
constexpr auto kSampleInterval = std::chrono::seconds(1);  // /proc reads per running worker

double Seconds(const timeval& tv) { return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6; }

// CPU seconds (utime + stime) of a process from /proc/<pid>/stat; -1 when it cannot be read.
double ProcCpuSeconds(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/stat", pid));
  std::string line;
  if (!std::getline(in, line)) return -1;
  // The command name (field 2) may hold spaces and parentheses: fields are counted after the last ')'.
  const auto close = line.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i == 14) utime = std::stoull(field);
    if (i == 15) stime = std::stoull(field);
  }
  const long ticks = ::sysconf(_SC_CLK_TCK);
  return static_cast<double>(utime + stime) / static_cast<double>(ticks > 0 ? ticks : 100);
}

// VmRSS and VmHWM (peak) of a process in KiB from /proc/<pid>/status; zeros when it cannot be read.
std::pair<std::int64_t, std::int64_t> ProcMemoryKb(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::int64_t rss = 0, hwm = 0;
  for (std::string line; std::getline(in, line);) {
    if (line.starts_with("VmRSS:")) rss = std::atoll(line.c_str() + 6);
    if (line.starts_with("VmHWM:")) hwm = std::atoll(line.c_str() + 6);
  }
  return {rss, hwm};
}

}  // namespace

std::string_view WorkerStateName(WorkerState s) {
  switch (s) {
    case WorkerState::kStarting: return "starting";
    case WorkerState::kRunning: return "running";
    case WorkerState::kStopping: return "stopping";
    case WorkerState::kBackoff: return "backoff";
    case WorkerState::kCrashLoop: return "crash-loop";
  }
  return "?";
}

std::vector<std::string> WorkerCommand(const std::filesystem::path& runnel_binary) {
  if (const char* bin = std::getenv("RUNNEL_WORKER_BIN"); bin != nullptr && *bin != '\0') return {bin};
  const auto slim = runnel_binary.parent_path() / "runnel-worker";
  if (::access(slim.c_str(), X_OK) == 0) return {slim.string()};
  log::Get("autoscaler")->warn("{} not found: workers run as `{} worker`, which starts slower", slim.string(),
                               runnel_binary.string());
  return {runnel_binary.string(), "worker"};
}

LocalProcessBackend::LocalProcessBackend(std::vector<std::string> worker_command, std::filesystem::path log_dir)
    : command_(std::move(worker_command)), log_dir_(std::move(log_dir)) {
  if (command_.empty()) throw Error("the worker command is empty", false);
}

LocalProcessBackend::~LocalProcessBackend() { StopAll(std::chrono::seconds(5)); }

void LocalProcessBackend::Spawn(Proc& p) {
  const auto dir = log_dir_ / p.info.function;
  std::filesystem::create_directories(dir);
  p.info.log_file = (dir / (p.info.id + ".log")).string();
  std::vector<std::string> args = command_;
  args.insert(args.end(), {"--function", p.info.function, "--dispatcher", p.dispatcher, "--id", p.info.id});
  const pid_t parent = ::getpid();
  const pid_t pid = ::fork();
  if (pid < 0) throw Error(fmt::format("cannot start a worker for {}: fork failed", p.info.function), true);
  if (pid == 0) {
    ::setpgid(0, 0);
    // A worker is useless without its stack: die with it, however it ends (even SIGKILL).
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (::getppid() != parent) ::_exit(0);
    sigset_t all;
    sigfillset(&all);
    ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
    const int fd = ::open(p.info.log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd >= 0) {
      ::dup2(fd, 1);
      ::dup2(fd, 2);
    }
    const int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0) ::dup2(devnull, 0);
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    ::execv(argv[0], argv.data());
    ::_exit(127);
  }
  ::setpgid(pid, pid);
  p.info.pid = pid;
  p.info.state = WorkerState::kRunning;
  p.info.cpu_s = p.info.wall_s = 0;
  p.info.rss_kb = p.info.peak_rss_kb = 0;
  p.started = Clock::now();
  p.next_sample = p.started;
  ++ended_[p.info.function].workers_started;
}

void LocalProcessBackend::Sample(Proc& p, Clock::time_point now) {
  p.info.wall_s = std::chrono::duration<double>(now - p.started).count();
  if (now < p.next_sample) return;
  p.next_sample = now + kSampleInterval;
  if (const double cpu = ProcCpuSeconds(p.info.pid); cpu >= 0) p.info.cpu_s = cpu;
  const auto [rss, hwm] = ProcMemoryKb(p.info.pid);
  if (rss > 0) p.info.rss_kb = rss;
  p.info.peak_rss_kb = std::max({p.info.peak_rss_kb, hwm, rss});
}

void LocalProcessBackend::Account(Proc& p, const struct rusage& ru, Clock::time_point now) {
  Usage& u = ended_[p.info.function];
  u.wall_s += std::chrono::duration<double>(now - p.started).count();
  // rusage of the reaped child is exact; the last /proc sample may be up to a second old.
  u.cpu_s += std::max(p.info.cpu_s, Seconds(ru.ru_utime) + Seconds(ru.ru_stime));
  u.peak_rss_kb = std::max({u.peak_rss_kb, p.info.peak_rss_kb, static_cast<std::int64_t>(ru.ru_maxrss)});
}

Usage LocalProcessBackend::UsageOf(const std::string& function) const {
  Usage u;
  if (auto it = ended_.find(function); it != ended_.end()) u = it->second;
  const auto now = Clock::now();
  for (const auto& [id, p] : procs_) {
    if (p.info.function != function || p.info.pid <= 0) continue;
    u.wall_s += std::chrono::duration<double>(now - p.started).count();
    u.cpu_s += p.info.cpu_s;
    u.peak_rss_kb = std::max(u.peak_rss_kb, p.info.peak_rss_kb);
  }
  return u;
}

std::string LocalProcessBackend::Start(const std::string& function, const std::string& dispatcher) {
  const std::string id = fmt::format("{}-{}", function, ++next_index_[function]);
  Proc& p = procs_[id];
  p.info.id = id;
  p.info.function = function;
  p.dispatcher = dispatcher;
  Spawn(p);
  log::Get("autoscaler")->info("started worker {} (pid {}), log {}", id, p.info.pid, p.info.log_file);
  return id;
}

void LocalProcessBackend::Stop(const std::string& id, std::chrono::milliseconds grace) {
  auto it = procs_.find(id);
  if (it == procs_.end()) return;
  Proc& p = it->second;
  if (p.info.pid > 0 && p.info.state != WorkerState::kStopping) {
    ::kill(p.info.pid, SIGTERM);
    p.info.state = WorkerState::kStopping;
    p.kill_at = Clock::now() + grace;
  } else if (p.info.pid <= 0) {
    procs_.erase(it);  // waiting to restart: nothing runs
  }
}

std::vector<WorkerInfo> LocalProcessBackend::List(const std::string& function) const {
  std::vector<WorkerInfo> out;
  for (const auto& [id, p] : procs_) {
    if (function.empty() || p.info.function == function) out.push_back(p.info);
  }
  return out;
}

void LocalProcessBackend::Tick() {
  const auto now = Clock::now();
  for (auto it = procs_.begin(); it != procs_.end();) {
    Proc& p = it->second;
    if (p.info.pid > 0) {
      int status = 0;
      struct rusage ru {};
      const pid_t r = ::wait4(p.info.pid, &status, WNOHANG, &ru);
      if (r == p.info.pid) {
        Account(p, ru, now);
        ::kill(-p.info.pid, SIGKILL);  // anything it left in its group
        p.info.last_exit = WIFEXITED(status) ? fmt::format("exit {}", WEXITSTATUS(status))
                                             : fmt::format("signal {}", WTERMSIG(status));
        p.info.pid = 0;
        if (p.info.state == WorkerState::kStopping) {
          it = procs_.erase(it);
          continue;
        }
        // It was not asked to stop: restart it, backing off while it keeps crashing fast.
        p.quick_crashes = now - p.started < kQuickCrash ? p.quick_crashes + 1 : 0;
        auto backoff = kBackoffMin * (1 << std::min(p.quick_crashes, 6));
        if (backoff > kBackoffMax) backoff = kBackoffMax;
        p.info.state = p.quick_crashes >= kCrashLoopAfter ? WorkerState::kCrashLoop : WorkerState::kBackoff;
        if (p.info.state == WorkerState::kCrashLoop) backoff = kBackoffMax;
        p.restart_at = now + backoff;
        ++p.info.restarts;
        ++ended_[p.info.function].restarts;
        log::Get("autoscaler")->warn("worker {} ended unexpectedly ({}); restarting in {} ms{}", p.info.id,
                                     p.info.last_exit, backoff.count(),
                                     p.info.state == WorkerState::kCrashLoop ? " (crash loop)" : "");
      } else {
        Sample(p, now);
        if (p.info.state == WorkerState::kStopping && now >= p.kill_at) ::kill(-p.info.pid, SIGKILL);
      }
    } else if (now >= p.restart_at) {
      Spawn(p);
    }
    ++it;
  }
}

void LocalProcessBackend::StopAll(std::chrono::milliseconds grace) {
  for (auto& [id, p] : procs_) {
    if (p.info.pid > 0) {
      ::kill(p.info.pid, SIGTERM);
      p.info.state = WorkerState::kStopping;
      p.kill_at = Clock::now() + grace;
    }
  }
  std::erase_if(procs_, [](const auto& kv) { return kv.second.info.pid <= 0; });
  // Bounded: after the grace period every remaining group is killed, then reaped.
  const auto until = Clock::now() + grace + std::chrono::seconds(5);
  while (!procs_.empty() && Clock::now() < until) {
    Tick();
    if (!procs_.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (auto& [id, p] : procs_) {
    if (p.info.pid > 0) ::kill(-p.info.pid, SIGKILL);
  }
  procs_.clear();
}

}  // namespace runnel::autoscaler
