#include "runnel/autoscaler/local_backend.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

#include "proc_sampling.hpp"
#include "restart_policy.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"

namespace runnel::autoscaler {
namespace {

double Seconds(const timeval& tv) {
  return static_cast<double>(tv.tv_sec) + static_cast<double>(tv.tv_usec) / 1e6;
}

// Runs every fork on one thread that lives as long as the process. PR_SET_PDEATHSIG follows the
// THREAD that forked the child, not the process: a worker forked by the autoscaler's thread died
// the moment that thread ended (a stack stopping, or the thread failing), with its calls. Forked
// from here, workers outlive any other thread and still die with the process, however it ends.
// The thread is never joined (the object is never destroyed): it ends with the process.
class Forker {
 public:
  static Forker& Get() {
    static Forker* forker = new Forker();
    return *forker;
  }

  // Runs `fork_child` (which forks and returns the child's pid, or throws) on the forking thread.
  pid_t Run(std::function<pid_t()> fork_child) {
    std::packaged_task<pid_t()> task(std::move(fork_child));
    auto result = task.get_future();
    {
      std::lock_guard lock(mu_);
      tasks_.push_back(std::move(task));
    }
    ready_.notify_one();
    return result.get();
  }

 private:
  Forker() {
    std::thread([this] {
      // Signals go to the threads that wait for them, never to this one.
      sigset_t all;
      sigfillset(&all);
      ::pthread_sigmask(SIG_BLOCK, &all, nullptr);
      for (;;) {
        std::packaged_task<pid_t()> task;
        {
          std::unique_lock lock(mu_);
          ready_.wait(lock, [this] { return !tasks_.empty(); });
          task = std::move(tasks_.front());
          tasks_.pop_front();
        }
        task();
      }
    }).detach();
  }

  std::mutex mu_;
  std::condition_variable ready_;
  std::deque<std::packaged_task<pid_t()>> tasks_;
};

}  // namespace

std::string_view WorkerStateName(WorkerState s) {
  switch (s) {
    case WorkerState::kStarting:
      return "starting";
    case WorkerState::kRunning:
      return "running";
    case WorkerState::kStopping:
      return "stopping";
    case WorkerState::kBackoff:
      return "backoff";
    case WorkerState::kCrashLoop:
      return "crash-loop";
  }
  return "?";
}

std::vector<std::string> WorkerCommand(const std::filesystem::path& runnel_binary) {
  if (const char* bin = std::getenv("RUNNEL_WORKER_BIN"); bin != nullptr && *bin != '\0') return {bin};
  const auto slim = runnel_binary.parent_path() / "runnel-worker";
  if (::access(slim.c_str(), X_OK) == 0) return {slim.string()};
  log::kAutoscaler->warn("{} not found: workers run as `{} worker`, which starts slower", slim.string(),
                         runnel_binary.string());
  return {runnel_binary.string(), "worker"};
}

LocalProcessBackend::LocalProcessBackend(std::vector<std::string> worker_command,
                                         std::filesystem::path log_dir, bool standby)
    : command_(std::move(worker_command)), log_dir_(std::move(log_dir)), standby_enabled_(standby) {
  if (command_.empty()) throw Error("the worker command is empty", false);
}

LocalProcessBackend::~LocalProcessBackend() { StopAll(std::chrono::seconds(5)); }

pid_t LocalProcessBackend::ForkExec(const std::string& function, const std::vector<std::string>& flags,
                                    const std::string& log_file, int stdin_fd) {
  std::vector<std::string> args = command_;
  args.insert(args.end(), flags.begin(), flags.end());
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  return Forker::Get().Run([&] {
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) throw Error(fmt::format("cannot start a worker for {}: fork failed", function), true);
    if (pid == 0) {
      ::setpgid(0, 0);
      // A worker is useless without its stack: die with its process, however it ends (even
      // SIGKILL). This thread (Forker) lives as long as the process, so the signal comes only then.
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(0);
      sigset_t all;
      sigfillset(&all);
      ::sigprocmask(SIG_UNBLOCK, &all, nullptr);
      const int fd = ::open(log_file.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
      }
      const int in = stdin_fd >= 0 ? stdin_fd : ::open("/dev/null", O_RDONLY);
      if (in >= 0) ::dup2(in, 0);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    ::setpgid(pid, pid);
    return pid;
  });
}

std::string LocalProcessBackend::NextId(const std::string& function) {
  return fmt::format("{}-{}", function, ++next_index_[function]);
}

void LocalProcessBackend::Spawn(Proc& p) {
  const auto dir = log_dir_ / p.info.function;
  std::filesystem::create_directories(dir);
  p.info.log_file = (dir / (p.info.id + ".log")).string();
  p.info.pid = ForkExec(p.info.function,
                        {"--function", p.info.function, "--dispatcher", p.dispatcher, "--id", p.info.id},
                        p.info.log_file, -1);
  p.info.from_standby = false;
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
  Proc p;
  p.info.function = function;
  p.dispatcher = dispatcher;
  const bool standby = StartFromStandby(p);
  if (!standby) {
    p.info.id = NextId(function);
    Spawn(p);
  }
  std::string id = p.info.id;
  procs_[id] = std::move(p);
  log::kAutoscaler->info("started worker {} (pid {}{}), log {}", id, procs_[id].info.pid,
                         standby ? ", from standby" : "", procs_[id].info.log_file);
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
          log::kAutoscaler->info("worker {} (pid {}) stopped ({})", p.info.id, r, p.info.last_exit);
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
        log::kAutoscaler->warn("worker {} ended unexpectedly ({}); restarting in {} ms{}", p.info.id,
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
  for (auto& [function, s] : standby_) TickStandby(function, s, now);
}

void LocalProcessBackend::StopAll(std::chrono::milliseconds grace) {
  for (auto& [function, s] : standby_) RetireStandby(s);
  standby_.clear();
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
