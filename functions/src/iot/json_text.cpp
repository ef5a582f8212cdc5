#include "iot/json_text.hpp"

#include <charconv>
#include <cmath>

#include "runnel/core/json.hpp"

namespace runnel::functions::iot::json_text {

void AppendString(std::string& out, std::string_view text) { AppendJsonString(out, text); }

void AppendNumber(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out += "null";
    return;
  }
  // std::to_chars gives the shortest text that reads back to the same double, without fmt's
  // format-string handling (this runs several times per aggregate).
  char buffer[32];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

void AppendInt(std::string& out, std::int64_t value) {
  char buffer[24];
  const auto end = std::to_chars(buffer, buffer + sizeof buffer, value).ptr;
  out.append(buffer, static_cast<std::size_t>(end - buffer));
}

}  // namespace runnel::functions::iot::json_text
