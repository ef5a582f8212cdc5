#include "runnel/workers/task_pool.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <bit>
#include <boost/fiber/algo/shared_work.hpp>
#include <boost/fiber/buffered_channel.hpp>
#include <boost/fiber/condition_variable.hpp>
#include <boost/fiber/fiber.hpp>
#include <boost/fiber/fss.hpp>
#include <boost/fiber/mutex.hpp>
#include <boost/fiber/operations.hpp>
#include <boost/fiber/protected_fixedsize_stack.hpp>
#include <cerrno>
#include <cstring>
#include <mutex>
#include <system_error>
#include <thread>

#include "runnel/core/fd.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/log.hpp"
#include "runnel/functions/output_upload.hpp"
#include "task_context.hpp"

namespace runnel::workers {
namespace {

using Clock = std::chrono::steady_clock;
using functions::Errc;
using functions::FunctionError;

// Each fiber's stack, with a guard page so an overflow faults instead of corrupting memory. Only
// touched pages cost memory; decoders (OpenCV, libjpeg) need more than Boost's 128 KiB default.
constexpr std::size_t kFiberStackBytes = std::size_t{2} * 1024 * 1024;

// The event the running fiber is calling its function for: log lines the function writes carry
// its id (log::SetEventIdSource).
boost::fibers::fiber_specific_ptr<std::string>& FiberEvent() {
  static boost::fibers::fiber_specific_ptr<std::string> event;
  return event;
}

std::string_view FiberEventId() {
  const std::string* id = FiberEvent().get();
  return id != nullptr ? std::string_view(*id) : std::string_view();
}

std::uint32_t MicrosSince(Clock::time_point start) {
  const auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - start).count();
  return static_cast<std::uint32_t>(std::clamp<std::int64_t>(us, 0, UINT32_MAX));
}

CompletedTask OkResult(std::uint64_t token, functions::Result result) {
  CompletedTask done;
  done.header.token = token;
  done.header.status = wire::ResultStatus::kOk;
  done.header.content_type = std::move(result.content_type);
  if (!result.files.empty()) {
    nlohmann::json files = nlohmann::json::array();
    for (const auto& file : result.files) {
      // docs/protocol.md §3.1: where the file is now. A file PUT to outputs.url is no longer at its
      // path (the upload removed it), so the entry names the URL and the file's name instead.
      if (file.url.empty()) {
        files.push_back(
            {{"path", file.path}, {"bytes", file.bytes}, {"facts", file.facts}, {"stored", "output_dir"}});
      } else {
        files.push_back({{"url", file.url},
                         {"name", std::filesystem::path(file.path).filename().string()},
                         {"bytes", file.bytes},
                         {"facts", file.facts},
                         {"stored", "url"}});
      }
    }
    done.header.files_json = JsonText(files);
  }
  done.output = std::move(result.output);
  return done;
}

// The call's deadline: its budget from `start`, or the event's own absolute deadline if earlier.
// Returns nullopt when the event's deadline has already passed.
std::optional<Clock::time_point> CallDeadline(const PendingTask& task, Clock::time_point start) {
  Clock::time_point deadline = task.budget.count() > 0 ? start + task.budget : Clock::time_point::max();
  if (const auto& absolute = task.event.envelope.deadline_ms) {
    const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                            std::chrono::system_clock::now().time_since_epoch())
                            .count();
    if (*absolute <= now_ms) return std::nullopt;
    deadline = std::min(deadline, start + std::chrono::milliseconds(*absolute - now_ms));
  }
  return deadline;
}

}  // namespace

CompletedTask ErrorResult(std::uint64_t token, Errc code, std::string message, std::uint32_t duration_us) {
  CompletedTask done;
  done.header.token = token;
  done.header.status = wire::ResultStatus::kError;
  done.header.error_code = static_cast<std::uint8_t>(code);
  done.header.duration_us = duration_us;
  done.header.error = std::move(message);
  return done;
}

struct TaskPool::Impl {
  Impl(functions::Function& fn, PoolOptions opts, Watchdog& dog)
      : function(fn),
        options(std::move(opts)),
        watchdog(dog),
        batch(options.batch),
        log(log::kFunction.Logger()),
        outputs(options.output_dir.empty() ? std::filesystem::current_path() / "outputs"
                                           : options.output_dir),
        // A buffered_channel holds one less than its (power of two) size.
        queue(std::bit_ceil(std::max({std::size_t{64}, 4 * options.fibers, options.queued + 1}))) {}

  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;
  ~Impl() {
    queue.close();
    for (auto& thread : threads) thread.join();
  }

  void Start() {
    options.threads = std::max<std::size_t>(1, options.threads);
    options.fibers = std::max<std::size_t>(1, options.fibers);
    for (std::size_t i = 0; i < options.threads; ++i) threads.emplace_back([this, i] { ThreadMain(i); });
  }

