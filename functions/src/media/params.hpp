// Reads a media function's params (its config) once, in the factory: typed values with defaults
// and ranges, and an error naming the function and the key for anything it cannot use.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>
#include <vector>

namespace runnel::functions::media {

class ParamReader {
 public:
  // Throws FunctionError(kBadConfig) when `params` is not an object or holds a key not in `known`.
  ParamReader(std::string_view function, const nlohmann::json& params,
              std::initializer_list<std::string_view> known);

  bool Has(std::string_view key) const;
  std::int64_t Int(std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max) const;
  double Number(std::string_view key, double fallback, double min, double max) const;
  bool Bool(std::string_view key, bool fallback) const;
  // One of `allowed`; an empty `fallback` makes the key required.
  std::string Choice(std::string_view key, std::string_view fallback,
                     std::initializer_list<std::string_view> allowed) const;
  const nlohmann::json& Raw(std::string_view key) const;

  // "<function>: params.<key>: <why>" as FunctionError(kBadConfig).
  [[noreturn]] void Fail(std::string_view key, std::string_view why) const;
  std::string_view Function() const { return function_; }

 private:
  std::string function_;
  const nlohmann::json& params_;
};

// Reads an integer from a nested object: `where` is its path ("sizes[0]"), so errors say
// "params.sizes[0].width: ..."; an empty `where` reads a top-level key.
std::int64_t NestedInt(const ParamReader& reader, std::string_view where, const nlohmann::json& object,
                       std::string_view key, std::int64_t fallback, std::int64_t min, std::int64_t max);

}  // namespace runnel::functions::media
