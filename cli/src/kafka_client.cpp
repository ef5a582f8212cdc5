#include "kafka_client.hpp"

#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <cstdlib>
#include <fstream>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

namespace runnel::cli {
namespace {

std::string Trim(const std::string& s) {
  const auto start = s.find_first_not_of(" \t\r");
  if (start == std::string::npos) return "";
  const auto end = s.find_last_not_of(" \t\r");
  return s.substr(start, end - start + 1);
}

std::string Env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr ? value : "";
}

}  // namespace

void AddKafkaClientFlags(CLI::App* command, CommonOptions& common) {
  command->add_option(
      "--kafka", common.kafka,
      "Kafka bootstrap servers (host:port,...) instead of the stack's; default $RUNNEL_KAFKA_BOOTSTRAP");
  command
      ->add_option("--kafka-config", common.kafka_config,
                   "librdkafka options for that Kafka from a properties file (key=value lines: "
                   "security.protocol, sasl.*, ssl.*); default $RUNNEL_KAFKA_CONFIG")
      ->check(CLI::ExistingFile);
}

KafkaClientOptions ReadKafkaProperties(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw ConfigError(fmt::format("{}: cannot read the Kafka client config", file));
  KafkaClientOptions out;
  std::string line;
  for (int number = 1; std::getline(in, line); ++number) {
    const std::string text = Trim(line);
    if (text.empty() || text[0] == '#' || text[0] == '!') continue;
    const auto eq = text.find('=');
    const std::string key = eq == std::string::npos ? "" : Trim(text.substr(0, eq));
    if (key.empty()) {
      throw ConfigError(fmt::format(
          "{}:{}: expected key=value (a librdkafka option, e.g. security.protocol=SASL_SSL)", file, number));
    }
    std::string value = Trim(text.substr(eq + 1));
    if (key == "bootstrap.servers") {
      out.bootstrap = std::move(value);
    } else if (IsSensitiveKafkaOption(key)) {
      out.secrets.insert_or_assign(key, Secret(std::move(value)));
    } else {
      out.options[key] = std::move(value);
    }
  }
  return out;
}

KafkaClientOptions ResolveKafkaClient(const CommonOptions& common) {
  const std::string file = !common.kafka_config.empty() ? common.kafka_config : Env("RUNNEL_KAFKA_CONFIG");
  KafkaClientOptions out = file.empty() ? KafkaClientOptions{} : ReadKafkaProperties(file);
  const std::string bootstrap = !common.kafka.empty() ? common.kafka : Env("RUNNEL_KAFKA_BOOTSTRAP");
  if (!bootstrap.empty()) out.bootstrap = bootstrap;
  return out;
}

}  // namespace runnel::cli
