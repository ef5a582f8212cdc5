#include "runnel/core/decode.hpp"

#include <fmt/format.h>

#include "json_fields.hpp"

namespace runnel {

std::string_view DecodeErrcName(DecodeErrc reason) {
  switch (reason) {
    case DecodeErrc::kEmpty:
      return "empty";
    case DecodeErrc::kOversized:
      return "oversized";
    case DecodeErrc::kNotUtf8:
      return "not-utf8";
    case DecodeErrc::kNotJson:
      return "not-json";
    case DecodeErrc::kWrongType:
      return "wrong-type";
    case DecodeErrc::kMissingField:
      return "missing-field";
    case DecodeErrc::kOutOfRange:
      return "out-of-range";
    case DecodeErrc::kBadHeader:
      return "bad-header";
    case DecodeErrc::kBadFrames:
      return "bad-frames";
    case DecodeErrc::kUnknownCommand:
      return "unknown-command";
    case DecodeErrc::kNoSession:
      return "no-session";
    case DecodeErrc::kForeignToken:
      return "foreign-token";
  }
  return "unknown";
}

bool IsValidUtf8(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size()) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // the range of the second byte
    if (c >= 0xC2 && c <= 0xDF) {
      extra = 1;
    } else if (c >= 0xE0 && c <= 0xEF) {
      extra = 2;
      if (c == 0xE0) lo = 0xA0;  // overlong
      if (c == 0xED) hi = 0x9F;  // surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      extra = 3;
      if (c == 0xF0) lo = 0x90;  // overlong
      if (c == 0xF4) hi = 0x8F;  // past U+10FFFF
    } else {
      return false;
    }
    if (s.size() - i <= extra) return false;
    const auto second = static_cast<unsigned char>(s[i + 1]);
    if (second < lo || second > hi) return false;
    for (std::size_t k = 2; k <= extra; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += extra + 1;
  }
  return true;
}

namespace detail {

Decoded<nlohmann::json> ParseObject(std::string_view bytes, std::string_view what, std::size_t max_bytes) {
  if (bytes.empty())
    return {DecodeErrc::kEmpty, fmt::format("{}: empty body (a JSON object is expected)", what)};
  if (bytes.size() > max_bytes) {
    return {DecodeErrc::kOversized,
            fmt::format("{}: {} bytes, over the limit of {}", what, bytes.size(), max_bytes)};
  }
  if (!IsValidUtf8(bytes)) return {DecodeErrc::kNotUtf8, fmt::format("{}: not valid UTF-8", what)};
  auto j = nlohmann::json::parse(bytes, nullptr, false);
  if (j.is_discarded()) return {DecodeErrc::kNotJson, fmt::format("{}: not JSON", what)};
  if (!j.is_object()) {
    return {DecodeErrc::kWrongType,
            fmt::format("{}: a JSON {} where an object is expected", what, j.type_name())};
  }
  return j;
}

bool Fields::Fail(DecodeErrc reason, std::string message) {
  if (!error_) error_ = DecodeError{reason, fmt::format("{}: {}", what_, message)};
  return false;
}

const nlohmann::json* Fields::Find(const char* key) const {
  const auto it = object_.find(key);
  return it == object_.end() ? nullptr : &*it;
}

bool Fields::Int(const char* key, std::int64_t& out, std::int64_t min, std::int64_t max, bool required) {
  const auto* v = Find(key);
  if (v == nullptr)
    return required ? Fail(DecodeErrc::kMissingField, fmt::format("'{}' is missing", key)) : true;
  if (!v->is_number_integer()) {
    return Fail(DecodeErrc::kWrongType,
                fmt::format("'{}' must be an integer, not a {}", key, v->type_name()));
  }
  std::int64_t n = 0;
  if (v->is_number_unsigned()) {
    const auto u = v->get<std::uint64_t>();
    if (u > static_cast<std::uint64_t>(max)) {
      return Fail(DecodeErrc::kOutOfRange, fmt::format("'{}' is {}, over {}", key, u, max));
    }
    n = static_cast<std::int64_t>(u);
  } else {
    n = v->get<std::int64_t>();
  }
  if (n < min || n > max) {
    return Fail(DecodeErrc::kOutOfRange, fmt::format("'{}' is {}, outside {}..{}", key, n, min, max));
  }
  out = n;
  return true;
}

bool Fields::String(const char* key, std::string& out, std::size_t max_bytes, bool required) {
  const auto* v = Find(key);
  if (v == nullptr)
    return required ? Fail(DecodeErrc::kMissingField, fmt::format("'{}' is missing", key)) : true;
  if (!v->is_string()) {
    return Fail(DecodeErrc::kWrongType, fmt::format("'{}' must be a string, not a {}", key, v->type_name()));
  }
  const auto& s = v->get_ref<const std::string&>();
  if (s.size() > max_bytes) {
    return Fail(DecodeErrc::kOutOfRange, fmt::format("'{}' is {} bytes, over {}", key, s.size(), max_bytes));
  }
  out = s;
  return true;
}

bool Fields::Bool(const char* key, bool& out, bool required) {
  const auto* v = Find(key);
  if (v == nullptr)
    return required ? Fail(DecodeErrc::kMissingField, fmt::format("'{}' is missing", key)) : true;
  if (!v->is_boolean()) {
    return Fail(DecodeErrc::kWrongType,
                fmt::format("'{}' must be true or false, not a {}", key, v->type_name()));
  }
  out = v->get<bool>();
  return true;
}

bool Fields::Object(const char* key, nlohmann::json& out, bool required) {
  const auto* v = Find(key);
  if (v == nullptr)
    return required ? Fail(DecodeErrc::kMissingField, fmt::format("'{}' is missing", key)) : true;
  if (!v->is_object()) {
    return Fail(DecodeErrc::kWrongType, fmt::format("'{}' must be an object, not a {}", key, v->type_name()));
  }
  out = *v;
  return true;
}

}  // namespace detail
}  // namespace runnel