  // Thread 0 launches the fibers and joins them; with shared_work the other threads' main fibers
  // just wait, which lets their schedulers run fibers from the shared ready queue meanwhile.
  void ThreadMain(std::size_t index) {
    if (options.threads > 1) {
      boost::fibers::use_scheduling_algorithm<boost::fibers::algo::shared_work>(/*suspend=*/true);
    }
    if (index != 0) {
      std::unique_lock lock(done_mutex);
      done_cv.wait(lock, [this] { return fibers_done; });
      return;
    }
    std::vector<boost::fibers::fiber> fibers;
    fibers.reserve(options.fibers);
    for (std::size_t i = 0; i < options.fibers; ++i) {
      fibers.emplace_back(std::allocator_arg, boost::fibers::protected_fixedsize_stack(kFiberStackBytes),
                          [this] { FiberLoop(); });
    }
    for (auto& fiber : fibers) fiber.join();
    {
      std::unique_lock lock(done_mutex);
      fibers_done = true;
    }
    done_cv.notify_all();
  }

  void FiberLoop() {
    if (batch.size > 1) return BatchLoop();
    PendingTask task;
    while (queue.pop(task) == boost::fibers::channel_op_status::success) {
      waiting.fetch_sub(1);
      Deliver({RunOne(task)});
    }
  }

  // One fiber at a time fills a batch: its first task, then more as they are queued, up to the
  // batch size or the end of the window. Idle fibers taking turns task by task would split a burst
  // into partial batches that all wait out their windows, while the worker's credit (a full batch
  // per call) is used up and no more events come.
  void BatchLoop() {
    for (;;) {
      std::vector<PendingTask> tasks;
      {
        std::unique_lock lock(filling);
        PendingTask task;
        if (queue.pop(task) != boost::fibers::channel_op_status::success) return;
        waiting.fetch_sub(1);
        tasks.push_back(std::move(task));
        const auto window_end = Clock::now() + batch.window;
        while (tasks.size() < batch.size) {
          PendingTask more;
          const auto status =
              batch.window.count() > 0 ? queue.pop_wait_until(more, window_end) : queue.try_pop(more);
          if (status != boost::fibers::channel_op_status::success) break;
          waiting.fetch_sub(1);
          tasks.push_back(std::move(more));
        }
      }
      Deliver(RunBatch(tasks));
    }
  }

  CompletedTask RunOne(PendingTask& task) {
    const auto start = Clock::now();
    const auto deadline = CallDeadline(task, start);
    if (!deadline)
      return ErrorResult(task.token, Errc::kTimeout, "the event's deadline passed before it ran");
    watchdog.Start(task.token, task.budget, start);
    FiberEvent().reset(new std::string(task.event.envelope.id));
    CompletedTask done;
    try {
      TaskContext ctx(options.params, *deadline, *log, outputs);
      functions::Result result = function.Handle(task.event, ctx);
      Upload(task.event.envelope.id, result, *deadline);
      done = OkResult(task.token, std::move(result));
      done.header.emitted = ctx.TakeEmitted();
    } catch (const FunctionError& e) {
      done = ErrorResult(task.token, e.Code(), e.what());
    } catch (const std::exception& e) {
      done = ErrorResult(task.token, Errc::kInternal, e.what());
    } catch (...) {
      done =
          ErrorResult(task.token, Errc::kInternal, "the function threw something that is not an exception");
    }
    watchdog.Finish(task.token);
    FiberEvent().reset(nullptr);
    done.header.duration_us = MicrosSince(start);
    return done;
  }

