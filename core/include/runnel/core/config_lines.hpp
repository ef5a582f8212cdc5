// Where a key of a runnel.yaml is, for errors found after the config was loaded (`runnel up`'s
// checks against the Kafka client's limits): the line to name beside the file and the key.
#pragma once

#include <cstddef>
#include <string>
#include <variant>
#include <vector>

namespace runnel {

// One step of a key path: a mapping key, or a list index.
using ConfigPathStep = std::variant<std::string, std::size_t>;

// The 1-based line of the value at `path` in `file` (e.g. {"functions", 1, "max_payload"} or
// {"kafka", "options", "message.max.bytes"}); 0 when the file cannot be read or has no such key.
int ConfigLine(const std::string& file, const std::vector<ConfigPathStep>& path);

}  // namespace runnel
