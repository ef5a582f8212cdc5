#include <fmt/format.h>

#include "commands.hpp"
#include "runnel/core/version.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::cli {

Command AddVersion(CLI::App& app, CommonOptions&) {
  auto* sub =
      app.add_subcommand("version", "Print Runnel's version and the versions of the libraries it runs on");
  return {sub, [] {
            fmt::print("runnel {}\n", Version());
            fmt::print("librdkafka {}\n", kafka::LibrdkafkaVersion());
            return 0;
          }};
}

}  // namespace runnel::cli
