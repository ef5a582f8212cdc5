// A value that must never reach a log line, an error message or a status reply: a Kafka password,
// a key. It prints as "***" (fmt and streams alike); the value itself is read only by Reveal(),
// at the one place that hands it to a library. There is no implicit conversion to a string.
#pragma once

#include <fmt/format.h>

#include <ostream>
#include <string>
#include <string_view>

namespace runnel {

class Secret {
 public:
  static constexpr std::string_view kMasked = "***";

  Secret() = default;
  explicit Secret(std::string value) : value_(std::move(value)) {}

  const std::string& Reveal() const { return value_; }
  bool Empty() const { return value_.empty(); }
  friend bool operator==(const Secret&, const Secret&) = default;
  friend std::ostream& operator<<(std::ostream& out, const Secret&) { return out << kMasked; }

 private:
  std::string value_;
};

}  // namespace runnel

template <>
struct fmt::formatter<runnel::Secret> : fmt::formatter<std::string_view> {
  template <typename FormatContext>
  auto format(const runnel::Secret&, FormatContext& ctx) const {
    return fmt::formatter<std::string_view>::format(runnel::Secret::kMasked, ctx);
  }
};
