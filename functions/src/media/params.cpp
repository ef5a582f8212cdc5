#include "params.hpp"

#include <fmt/format.h>

#include <cmath>

#include "runnel/functions/function.hpp"

namespace runnel::functions::media {
namespace {

std::string AllowedList(std::initializer_list<std::string_view> allowed) {
  return fmt::format("{}", fmt::join(allowed, ", "));
}

}  // namespace

ParamReader::ParamReader(std::string_view function, const nlohmann::json& params,
                         std::initializer_list<std::string_view> known)
    : function_(function), params_(params) {
  if (!params_.is_object()) {
    throw FunctionError(Errc::kBadConfig,
                        fmt::format("{}: params must be an object, got {}", function_, params_.type_name()));
  }
  for (const auto& [key, value] : params_.items()) {
    bool found = false;
    for (std::string_view k : known) found = found || k == key;
    if (!found) Fail(key, fmt::format("unknown parameter (known: {})", AllowedList(known)));
  }
}

void ParamReader::Fail(std::string_view key, std::string_view why) const {
  throw FunctionError(Errc::kBadConfig, fmt::format("{}: params.{}: {}", function_, key, why));
}

bool ParamReader::Has(std::string_view key) const { return params_.contains(key); }

const nlohmann::json& ParamReader::Raw(std::string_view key) const {
  static const nlohmann::json kNull;
  auto it = params_.find(key);
  return it == params_.end() ? kNull : *it;
}

std::int64_t ParamReader::Int(std::string_view key, std::int64_t fallback, std::int64_t min,
                              std::int64_t max) const {
  return NestedInt(*this, {}, params_, key, fallback, min, max);
}

double ParamReader::Number(std::string_view key, double fallback, double min, double max) const {
  auto it = params_.find(key);
  if (it == params_.end()) return fallback;
  if (!it->is_number()) Fail(key, fmt::format("must be a number, got {}", it->type_name()));
  const double value = it->get<double>();
  if (!std::isfinite(value) || value < min || value > max) {
    Fail(key, fmt::format("{} is outside {}..{}", value, min, max));
  }
  return value;
}

bool ParamReader::Bool(std::string_view key, bool fallback) const {
  auto it = params_.find(key);
  if (it == params_.end()) return fallback;
  if (!it->is_boolean()) Fail(key, fmt::format("must be true or false, got {}", it->type_name()));
  return it->get<bool>();
}

std::string ParamReader::Choice(std::string_view key, std::string_view fallback,
                                std::initializer_list<std::string_view> allowed) const {
  auto it = params_.find(key);
  if (it == params_.end()) {
    if (fallback.empty()) Fail(key, fmt::format("is required (one of {})", AllowedList(allowed)));
    return std::string(fallback);
  }
  if (it->is_string()) {
    const auto& value = it->get_ref<const std::string&>();
    for (std::string_view a : allowed) {
      if (a == value) return value;
    }
  }
  Fail(key, fmt::format("{} is not one of {}", it->dump(), AllowedList(allowed)));
}

std::int64_t NestedInt(const ParamReader& reader, std::string_view where, const nlohmann::json& object,
                       std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) {
  auto it = object.find(key);
  if (it == object.end()) return fallback;
  const std::string name = where.empty() ? std::string(key) : fmt::format("{}.{}", where, key);
  if (!it->is_number_integer()) reader.Fail(name, fmt::format("must be an integer, got {}", it->dump()));
  // Unsigned JSON numbers above INT64_MAX arrive as uint64; they are out of range, not negative.
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(max)) {
    reader.Fail(name, fmt::format("{} is outside {}..{}", it->dump(), min, max));
  }
  const auto value = it->get<std::int64_t>();
  if (value < min || value > max) reader.Fail(name, fmt::format("{} is outside {}..{}", value, min, max));
  return value;
}

}  // namespace runnel::functions::media
