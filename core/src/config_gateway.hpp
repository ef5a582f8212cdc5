// runnel.yaml's `gateway:` (core/gateway_config.hpp): read by config.cpp's parser, which hands
// over how it reports an error. Private to core/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <filesystem>
#include <set>
#include <string>

#include "config_filter.hpp"
#include "runnel/core/gateway_config.hpp"

namespace runnel::detail {

// `node` is the value of `gateway`; `functions` the stack's function names (tokens name them);
// relative paths resolve against `dir`.
GatewayConfig ParseGateway(const YAML::Node& node, const std::set<std::string>& functions,
                           const std::filesystem::path& dir, const ConfigFail& fail);

}  // namespace runnel::detail
