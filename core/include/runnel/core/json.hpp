// JSON text from values that may hold bytes from functions, workers or users. nlohmann's dump()
// throws on invalid UTF-8, which would turn a function's odd error message into a crash; this
// replaces invalid sequences with U+FFFD instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

namespace runnel {

inline std::string JsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace runnel
