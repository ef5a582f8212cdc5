// `runnel logs FUNCTION`: the worker logs of a function in the running stack
// (<state dir>/logs/<function>/<worker>.log), each line prefixed by its worker; --follow keeps
// printing new lines until Ctrl-C.
#include <fmt/format.h>

#include <fstream>
#include <map>

#include "commands.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/signals.hpp"
#include "runnel/core/state_dir.hpp"

namespace runnel::cli {

Command AddLogs(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::string function;
    bool follow = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand("logs", "Print a function's worker logs");
  sub->add_option("function", flags->function, "The function")->required();
  sub->add_flag("-f,--follow", flags->follow, "Keep printing new lines until Ctrl-C");
  return {sub, [flags, &common] {
            ShutdownSignals signals;
            const StateDir state = StateDir::Resolve(common.state_dir);
            const auto dir = state.Root() / "logs" / flags->function;
            if (!std::filesystem::is_directory(dir)) {
              throw ConfigError(fmt::format("no worker logs for '{}' under {}", flags->function,
                                            (state.Root() / "logs").string()));
            }
            std::map<std::filesystem::path, std::streamoff> read;  // how far each log has been printed
            for (;;) {
              std::vector<std::filesystem::path> files;
              for (const auto& entry : std::filesystem::directory_iterator(dir)) {
                if (entry.path().extension() == ".log") files.push_back(entry.path());
              }
              std::sort(files.begin(), files.end());
              for (const auto& file : files) {
                std::ifstream in(file);
                in.seekg(read[file]);
                std::string line;
                while (std::getline(in, line)) {
                  if (in.eof()) break;  // a line still being written: print it once it is whole
                  fmt::print("[{}] {}\n", file.stem().string(), line);
                  read[file] = in.tellg();
                }
              }
              std::fflush(stdout);
              if (!flags->follow || signals.Wait(std::chrono::milliseconds(250)) != 0) return 0;
            }
          }};
}

}  // namespace runnel::cli
