#include "runnel/cli/app.hpp"

#include <fmt/format.h>

#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/version.hpp"

namespace runnel::cli {
namespace {

// The commands directly under `app` (not its nameless option groups, which CLI11 also keeps as
// subcommands).
std::vector<CLI::App*> Children(CLI::App& app) {
  return app.get_subcommands([](CLI::App* sub) { return !sub->get_name().empty(); });
}
std::vector<const CLI::App*> Children(const CLI::App& app) {
  return app.get_subcommands([](const CLI::App* sub) { return !sub->get_name().empty(); });
}

// "runnel job run": the chain of commands the parser entered.
std::string CommandPath(const CLI::App& app) {
  std::string path = "runnel";
  for (const CLI::App* at = &app;;) {
    const auto parsed = at->get_subcommands();
    if (parsed.empty()) return path;
    at = parsed.front();
    path += " " + at->get_name();
  }
}

// The innermost command the parser entered (the app itself when none).
const CLI::App& Innermost(const CLI::App& app) {
  const CLI::App* at = &app;
  while (!at->get_subcommands().empty()) at = at->get_subcommands().front();
  return *at;
}

// --state-dir and --log-format on `on` and every command under it (`config check`, `job run`...).
void AddCommonOptions(CLI::App& on, CommonOptions& common) {
  on.add_option("--state-dir", common.state_dir,
                "Where a running stack keeps endpoints.json (default $RUNNEL_STATE_DIR or ./.runnel)");
  on.add_option(
        "--log-format", common.log_format,
        "Log lines as human text (the default) or JSON objects, one per line; worker processes inherit it "
        "(env RUNNEL_LOG_FORMAT)")
      ->check(CLI::IsMember({"human", "json"}));
  for (CLI::App* sub : Children(on)) AddCommonOptions(*sub, common);
}

// A command made of commands (runnel itself, `config`, `job`) takes what follows it as extras, so
// that an unknown name is reported here, by name, instead of CLI11's "A subcommand is required".
void LetGroupsTakeExtras(CLI::App& on) {
  const auto subs = Children(on);
  if (subs.empty()) return;
  on.require_subcommand(0, 1);
  on.allow_extras();
  for (CLI::App* sub : subs) LetGroupsTakeExtras(*sub);
}

// After a parse: what the command line lacks or has too much of, as one line to follow "runnel: ";
// empty when it is complete.
std::string UsageProblem(const CLI::App& app) {
  const CLI::App& at = Innermost(app);
  const std::string path = CommandPath(app);
  const auto extras = app.remaining(true);
  const bool is_group = !Children(at).empty();
  if (!extras.empty()) {
    const std::string& first = extras.front();
    if (is_group && !first.empty() && first[0] != '-') {
      const std::string name =
          path == "runnel" ? first : path.substr(std::string_view("runnel ").size()) + " " + first;
      return fmt::format("unknown command '{}'; run '{} --help'", name, path);
    }
    return fmt::format("unexpected argument '{}'; run '{} --help'", first, path);
  }
  if (is_group) {
    std::string names;
    for (const CLI::App* sub : Children(at)) names += (names.empty() ? "" : ", ") + sub->get_name();
    return path == "runnel" ? fmt::format("a command is required ({}); run 'runnel --help'", names)
                            : fmt::format("'{}' needs a command ({}); run '{} --help'", path, names, path);
  }
  return {};
}

// The --log-format given on the command line, read from the parser's results: when parsing fails,
// the option may not have been stored into CommonOptions yet.
std::string LogFormatGiven(const CLI::App& app) {
  std::string given;
  for (const CLI::App* at = &app;;) {
    if (const CLI::Option* option = at->get_option_no_throw("--log-format"); option && option->count() > 0) {
      given = option->results().back();
    }
    if (at->get_subcommands().empty()) return given;
    at = at->get_subcommands().front();
  }
}

// Whether log lines are JSON (--log-format json or RUNNEL_LOG_FORMAT=json: log::SetFormat exports
// the flag's choice to the variable).
bool JsonLogs() {
  const char* format = std::getenv("RUNNEL_LOG_FORMAT");
  return format != nullptr && std::string_view(format) == "json";
}

// The line that ends a failed command: plain text, or with --log-format json a JSON log line like
// every other line the process writes.
void SayFatal(const std::string& message) {
  if (JsonLogs()) {
    const auto logger = log::kCli.Logger();
    if (!logger->should_log(spdlog::level::err)) logger->set_level(spdlog::level::err);
    logger->error("{}", message);
    logger->flush();
  } else {
    fmt::print(stderr, "runnel: {}\n", message);
  }
}

}  // namespace

int Main(int argc, char** argv) {
  log::ConfigureFromEnv();
  CLI::App app{"Runnel: self-hosted event processing on Kafka, with workers that scale to zero."};
  app.set_version_flag("--version", "runnel " + std::string(Version()));
  CommonOptions common;

  const std::vector<Command> commands = {
      AddVersion(app, common), AddKafka(app, common),   AddDemo(app, common),      AddUp(app, common),
      AddPublish(app, common), AddResults(app, common), AddWorker(app, common),    AddInvoke(app, common),
      AddUpload(app, common),  AddDlq(app, common),     AddLogs(app, common),      AddConfig(app, common),
      AddJob(app, common),     AddStatus(app, common),  AddSimulate(app, common),  AddTrace(app, common),
      AddToken(app, common),   AddInit(app, common),    AddCompletion(app, common)};
  AddCommonOptions(app, common);
  LetGroupsTakeExtras(app);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() != 0 && LogFormatGiven(app) == "json") log::SetFormat(log::Format::kJson);
    if (e.get_exit_code() == 0) {  // --help, --version
      app.exit(e);
      return exit_code::kOk;
    }
    SayFatal(fmt::format("{}; run '{} --help'", e.what(), CommandPath(app)));
    return exit_code::kUsage;
  }
  try {
    if (!common.log_format.empty()) log::SetFormat(log::ParseFormat(common.log_format));
    if (const std::string problem = UsageProblem(app); !problem.empty()) {
      SayFatal(problem);
      return exit_code::kUsage;
    }
    for (const Command& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const NoStackError& e) {
    SayFatal(e.what());
    return exit_code::kNoStack;
  } catch (const Error& e) {
    SayFatal(e.what());
    return exit_code::kFailure;
  } catch (const std::exception& e) {
    SayFatal(fmt::format("unexpected error: {}", e.what()));
    return exit_code::kFailure;
  }
  return exit_code::kUsage;
}

}  // namespace runnel::cli
