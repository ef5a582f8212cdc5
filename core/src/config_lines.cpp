#include "runnel/core/config_lines.hpp"

#include <yaml-cpp/yaml.h>

namespace runnel {

int ConfigLine(const std::string& file, const std::vector<ConfigPathStep>& path) {
  try {
    YAML::Node node = YAML::LoadFile(file);
    for (const ConfigPathStep& step : path) {
      if (const auto* key = std::get_if<std::string>(&step)) {
        if (!node.IsMap() || !node[*key]) return 0;
        node = node[*key];
      } else {
        const std::size_t index = std::get<std::size_t>(step);
        if (!node.IsSequence() || index >= node.size()) return 0;
        node = node[index];
      }
    }
    return node.Mark().is_null() ? 0 : node.Mark().line + 1;
  } catch (const YAML::Exception&) {
    return 0;
  }
}

}  // namespace runnel
