// ExecFunction: the exec:COMMAND contract (functions/README.md) over RunProcess, off the fiber thread.
#include "runnel/functions/exec_function.hpp"

#include <fmt/format.h>
#include <string.h>
#include <unistd.h>

#include <boost/fiber/future.hpp>
#include <cctype>
#include <cerrno>
#include <thread>

#include "batch_protocol.hpp"
#include "control_file.hpp"
#include "runnel/core/trace_context.hpp"

namespace runnel::functions {
namespace {

using Clock = std::chrono::steady_clock;

std::string EnvName(std::string_view header) {
  std::string out = "RUNNEL_HEADER_";
  for (char c : header) {
    out += std::isalnum(static_cast<unsigned char>(c))
               ? static_cast<char>(std::toupper(static_cast<unsigned char>(c)))
               : '_';
  }
  return out;
}

std::string Trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  std::size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

class ExecFunction final : public Function {
 public:
  ExecFunction(std::vector<std::string> argv, std::string working_dir, nlohmann::json params,
               std::size_t max_output, std::string content_type, std::string function_name)
      : argv_(std::move(argv)),
        working_dir_(std::move(working_dir)),
        params_(std::move(params)),
        params_json_(params_.dump()),
        max_output_(max_output),
        content_type_(std::move(content_type)),
        function_name_(std::move(function_name)) {}

  // Whether the program speaks the batch protocol is the config's to say: its `batch` key (with
  // size above 1) is the declaration. Without it, one event per run.
  bool TakesBatches() const override { return true; }

  // A batch is one run of the program: the events as NDJSON on stdin, one result line per event
  // on stdout (batch_protocol.hpp). A failure of the run itself fails every event with it. The
  // worker calls this only when the function's batch size is above 1.
  std::vector<ResultOrError> HandleBatch(std::span<const Event> events, Context& ctx) override {
    std::vector<ResultOrError> outcomes(events.size());
    try {
      const ControlFile control;
      ProcessRequest request = Request(ctx, control, CommonEnvironment(ctx.Deadline()));
      request.env.push_back("RUNNEL_BATCH=" + std::to_string(events.size()));
      request.stdin_data = BatchInput(events, ctx.Outputs().Root(), function_name_);
      ProcessOutcome run = Run(request);
      outcomes = BatchOutcomes(events, Interpret(std::move(run), ctx).output);
      const ControlRequests requests = control.Read(
          [&](const std::string& id) -> std::optional<std::filesystem::path> {
            for (const Event& event : events) {
              if (!id.empty() && event.envelope.id == id) return OutputDir(event, ctx);
            }
            return std::nullopt;
          },
          max_output_);
      for (const ListedOutput& listed : requests.outputs) {
        for (std::size_t i = 0; i < events.size(); ++i) {
          if (events[i].envelope.id == listed.event && outcomes[i].result)
            outcomes[i].result->files.push_back(listed.file);
        }
      }
      for (const EmitRequest& emit : requests.emits)
        ctx.Emit(emit.topic, emit.key, emit.payload, emit.headers);
    } catch (const FunctionError& e) {
      for (ResultOrError& outcome : outcomes) {
        outcome.result.reset();
        outcome.error = e;
      }
    }
    return outcomes;
  }

  Result Handle(const Event& event, Context& ctx) override {
    const ControlFile control;
    ProcessRequest request = Request(ctx, control, Environment(event, ctx, ctx.Deadline()));
    if (event.envelope.file && event.envelope.file->IsUrl()) {
      // The program fetches it itself (RUNNEL_FILE_URL); its stdin is empty.
    } else if (event.envelope.file) {
      request.stdin_file = event.envelope.file->path;
      if (::access(request.stdin_file.c_str(), R_OK) != 0) {
        throw FunctionError(Errc::kBadInput, fmt::format("input file '{}' cannot be read: {}",
                                                         request.stdin_file, ::strerror(errno)));
      }
    } else {
      request.stdin_data = event.payload;
    }

    Result result = Interpret(Run(request), ctx);
    // Only a successful call's requests count; all are checked before any record is emitted.
    ControlRequests requests = control.Read(
        [&](const std::string& id) -> std::optional<std::filesystem::path> {
          if (!id.empty() && id != event.envelope.id) return std::nullopt;
          return OutputDir(event, ctx);
        },
        max_output_);
    for (EmitRequest& emit : requests.emits) {
      ctx.Emit(emit.topic, emit.key, std::move(emit.payload), std::move(emit.headers));
    }
    for (ListedOutput& listed : requests.outputs) result.files.push_back(std::move(listed.file));
    return result;
  }

