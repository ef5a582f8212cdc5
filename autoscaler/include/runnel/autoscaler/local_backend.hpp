// Workers as local processes: `runnel-worker --function F --dispatcher E`, each in its own process
// group, stdout and stderr to <state dir>/logs/<function>/<worker>.log. A worker that exits
// without being asked to is restarted after a backoff that doubles with each quick crash (from
// 200 ms to 10 s); one that crashes 5 times in a row within seconds of starting is in crash-loop
// state, retried only at the longest backoff. Workers die with the process that started them
// (PR_SET_PDEATHSIG, set in a child forked by a thread that lives as long as the process: the
// signal follows the forking thread, so no other thread's end touches them), so a crashed stack
// leaves none behind. Stop sends SIGTERM (the worker drains) and SIGKILL
// after the grace period.
// Standby (optional, on in `runnel up` unless `standby_workers: false`): per function, one process
// of the worker command already exec'd with all its flags and `--standby`, holding its libraries
// mapped and waiting on a socket (its stdin) before it creates any thread or connects. Start hands
// it the go byte instead of running fork+exec (the ~20 ms start-up of runnel-worker, most of it the
// kernel and the dynamic loader); the next Tick puts a new standby in its place. A standby is a
// direct child like any worker: same process group, PR_SET_PDEATHSIG, log file, memory limit from
// WELCOME, restart, SIGTERM drain and SIGKILL. It costs an idle process (about 6 MiB RSS for
// runnel-worker) per function. A standby that ends unused is logged, counted in StandbyOf, and
// replaced with the crash backoff; meanwhile workers start by fork+exec. Restarts of a crashed
// worker always exec (they keep the worker's id).
// Usage: each Tick samples a running worker's CPU and memory from /proc (at most once a second);
// a reaped worker's exact totals come from wait4's rusage and are added to its function's usage.
// Thread-safety: not thread-safe; one owner calls it (the stack's supervision loop).
#pragma once

#include <sys/resource.h>
#include <sys/types.h>

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "runnel/autoscaler/backend.hpp"
#include "runnel/core/fd.hpp"

namespace runnel::autoscaler {

// The command workers run as, for the stack whose executable is `runnel_binary`: $RUNNEL_WORKER_BIN
// when set; else the slim `runnel-worker` next to `runnel_binary` (a start in milliseconds, a few
// MiB resident); else `runnel_binary worker` (the same worker inside the full command line).
std::vector<std::string> WorkerCommand(const std::filesystem::path& runnel_binary);

class LocalProcessBackend final : public WorkerBackend {
 public:
  // `worker_command`: the program (and leading arguments) a worker runs as, before its flags:
  // {"/usr/local/bin/runnel-worker"}, or {"/usr/local/bin/runnel", "worker"}. See WorkerCommand.
  // `standby`: keep a standby process per prepared function (see above).
  LocalProcessBackend(std::vector<std::string> worker_command, std::filesystem::path log_dir,
                      bool standby = false);
  ~LocalProcessBackend() override;
  LocalProcessBackend(const LocalProcessBackend&) = delete;
  LocalProcessBackend& operator=(const LocalProcessBackend&) = delete;

  std::string Start(const std::string& function, const std::string& dispatcher) override;
  void Stop(const std::string& id, std::chrono::milliseconds grace) override;
  std::vector<WorkerInfo> List(const std::string& function) const override;
  void Tick() override;
  void StopAll(std::chrono::milliseconds grace) override;
  Usage UsageOf(const std::string& function) const override;
  void Prepare(const std::string& function, const std::string& dispatcher) override;
  std::optional<StandbyInfo> StandbyOf(const std::string& function) const override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Proc {
    WorkerInfo info;
    std::string dispatcher;
    Clock::time_point started{};
    Clock::time_point restart_at{};
    Clock::time_point kill_at{};
    int quick_crashes = 0;
    Clock::time_point next_sample{};
  };
  struct Standby {
    std::string dispatcher;
    std::string id;  // the id it was started with (its --id and log file)
    std::string log_file;
    int pid = 0;
    UniqueFd go;  // our end of its stdin socket: one byte starts it, closing retires it
    Clock::time_point replace_at{};
    int quick_ends = 0;  // ended unused, in a row, soon after it started
    Clock::time_point started{};
    Clock::time_point next_sample{};
    StandbyInfo info;
  };
  // fork+exec of the worker command with `flags`, in its own process group, stdout and stderr
  // appended to `log_file`, stdin from `stdin_fd` (/dev/null when -1). Returns the pid.
  pid_t ForkExec(const std::string& function, const std::vector<std::string>& flags,
                 const std::string& log_file, int stdin_fd);
  void Spawn(Proc& p);
  void SpawnStandby(const std::string& function, Standby& s);
  std::string NextId(const std::string& function);
  // Starts `p` from the function's standby if one stands ready; false when none does.
  bool StartFromStandby(Proc& p);
  void TickStandby(const std::string& function, Standby& s, Clock::time_point now);
  void RetireStandby(Standby& s);
  void Sample(Proc& p, Clock::time_point now);
  // Adds a reaped process's lifetime and rusage to its function's usage.
  void Account(Proc& p, const struct rusage& ru, Clock::time_point now);

  std::vector<std::string> command_;
  std::filesystem::path log_dir_;
  bool standby_enabled_ = false;
  std::map<std::string, Standby> standby_;  // per prepared function
  std::map<std::string, Proc> procs_;
  std::map<std::string, int> next_index_;
  std::map<std::string, Usage> ended_;  // per function: what exited processes used
};

}  // namespace runnel::autoscaler
