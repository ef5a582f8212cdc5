// `runnel worker`: one stateless worker process serving one function for one dispatcher.
#include "commands.hpp"
#include "flag_checks.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/workers/worker_main.hpp"
#include "runnel/workers/worker_session.hpp"

namespace runnel::cli {

Command AddWorker(CLI::App& app, CommonOptions&) {
  struct Flags {
    workers::WorkerOptions options;
    std::size_t capacity = 0;
    bool standby = false;
    std::string keys_dir;
    std::string join_file;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub =
      app.add_subcommand("worker",
                         "Run a worker process: connect to a function's dispatcher over ZeroMQ and run the "
                         "events it hands out until SIGTERM (drains first) or the dispatcher says EXIT");
  sub->add_option("--function", flags->options.function, "The function to run, by name (e.g. echo, sleep)")
      ->required();
  auto* dispatcher = sub->add_option("--dispatcher", flags->options.dispatcher,
                                     "The dispatcher's ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555");
  auto* keys = sub->add_option("--keys", flags->keys_dir,
                               "Connect with CURVE, with the keys of the stack's state dir (<state>/keys)");
  auto* join = sub->add_option("--join", flags->join_file,
                               "Join a stack on another host with a token from `runnel token create` (its "
                               "endpoint for the function and its keys; no --dispatcher or --keys)");
  join->excludes(dispatcher)->excludes(keys);
  sub->parse_complete_callback([dispatcher, join] {
    if (dispatcher->count() == 0 && join->count() == 0)
      throw CLI::RequiredError("--dispatcher (or --join TOKEN_FILE)");
  });
  sub->add_option("--id", flags->options.id, "Worker id in HELLO (default <hostname>-<pid>)");
  sub->add_option(
         "--capacity", flags->capacity,
         "Events this worker may hold at once (its credit; default 256; the dispatcher's concurrency may "
         "lower the calls run at once)")
      ->check(WholeNumber(1, 100000));
  sub->add_option("--threads", flags->options.threads, "OS threads running the fibers")
      ->check(WholeNumber(1, 1024))
      ->capture_default_str();
  sub->add_flag(
      "--standby", flags->standby,
      "Start only when a byte arrives on stdin; exit 0 if stdin ends first (the autoscaler keeps such a "
      "process loaded, ready to start at once)");
  return {sub, [flags] {
            if (flags->standby && !workers::AwaitStart(0)) return 0;
            // Before any thread exists, so every thread inherits the blocked SIGINT/SIGTERM.
            ShutdownSignals signals;
            workers::WorkerOptions options = flags->options;
            workers::ApplyCurveFlags(options, flags->keys_dir, flags->join_file);
            if (flags->capacity > 0) options.capacity = flags->capacity;
            return workers::RunWorker(std::move(options));
          }};
}

}  // namespace runnel::cli
