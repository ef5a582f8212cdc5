// One request to the running stack's control socket (endpoints.json `status`: the autoscaler's
// REP socket, which answers `status` and `trace <event id>`), with a deadline.
#pragma once

#include <nlohmann/json.hpp>
#include <string_view>

#include "runnel/core/state_dir.hpp"

namespace runnel::cli {

// The parsed JSON reply. Throws ConfigError with one clear line when no stack runs in `state`
// (or its endpoints.json is stale), Error when it does not answer within `timeout_s` or the
// answer is not a JSON object.
nlohmann::json AskStack(const StateDir& state, std::string_view request, double timeout_s);

}  // namespace runnel::cli
