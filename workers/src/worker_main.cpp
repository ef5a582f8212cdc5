#include "runnel/workers/worker_main.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdio>

#include "runnel/core/error.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/core/version.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/security/tokens.hpp"

namespace runnel::workers {
namespace {

constexpr std::string_view kUsage =
    "Usage: runnel-worker --function NAME (--dispatcher ENDPOINT [--keys DIR] | --join TOKEN_FILE)\n"
    "                     [--id ID] [--capacity N] [--threads N] [--standby]\n"
    "\n"
    "One worker process: connects to a function's dispatcher over ZeroMQ and runs the events it hands\n"
    "out until SIGTERM (drains first) or the dispatcher says EXIT. The same as `runnel worker`.\n"
    "\n"
    "  --function NAME        the function to run, by name (e.g. echo, sleep)\n"
    "  --dispatcher ENDPOINT  the dispatcher's ZeroMQ endpoint, e.g. tcp://127.0.0.1:5555\n"
    "  --keys DIR             connect with CURVE, with the keys of the stack's state dir (<state>/keys:\n"
    "                         server.pub, local.pub, local.secret); without it the connection is plain\n"
    "  --join TOKEN_FILE      join a stack on another host with a token from `runnel token create`: its\n"
    "                         endpoint for NAME and its keys (no --dispatcher or --keys)\n"
    "  --id ID                worker id in HELLO (default <hostname>-<pid>)\n"
    "  --capacity N           events held at once, 1..100000 (default 16)\n"
    "  --threads N            OS threads running the fibers, 1..1024 (default 1)\n"
    "  --standby              start only when a byte arrives on stdin; exit 0 if stdin ends first\n"
    "                         (the autoscaler keeps such a process loaded, ready to start at once)\n"
    "\n"
    "Exit status: 0 drained, 1 refused (unknown function, bad params, REJECT), 2 usage error,\n"
    "3 left with calls unfinished.\n";

// A whole decimal number in [min, max], else nullopt.
std::optional<std::size_t> ParseCount(std::string_view text, std::size_t min, std::size_t max) {
  std::size_t value = 0;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value < min || value > max)
    return std::nullopt;
  return value;
}

}  // namespace

ParsedWorkerArgs ParseWorkerArgs(const std::vector<std::string>& args) {
  ParsedWorkerArgs parsed;
  WorkerOptions options;
  auto fail = [&parsed](std::string error) {
    parsed.error = std::move(error);
    return parsed;
  };
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string flag = args[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = flag.find('='); flag.starts_with("--") && eq != std::string::npos) {
      value = flag.substr(eq + 1);
      flag.resize(eq);
      has_value = true;
    }
    if (flag == "--help" || flag == "-h") {
      parsed.message = std::string(kUsage);
      return parsed;
    }
    if (flag == "--standby" && !has_value) {
      parsed.standby = true;
      continue;
    }
    if (flag == "--version") {
      parsed.message = fmt::format("runnel-worker {}\n", Version());
      return parsed;
    }
    if (flag != "--function" && flag != "--dispatcher" && flag != "--id" && flag != "--capacity" &&
        flag != "--threads" && flag != "--keys" && flag != "--join") {
      return fail(fmt::format("unknown argument '{}'", args[i]));
    }
    if (!has_value) {
      if (i + 1 >= args.size()) return fail(fmt::format("{} needs a value", flag));
      value = args[++i];
    }
    if (flag == "--function") {
      options.function = value;
    } else if (flag == "--dispatcher") {
      options.dispatcher = value;
    } else if (flag == "--keys") {
      if (value.empty()) return fail("--keys needs a directory");
      parsed.keys_dir = value;
    } else if (flag == "--join") {
      if (value.empty()) return fail("--join needs a token file");
      parsed.join_file = value;
    } else if (flag == "--id") {
      options.id = value;
    } else if (flag == "--capacity") {
      const auto n = ParseCount(value, 1, 100'000);
      if (!n) return fail(fmt::format("--capacity: must be a whole number in 1..100000, got '{}'", value));
      options.capacity = *n;
    } else {
      const auto n = ParseCount(value, 1, 1024);
      if (!n) return fail(fmt::format("--threads: must be a whole number in 1..1024, got '{}'", value));
      options.threads = *n;
    }
  }
  if (options.function.empty()) return fail("--function is required");
  if (!parsed.join_file.empty() && (!options.dispatcher.empty() || !parsed.keys_dir.empty())) {
    return fail("--join takes the dispatcher and the keys from the token: no --dispatcher or --keys with it");
  }
  if (options.dispatcher.empty() && parsed.join_file.empty())
    return fail("--dispatcher is required (or --join TOKEN_FILE)");
  parsed.options = std::move(options);
  return parsed;
}

void ApplyCurveFlags(WorkerOptions& options, const std::string& keys_dir, const std::string& join_file) {
  if (!keys_dir.empty()) options.curve = security::LoadLocalClientKeys(keys_dir);
  if (join_file.empty()) return;
  auto token = security::ReadJoinToken(join_file);
  const auto& dispatchers = token.endpoints.value("dispatchers", nlohmann::json::object());
  const auto it = dispatchers.find(options.function);
  if (it == dispatchers.end() || !it->is_string()) {
    std::string known;
    for (const auto& [name, _] : dispatchers.items()) known += (known.empty() ? "" : ", ") + name;
    throw ConfigError(fmt::format("{}: token {} is not for function '{}' (it is for {})", join_file,
                                  token.record.id, options.function, known));
  }
  options.dispatcher = it->get<std::string>();
  options.curve = std::move(token.keys);
}

bool AwaitStart(int fd) {
  // The name tells a standby from a worker in ps and /proc/<pid>/comm; the command line is the same.
  char name[16] = {};
  ::prctl(PR_GET_NAME, name);
  ::prctl(PR_SET_NAME, kStandbyProcessName);
  char go = 0;
  ssize_t n = 0;
  do {
    n = ::read(fd, &go, 1);
  } while (n < 0 && errno == EINTR);
  ::prctl(PR_SET_NAME, name);
  if (n != 1) return false;
  // The socket is spent: later reads of stdin see an empty input, as for any other worker.
  if (const UniqueFd devnull(::open("/dev/null", O_RDONLY | O_CLOEXEC)); devnull) ::dup2(devnull.Get(), fd);
  return true;
}

int WorkerMain(int argc, char** argv) {
  log::ConfigureFromEnv();
  ParsedWorkerArgs parsed = ParseWorkerArgs(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed.options) {
    if (parsed.error.empty()) {
      fmt::print("{}", parsed.message);
      return 0;
    }
    fmt::print(stderr, "runnel-worker: {}\n{}", parsed.error, kUsage);
    return 2;
  }
  // Standing by: one thread, no ZeroMQ context, nothing connected; SIGTERM ends it as any process.
  if (parsed.standby && !AwaitStart(0)) return 0;
  try {
    ApplyCurveFlags(*parsed.options, parsed.keys_dir, parsed.join_file);
  } catch (const std::exception& e) {
    fmt::print(stderr, "runnel-worker: {}\n", e.what());
    return 1;
  }
  // Before any thread exists, so every thread inherits the blocked SIGINT/SIGTERM.
  ShutdownSignals signals;
  return RunWorker(std::move(*parsed.options));
}

}  // namespace runnel::workers