 private:
  // What every run of the program shares: its command, directory, output cap, the call's deadline,
  // `env` and the control file's path.
  ProcessRequest Request(Context& ctx, const ControlFile& control, std::vector<std::string> env) const {
    ProcessRequest request;
    request.argv = argv_;
    request.working_dir = working_dir_;
    request.max_output = max_output_;
    if (const auto deadline = ctx.Deadline(); deadline != Clock::time_point::max())
      request.deadline = deadline;
    request.env = std::move(env);
    request.env.push_back("RUNNEL_CONTROL_FILE=" + control.Path());
    return request;
  }

  // The child runs on a helper thread; this fiber waits on a future, so the worker's thread keeps
  // running other fibers meanwhile. The helper ends by itself: RunProcess is bounded by the
  // deadline (it kills the group), and the thread is joined once it delivered the outcome.
  static ProcessOutcome Run(const ProcessRequest& request) {
    boost::fibers::promise<ProcessOutcome> promise;
    auto future = promise.get_future();
    std::thread helper([&request, p = std::move(promise)]() mutable { p.set_value(RunProcess(request)); });
    ProcessOutcome outcome = future.get();
    helper.join();
    return outcome;
  }

  // The variables every call gets, a batch included.
  std::vector<std::string> CommonEnvironment(Clock::time_point deadline) const {
    std::vector<std::string> out = {"RUNNEL_FUNCTION=" + function_name_, "RUNNEL_PARAMS=" + params_json_};
    if (deadline != Clock::time_point::max()) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      out.push_back("RUNNEL_TIMEOUT_MS=" + std::to_string(std::max<std::int64_t>(0, left)));
    }
    return out;
  }

  std::filesystem::path OutputDir(const Event& event, Context& ctx) const {
    return ctx.Outputs().Root() / function_name_ / event.envelope.id;
  }

  std::vector<std::string> Environment(const Event& event, Context& ctx, Clock::time_point deadline) const {
    const auto& env = event.envelope;
    std::vector<std::string> out = CommonEnvironment(deadline);
    for (std::string& variable : std::vector<std::string>{
             "RUNNEL_ID=" + env.id,
             "RUNNEL_TOPIC=" + event.topic,
             "RUNNEL_PARTITION=" + std::to_string(event.partition),
             "RUNNEL_OFFSET=" + std::to_string(event.offset),
             "RUNNEL_ATTEMPT=" + std::to_string(env.attempt),
             "RUNNEL_HOP=" + std::to_string(env.hop),
             "RUNNEL_CONTENT_TYPE=" +
                 (env.content_type.empty() ? std::string("application/octet-stream") : env.content_type),
             "RUNNEL_OUTPUT_DIR=" + OutputDir(event, ctx).string(),
         }) {
      out.push_back(std::move(variable));
    }
    if (!event.key.empty() && event.key.find('\0') == std::string::npos)
      out.push_back("RUNNEL_KEY=" + event.key);
    if (!env.trace_id.empty()) out.push_back("RUNNEL_TRACE=" + env.trace_id);
    if (!env.trace_id.empty() && !env.span_id.empty()) {
      out.push_back("TRACEPARENT=" + FormatTraceparent({env.trace_id, env.span_id,
                                                        env.trace_flags.empty() ? "00" : env.trace_flags}));
    }
    if (!env.job_id.empty()) out.push_back("RUNNEL_JOB=" + env.job_id);
    if (!env.reply_to.empty()) out.push_back("RUNNEL_REPLY_TO=" + env.reply_to);
    if (env.file) {
      out.push_back(env.file->IsUrl() ? "RUNNEL_FILE_URL=" + env.file->url : "RUNNEL_FILE=" + env.file->path);
      out.push_back("RUNNEL_FILE_NAME=" + env.file->name);
      if (env.file->size) out.push_back("RUNNEL_FILE_SIZE=" + std::to_string(*env.file->size));
    }
    // Other headers; a value with a NUL byte cannot travel in the environment and is left out.
    for (const auto& h : env.extra) {
      if (h.value.find('\0') == std::string::npos) out.push_back(EnvName(h.name) + "=" + h.value);
    }
    return out;
  }

