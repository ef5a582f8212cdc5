// Requests to the running stack's control socket (endpoints.json `status`: the autoscaler's REP
// socket, which answers `status`, `trace <event id>` and `outcome <event id>`), each with a deadline.
#pragma once

#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string_view>

namespace runnel::cli {

// The parsed JSON reply to `request` (an encoded StatusRequest, runnel/core/control_messages.hpp), asked at
// `endpoints`' `status` endpoint. Throws NoStackError with one clear line when no stack runs (no endpoint, or
// the pid in endpoints.json is gone; `state_root` names the state dir in that message), Error (retriable)
// when the stack does not answer within `timeout`, Error when the answer is not a JSON object.
nlohmann::json AskStack(const nlohmann::json& endpoints, const std::filesystem::path& state_root,
                        std::string_view request, std::chrono::milliseconds timeout);

// AskStack(..., "status", ...), checked to be a status ({"functions": [...]}, see
// `runnel status --json`).
nlohmann::json QueryStatus(const nlohmann::json& endpoints, const std::filesystem::path& state_root,
                           std::chrono::milliseconds timeout);

// Seconds from a command-line option, as the timeout these take.
inline std::chrono::milliseconds SecondsOption(double seconds) {
  return std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

}  // namespace runnel::cli