  // One HandleBatch call for every task whose deadline has not passed; the call's deadline is the
  // earliest of theirs.
  std::vector<CompletedTask> RunBatch(std::vector<PendingTask>& tasks) {
    const auto start = Clock::now();
    std::vector<CompletedTask> results;
    std::vector<PendingTask*> runnable;
    std::vector<functions::Event> events;
    Clock::time_point deadline = Clock::time_point::max();
    for (auto& task : tasks) {
      const auto task_deadline = CallDeadline(task, start);
      if (!task_deadline) {
        results.push_back(
            ErrorResult(task.token, Errc::kTimeout, "the event's deadline passed before it ran"));
        continue;
      }
      deadline = std::min(deadline, *task_deadline);
      runnable.push_back(&task);
      events.push_back(std::move(task.event));
      watchdog.Start(task.token, task.budget, start);
    }
    if (runnable.empty()) return results;
    std::vector<functions::ResultOrError> outcomes;
    std::optional<FunctionError> failure;
    std::vector<wire::EmitRecord> emitted;  // a batch's emits travel with its first successful event
    try {
      TaskContext ctx(options.params, deadline, *log, outputs);
      outcomes = function.HandleBatch(events, ctx);
      emitted = ctx.TakeEmitted();
      if (outcomes.size() != events.size()) {
        failure.emplace(Errc::kInternal, fmt::format("HandleBatch returned {} outcomes for {} events",
                                                     outcomes.size(), events.size()));
      }
    } catch (const FunctionError& e) {
      failure = e;
    } catch (const std::exception& e) {
      failure.emplace(Errc::kInternal, e.what());
    } catch (...) {
      failure.emplace(Errc::kInternal, "the function threw something that is not an exception");
    }
    // Each event reports its share of the call: what the dispatcher's prefetch and the autoscaler
    // read as the time an event takes (the call's whole duration would count it once per event).
    const std::uint32_t duration = MicrosSince(start) / static_cast<std::uint32_t>(runnable.size());
    for (std::size_t i = 0; i < runnable.size(); ++i) {
      const std::uint64_t token = runnable[i]->token;
      watchdog.Finish(token);
      CompletedTask done;
      if (!failure && outcomes[i].result) {
        // The upload is part of the event's call: one that fails fails this event only.
        try {
          Upload(events[i].envelope.id, *outcomes[i].result, deadline);
        } catch (const FunctionError& e) {
          outcomes[i].result.reset();
          outcomes[i].error = e;
        }
      }
      if (failure) {
        done = ErrorResult(token, failure->Code(), failure->what());
      } else if (outcomes[i].result) {
        done = OkResult(token, std::move(*outcomes[i].result));
        if (!emitted.empty()) done.header.emitted = std::move(emitted);
        emitted.clear();
      } else if (outcomes[i].error) {
        done = ErrorResult(token, outcomes[i].error->Code(), outcomes[i].error->what());
      } else {
        done = ErrorResult(token, Errc::kInternal, "HandleBatch returned an empty outcome");
      }
      done.header.duration_us = duration;
      results.push_back(std::move(done));
    }
    return results;
  }

  // With outputs.url, PUTs a successful call's files there before its result is reported (so the
  // outcome says where they are); throws FunctionError(kTransient) when one fails. Part of the
  // call: it counts toward the event's timeout, and the watchdog still watches it.
  void Upload(std::string_view event_id, functions::Result& result, Clock::time_point deadline) {
    if (!options.outputs || result.files.empty()) return;
    functions::UploadOutputs(*options.outputs, options.function_name, event_id, result.files, deadline);
  }

  void Deliver(std::vector<CompletedTask> results) {
    bool wake = false;
    {
      std::lock_guard lock(outbox_mutex);
      for (auto& result : results) outbox.push_back(std::move(result));
      // One wake-up per TakeCompleted: the I/O thread clears the fd before it takes the outbox, so
      // anything added after the wake-up is taken with it. While tasks still wait for a fiber, the
      // results gather into a batch (the last of those tasks to finish wakes the I/O thread).
      if (!notified && (waiting.load() <= 0 || outbox.size() >= TaskPool::kNotifyBatch)) {
        notified = true;
        wake = true;
      }
    }
    if (wake) results_ready.Notify();
  }

  functions::Function& function;
  PoolOptions options;
  Watchdog& watchdog;
  BatchSpec batch;
  std::shared_ptr<spdlog::logger> log;
  functions::OutputStore outputs;
  boost::fibers::buffered_channel<PendingTask> queue;
  std::mutex outbox_mutex;
  std::vector<CompletedTask> outbox;
  bool notified = false;                     // the fd was made readable since the last TakeCompleted
  std::atomic<std::int64_t> waiting{0};      // submitted tasks no fiber has taken yet
  EventNotifier results_ready{"task pool"};  // the outbox has results for the I/O thread
  boost::fibers::mutex filling;              // held by the fiber filling a batch (BatchLoop)
  boost::fibers::mutex done_mutex;
  boost::fibers::condition_variable done_cv;
  bool fibers_done = false;
  std::vector<std::thread> threads;
};

TaskPool::TaskPool(functions::Function& function, PoolOptions options, Watchdog& watchdog)
    : impl_(std::make_unique<Impl>(function, std::move(options), watchdog)) {
  log::SetEventIdSource(&FiberEventId);
  impl_->Start();
}

TaskPool::~TaskPool() = default;

bool TaskPool::TrySubmit(PendingTask& task) {
  // Counted before the push, so a fiber that pops it at once never sees the count below zero.
  impl_->waiting.fetch_add(1);
  if (impl_->queue.try_push(std::move(task)) == boost::fibers::channel_op_status::success) return true;
  impl_->waiting.fetch_sub(1);
  return false;
}

std::vector<CompletedTask> TaskPool::TakeCompleted() {
  std::vector<CompletedTask> taken;
  std::lock_guard lock(impl_->outbox_mutex);
  taken.swap(impl_->outbox);
  impl_->notified = false;
  return taken;
}

std::size_t TaskPool::Waiting() const {
  return static_cast<std::size_t>(std::max<std::int64_t>(0, impl_->waiting.load()));
}

int TaskPool::NotifyFd() const { return impl_->results_ready.Fd(); }

void TaskPool::ClearNotify() { impl_->results_ready.Drain(); }

}  // namespace runnel::workers
