#include "runnel/cli/app.hpp"

#include <fmt/format.h>

#include <string>
#include <vector>

#include "commands.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/version.hpp"

namespace runnel::cli {

int Main(int argc, char** argv) {
  log::ConfigureFromEnv();
  CLI::App app{"Runnel: self-hosted event processing on Kafka, with workers that scale to zero."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "runnel " + std::string(Version()));
  CommonOptions common;

  const std::vector<Command> commands = {AddVersion(app, common), AddKafka(app, common), AddDemo(app, common),
                                         AddUp(app, common),      AddPublish(app, common), AddResults(app, common),
                                         AddWorker(app, common),  AddInvoke(app, common),  AddUpload(app, common),
                                         AddDlq(app, common),     AddLogs(app, common),    AddConfig(app, common),
                                         AddJob(app, common),     AddStatus(app, common),  AddSimulate(app, common),
                                         AddTrace(app, common)};
  const auto add_log_format = [&common](CLI::App& on) {
    on.add_option("--log-format", common.log_format,
                  "Log lines as human text (the default) or JSON objects, one per line; worker processes inherit it "
                  "(env RUNNEL_LOG_FORMAT)")
        ->check(CLI::IsMember({"human", "json"}));
  };
  add_log_format(app);
  for (const Command& command : commands) {
    command.app->add_option("--state-dir", common.state_dir,
                            "Where a running stack keeps endpoints.json (default $RUNNEL_STATE_DIR or ./.runnel)");
    add_log_format(*command.app);
  }

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  try {
    if (!common.log_format.empty()) log::SetFormat(log::ParseFormat(common.log_format));
    for (const Command& command : commands) {
      if (command.app->parsed()) return command.run();
    }
  } catch (const Error& e) {
    fmt::print(stderr, "runnel: {}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "runnel: unexpected error: {}\n", e.what());
    return 1;
  }
  return 2;
}

}  // namespace runnel::cli
