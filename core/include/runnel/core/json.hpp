// JSON text from values that may hold bytes from functions, workers or users. nlohmann's dump()
// throws on invalid UTF-8, which would turn a function's odd error message into a crash; this
// replaces invalid sequences with U+FFFD instead.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace runnel {

// Appends `text` as a quoted JSON string, byte for byte as JsonText(text) writes it ('"' and '\\'
// escaped, \b \f \n \r \t by name, other control characters as \u00xx, valid UTF-8 as is, an
// invalid sequence as U+FFFD), without building a nlohmann value: the escaper of the hot paths
// that write JSON by hand (the outcome's meta frame, iot.ingest's results).
void AppendJsonString(std::string& out, std::string_view text);

inline std::string JsonText(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace runnel
