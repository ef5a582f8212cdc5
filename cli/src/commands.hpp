// Each subcommand registers its flags on the app and returns the action to run when chosen.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>

namespace runnel::cli {

// Flags every command shares.
struct CommonOptions {
  std::string state_dir;     // --state-dir; empty means $RUNNEL_STATE_DIR or ./.runnel
  std::string log_format;    // --log-format human|json; empty: $RUNNEL_LOG_FORMAT, else human
  std::string join;          // --join TOKEN_FILE (the commands that take it): the stack from a join token
  std::string kafka;         // --kafka (client commands): bootstrap servers instead of the stack's
  std::string kafka_config;  // --kafka-config (client commands): a librdkafka properties file
};

// A subcommand and what runs when it is chosen; the action returns the exit code.
struct Command {
  CLI::App* app;
  std::function<int()> run;
};

// For a flag that takes a duration: the shared rule of runnel/core/duration.hpp (a unit is
// required: 30s, 500ms, 2m; "0" alone is 0), the option's value then set in seconds.
CLI::Validator DurationSeconds();

Command AddVersion(CLI::App& app, CommonOptions& common);
Command AddKafka(CLI::App& app, CommonOptions& common);
Command AddDemo(CLI::App& app, CommonOptions& common);
Command AddUp(CLI::App& app, CommonOptions& common);
Command AddPublish(CLI::App& app, CommonOptions& common);
Command AddResults(CLI::App& app, CommonOptions& common);
Command AddInvoke(CLI::App& app, CommonOptions& common);
Command AddUpload(CLI::App& app, CommonOptions& common);
Command AddDlq(CLI::App& app, CommonOptions& common);
Command AddLogs(CLI::App& app, CommonOptions& common);
Command AddWorker(CLI::App& app, CommonOptions& common);
Command AddConfig(CLI::App& app, CommonOptions& common);
Command AddJob(CLI::App& app, CommonOptions& common);
Command AddStatus(CLI::App& app, CommonOptions& common);
Command AddSimulate(CLI::App& app, CommonOptions& common);
Command AddTrace(CLI::App& app, CommonOptions& common);
Command AddToken(CLI::App& app, CommonOptions& common);
Command AddInit(CLI::App& app, CommonOptions& common);
Command AddCompletion(CLI::App& app, CommonOptions& common);  // walks `app` when run

}  // namespace runnel::cli
