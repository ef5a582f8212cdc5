// The Kafka a client command (publish, invoke, upload, dlq, simulate) talks to when it runs off the
// stack's host or against a Kafka with SASL/TLS: `--kafka HOST:PORT,...` (or $RUNNEL_KAFKA_BOOTSTRAP)
// and `--kafka-config FILE` (or $RUNNEL_KAFKA_CONFIG), a librdkafka properties file like Kafka's own
// client.properties: `key=value` lines, `#` or `!` comments. The options librdkafka flags
// sensitive (sasl.password, ssl.key.password, ...) are kept as Secret, never printed.
#pragma once

#include <map>
#include <string>

#include "commands.hpp"
#include "runnel/core/secret.hpp"

namespace CLI {
class App;
}

namespace runnel::cli {

struct KafkaClientOptions {
  std::string bootstrap;  // empty: the stack's (endpoints.json or the join token)
  std::map<std::string, std::string> options;
  std::map<std::string, Secret> secrets;
};

// Adds --kafka and --kafka-config to `command`, into `common`.
void AddKafkaClientFlags(CLI::App* command, CommonOptions& common);

// The flags, else the environment; the file read and checked (ConfigError naming file:line).
KafkaClientOptions ResolveKafkaClient(const CommonOptions& common);

// A properties file's options: ConfigError with file:line for a line that is not key=value.
KafkaClientOptions ReadKafkaProperties(const std::string& file);

}  // namespace runnel::cli
