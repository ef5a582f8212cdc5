// Appends JSON text to a string. Hand-written rather than built with nlohmann::json: a batch result
// can hold thousands of aggregates, and building a DOM first roughly doubles the cost of rendering.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace runnel::functions::iot::json_text {

// A quoted, escaped JSON string: core's AppendJsonString (invalid UTF-8 becomes U+FFFD, so the
// output is always valid JSON).
void AppendString(std::string& out, std::string_view text);
// The shortest text that reads back to the same double; null when not finite (JSON has no NaN).
void AppendNumber(std::string& out, double value);
void AppendInt(std::string& out, std::int64_t value);

}  // namespace runnel::functions::iot::json_text
