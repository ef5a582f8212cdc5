// What client commands (publish, invoke, upload, dlq, results) need from a running stack: its
// endpoints, a producer for it, a function's topics, and a results subscription that is live
// before the caller publishes.
#pragma once

#include <chrono>
#include <deque>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "control_request.hpp"
#include "runnel/core/outcome.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/kafka/producer.hpp"
#include "runnel/security/curve.hpp"

namespace zmq {
class context_t;
class socket_t;
}  // namespace zmq

namespace runnel::cli {

struct FunctionTopics {
  std::string topic;
  std::string group;
  std::string dead_letter_topic;
};

class StackClient {
 public:
  // Reads endpoints.json; throws ConfigError with one clear line when no stack runs.
  explicit StackClient(const std::string& state_dir_flag);
  // A stack reached through `access` (a join token, or a state dir).
  explicit StackClient(StackAccess access);

  const nlohmann::json& Endpoints() const { return access_.endpoints; }
  // What the stack's sockets take from this client: a key when CURVE is on.
  const std::optional<security::ClientKeys>& Keys() const { return access_.keys; }
  const StackAccess& Access() const { return access_; }
  kafka::KafkaOptions Kafka() const;
  // Throws ConfigError naming the known functions when `function` is not served by the stack.
  FunctionTopics Function(const std::string& function) const;
  // The topics the stack's functions consume, sorted; nullopt when the state dir holds only a
  // broker (`runnel kafka`), which serves no function.
  std::optional<std::vector<std::string>> ServedTopics() const;
  // A producer for the stack, with the metadata of `topics` (those the command writes) fetched
  // (Producer::Prepare: a CLI command's first record goes out at once, not after librdkafka's 1 s
  // metadata timer). On the embedded broker it waits rather than outrun the log cap.
  std::unique_ptr<kafka::Producer> Producer(const std::vector<std::string>& topics) const;

 private:
  StackAccess access_;
};

// A subscription to the results feed. The constructor returns once the feed has acknowledged the
// connection (its welcome message), so outcomes published after that reach it.
class ResultsSubscription {
 public:
  ResultsSubscription(const StackClient& stack, const std::vector<std::string>& prefixes,
                      std::chrono::milliseconds connect_timeout = std::chrono::seconds(5));
  ~ResultsSubscription();
  ResultsSubscription(const ResultsSubscription&) = delete;
  ResultsSubscription& operator=(const ResultsSubscription&) = delete;

  // The next outcome, or nullopt when none arrived within `timeout`. One feed message may carry
  // several outcomes (docs/protocol.md §4.1): the rest wait here for the next calls.
  std::optional<Outcome> Next(std::chrono::milliseconds timeout);

 private:
  std::unique_ptr<zmq::context_t> ctx_;
  std::unique_ptr<zmq::socket_t> socket_;
  std::deque<Outcome> received_;
  bool warned_ = false;  // a malformed outcome was reported on stderr
};

// A MIME type from a file name's extension (application/octet-stream when unknown).
std::string ContentTypeFor(const std::filesystem::path& path);

// The groups whose commits free room on `topic` in the running stack (for the retention guard).
std::vector<std::string> GroupsConsuming(const nlohmann::json& endpoints, const std::string& topic);

}  // namespace runnel::cli
