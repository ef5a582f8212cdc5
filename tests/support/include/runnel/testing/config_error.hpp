// What a config test compares: the ConfigError message of loading a file, with the file's path
// replaced by F, so that expected messages do not depend on the temporary directory.
#pragma once

#include <filesystem>
#include <string>

#include "runnel/core/error.hpp"

namespace runnel::testing {

// Runs `load(file)`; returns its ConfigError's message (the path of `file` at its start shown as
// F), or "(no error)" when it loads.
template <typename Load>
std::string ConfigErrorOf(const std::filesystem::path& file, Load&& load) {
  try {
    (void)load(file);
  } catch (const ConfigError& e) {
    std::string m = e.what();
    if (m.rfind(file.string(), 0) == 0) m = "F" + m.substr(file.string().size());
    return m;
  }
  return "(no error)";
}

}  // namespace runnel::testing
