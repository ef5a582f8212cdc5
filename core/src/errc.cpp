#include "runnel/core/errc.hpp"

#include <string>

namespace runnel {
namespace {

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runnel"; }
  std::string message(int value) const override { return std::string(ErrcName(static_cast<Errc>(value))); }
};

}  // namespace

const std::error_category& ErrorCategory() {
  static const Category category;
  return category;
}

std::string_view ErrcName(Errc e) {
  switch (e) {
    case Errc::kBadInput:
      return "bad-input";
    case Errc::kLimitExceeded:
      return "limit-exceeded";
    case Errc::kBadConfig:
      return "bad-config";
    case Errc::kUnknownFunction:
      return "unknown-function";
    case Errc::kTimeout:
      return "timeout";
    case Errc::kTransient:
      return "transient";
    case Errc::kInternal:
      return "internal";
  }
  return "internal";
}

bool IsRetriable(Errc e) { return e == Errc::kTimeout || e == Errc::kTransient || e == Errc::kInternal; }

}  // namespace runnel
