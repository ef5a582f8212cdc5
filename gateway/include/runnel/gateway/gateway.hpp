// The HTTP gateway `runnel up` serves (`gateway:` in runnel.yaml; gateway/README.md has the
// endpoints): a function called over HTTP, synchronously or not, an outcome looked up by event id,
// a file uploaded to a function. Every call is an event through Kafka like any other. Served by
// civetweb on its own threads; construct and destroy from one thread.
#pragma once

#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "runnel/core/config.hpp"
#include "runnel/gateway/pending_calls.hpp"
#include "runnel/kafka/kafka.hpp"

namespace runnel::gateway {

class Gateway {
 public:
  struct Options {
    GatewayConfig config;
    std::vector<FunctionSpec> functions;
    kafka::KafkaOptions kafka;
    bool in_memory = false;  // the broker keeps its log in memory: publish with the retention guard
    std::filesystem::path state_dir;
    // Where the dispatchers' outcomes of synchronous calls arrive (telemetry's call sink).
    std::shared_ptr<PendingCalls> calls;
    // The stack's reply to the control request `outcome <id>` (docs/protocol.md §4.4), as its JSON
    // text: what GET /outcomes/ID answers from. Called on the gateway's threads.
    std::function<std::string(const std::string& id)> outcome_of;
  };

  // Binds and serves; throws ConfigError when the address cannot be bound or the upload dir made.
  explicit Gateway(Options options);
  // Waiting calls are answered 503 at once; returns when every request has ended.
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  // http://HOST:PORT (the bound port; loopback for a wildcard bind).
  std::string Url() const;
  // The stack's token (<state dir>/gateway.token, mode 0600).
  std::filesystem::path TokenFile() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace runnel::gateway