  Result Interpret(ProcessOutcome outcome, Context& ctx) const {
    const std::string program = argv_[0];
    const std::string reason = Trim(outcome.err_tail);
    if (!outcome.started)
      throw FunctionError(Errc::kInternal, fmt::format("cannot start {}", outcome.start_error));
    if (outcome.timed_out) {
      throw FunctionError(Errc::kTimeout, fmt::format("{} ran past its deadline and was killed{}{}", program,
                                                      reason.empty() ? "" : "; stderr: ", reason));
    }
    if (outcome.output_exceeded) {
      throw FunctionError(
          Errc::kLimitExceeded,
          fmt::format("{} wrote more than max_output {} bytes to stdout", program, max_output_));
    }
    if (outcome.signal != 0) {
      throw FunctionError(Errc::kInternal,
                          fmt::format("{} was killed by signal {} ({}){}{}", program, outcome.signal,
                                      ::strsignal(outcome.signal), reason.empty() ? "" : ": ", reason));
    }
    if (outcome.exit_code != 0) {
      const Errc code = outcome.exit_code == kExecBadInputExit ? Errc::kBadInput : Errc::kTransient;
      throw FunctionError(code, reason.empty()
                                    ? fmt::format("{} exited with status {}", program, outcome.exit_code)
                                    : reason);
    }
    if (!reason.empty()) ctx.Log().debug("{} stderr: {}", program, reason);
    std::string type = content_type_;
    if (type.empty()) {
      type = nlohmann::json::accept(outcome.out) ? "application/json" : "application/octet-stream";
    }
    return Result{std::move(outcome.out), std::move(type), {}};
  }

  std::vector<std::string> argv_;
  std::string working_dir_;
  nlohmann::json params_;
  std::string params_json_;
  std::size_t max_output_;
  std::string content_type_;
  std::string function_name_;
};

}  // namespace

std::unique_ptr<Function> MakeExecFunction(std::vector<std::string> argv, std::string working_dir,
                                           const nlohmann::json& params, std::string function_name) {
  if (argv.empty()) throw FunctionError(Errc::kBadConfig, "exec: no command given");
  const nlohmann::json p = params.is_object() ? params : nlohmann::json::object();
  std::size_t max_output = 16u << 20;
  if (auto it = p.find("max_output"); it != p.end()) {
    if (!it->is_number_integer() || it->get<std::int64_t>() < 1 || it->get<std::int64_t>() > (1LL << 30)) {
      throw FunctionError(Errc::kBadConfig,
                          fmt::format("exec: params.max_output {} is not 1..{}", it->dump(), 1LL << 30));
    }
    max_output = static_cast<std::size_t>(it->get<std::int64_t>());
  }
  std::string content_type;
  if (auto it = p.find("content_type"); it != p.end()) {
    if (!it->is_string() || it->get<std::string>().empty()) {
      throw FunctionError(Errc::kBadConfig, "exec: params.content_type must be a non-empty string");
    }
    content_type = it->get<std::string>();
  }
  if (p.contains("batch")) {
    throw FunctionError(Errc::kBadConfig,
                        "exec: params.batch is no longer a param: set the function's batch key instead, e.g. "
                        "batch: {size: 100, window: 500ms} (docs/config.md)");
  }
  return std::make_unique<ExecFunction>(std::move(argv), std::move(working_dir), p, max_output,
                                        std::move(content_type), std::move(function_name));
}

}  // namespace runnel::functions
