// The one client of the running stack's control socket (endpoints.json `control`, docs/protocol.md
// §4.3): a typed request (runnel/core/control_messages.hpp), a deadline, the decoded reply. Used by
// `runnel status`, `trace`, `invoke`, `job`, `simulate` and `demo`.
#pragma once

#include <chrono>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "commands.hpp"
#include "runnel/core/control_messages.hpp"
#include "runnel/core/secret.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/security/curve.hpp"

namespace runnel::cli {

// A running stack as a client reaches it: its endpoints and what its sockets take from this client.
// NOLINTNEXTLINE(bugprone-exception-escape): its implicit move moves std::maps, not noexcept in libstdc++
struct StackAccess {
  nlohmann::json endpoints;
  std::optional<security::ClientKeys> keys;  // CURVE on
  std::string where;                         // the state dir or the token file, for messages
  // librdkafka options from --kafka-config or $RUNNEL_KAFKA_CONFIG (Resolve), for the Kafka clients
  // a command makes; endpoints["kafka"] already holds --kafka or the file's bootstrap.servers.
  std::map<std::string, std::string> kafka_options;
  std::map<std::string, Secret> kafka_secrets;

  // The state dir's endpoints.json (NoStackError when there is none) and, with CURVE, its local keys.
  static StackAccess Local(const StateDir& state);
  // What a join token from `runnel token create` gives: the stack's advertised endpoints and the
  // token's keys (ConfigError when the file is not a valid, unexpired token).
  static StackAccess Joined(const std::string& token_file);
  // --join when given, else the state dir; with the Kafka client flags (kafka_client.hpp) applied.
  // With a Kafka of its own (--kafka, $RUNNEL_KAFKA_BOOTSTRAP) a command needs no stack: without a
  // state dir or token it reaches Kafka only, each function on the topic of its name.
  static StackAccess Resolve(const CommonOptions& common);
};

// Adds --join TOKEN_FILE to a command that reaches a stack over ZeroMQ (and Kafka, for publishing).
void AddJoinOption(CLI::App* command, CommonOptions& common);

// The stack's reply to `request`, asked at its `control` endpoint on a fresh REQ socket (a stack
// that went away costs one timeout, never a stuck socket). Throws NoStackError with one clear line
// when no stack runs (no endpoint, or the pid in endpoints.json is gone), Error (retriable) when the
// stack does not answer within `timeout`, Error when the reply does not decode. A refusal is a
// reply: ok false and the stack's error.
ControlReply AskStack(const StackAccess& stack, const ControlRequest& request,
                      std::chrono::milliseconds timeout);

// AskStack, with a refusal thrown as ConfigError (the stack's error as the message): the answer's
// fields.
nlohmann::json AskStackOk(const StackAccess& stack, const ControlRequest& request,
                          std::chrono::milliseconds timeout);

// The stack's status ({"functions": [...], ...}, as `runnel status --json` prints it).
nlohmann::json QueryStatus(const StackAccess& stack, std::chrono::milliseconds timeout);

// Seconds from a command-line option, as the timeout these take.
inline std::chrono::milliseconds SecondsOption(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

}  // namespace runnel::cli
