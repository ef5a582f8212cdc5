// Typed reads of a JSON object that came from a peer, for the message codecs: every read checks
// presence, type and range, and the first failure is kept as a DecodeError naming the field.
// Nothing here throws on the object's contents. Private to core/.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <string_view>

#include "runnel/core/decode.hpp"

namespace runnel::detail {

// `bytes` as one JSON object of at most `max_bytes` bytes; `what` names the message in errors.
Decoded<nlohmann::json> ParseObject(std::string_view bytes, std::string_view what, std::size_t max_bytes);

class Fields {
 public:
  Fields(const nlohmann::json& object, std::string_view what) : object_(object), what_(what) {}

  // Each returns true when `out` was set or the field is absent and optional (out unchanged);
  // false, keeping the first error, when a required field is absent or a value is unfit.
  bool Int(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max, bool required);
  bool String(const char* key, std::string& out, std::size_t max_bytes, bool required);
  bool Bool(const char* key, bool& out, bool required);
  bool Object(const char* key, nlohmann::json& out, bool required);
  // The field's value when present (any type), else null.
  const nlohmann::json* Find(const char* key) const;

  bool Failed() const { return error_.has_value(); }
  const DecodeError& Error() const { return *error_; }
  bool Fail(DecodeErrc reason, std::string message);

 private:
  const nlohmann::json& object_;
  std::string_view what_;
  std::optional<DecodeError> error_;
};

}  // namespace runnel::detail
