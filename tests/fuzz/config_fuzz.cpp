// runnel.yaml: the YAML parse and every key's validation (core/src/config.cpp, ParseStackConfig),
// with ${VAR} expansion of its values. Input: the file's text. Oracle: it loads or throws
// ConfigError (file:line: key: reason); any other exception is a finding, as the CLI would show
// it without a line.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const runnel::StackConfig config = runnel::ParseStackConfig(text, "/runnel-fuzz/runnel.yaml");
    for (const auto& f : config.functions) {
      if (config.Find(f.name) != &f) std::abort();  // names are unique
    }
  } catch (const runnel::ConfigError&) {
  }
  return 0;
}
