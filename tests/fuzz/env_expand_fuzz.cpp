// ${VAR}, ${VAR:-default}, ${VAR:?message} and $$ in runnel.yaml values (core/src/env_expand.cpp).
// Input: the value's text. The environment holds SET=value, EMPTY= and DOLLAR=${SET} (a value
// that must be inserted as it is, never expanded again). Oracle: ExpandEnv returns or throws
// ConfigError; a text without '$' comes back unchanged.
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/core/env_expand.hpp"
#include "runnel/core/error.hpp"

namespace {

std::optional<std::string> Lookup(const std::string& name) {
  if (name == "SET") return "value";
  if (name == "EMPTY") return "";
  if (name == "DOLLAR") return "${SET}";
  return std::nullopt;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    const std::string out = runnel::ExpandEnv(text, Lookup);
    if (text.find('$') == std::string_view::npos && out != text) std::abort();
  } catch (const runnel::ConfigError&) {
  }
  return 0;
}
