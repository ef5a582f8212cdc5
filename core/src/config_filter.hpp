// runnel.yaml's `filter` of a function (core/event_filter.hpp): read by config.cpp's parser, which
// hands over how it reports an error. Private to core/.
#pragma once

#include <yaml-cpp/yaml.h>

#include <functional>
#include <string>

#include "runnel/core/event_filter.hpp"

namespace runnel::detail {

// Throws (ConfigError with file, line and key); never returns.
using ConfigFail =
    std::function<void(const YAML::Node& node, const std::string& key, const std::string& why)>;

// `node` is the value of `where` (e.g. functions[0].filter).
EventFilter ParseEventFilter(const YAML::Node& node, const std::string& where, const ConfigFail& fail);

}  // namespace runnel::detail
