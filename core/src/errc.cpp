#include "runnel/core/errc.hpp"

#include <string>

namespace runnel {
namespace {

constexpr bool TableInOrder() {
  for (std::size_t i = 0; i < kErrorKinds.size(); ++i) {
    if (static_cast<std::size_t>(kErrorKinds[i].kind) != i + 1) return false;
  }
  return true;
}
static_assert(TableInOrder(), "kErrorKinds is indexed by ErrorKind - 1");
static_assert(kErrorKinds.size() == static_cast<std::size_t>(ErrorKind::kUndelivered));
static_assert(KindOf(Errc::kInternal) == ErrorKind::kInternal && ErrcName(Errc::kBadInput) == "bad-input");

class Category final : public std::error_category {
 public:
  const char* name() const noexcept override { return "runnel"; }
  std::string message(int value) const override { return std::string(ErrcName(ErrcFromCode(value))); }
};

}  // namespace

const std::error_category& ErrorCategory() {
  static const Category kCategory;
  return kCategory;
}

std::optional<ErrorKind> ParseErrorKind(std::string_view name) {
  for (const ErrorKindInfo& info : kErrorKinds) {
    if (info.name == name) return info.kind;
  }
  return std::nullopt;
}

std::optional<Errc> ParseErrc(std::string_view name) {
  const auto kind = ParseErrorKind(name);
  if (!kind || static_cast<int>(*kind) > kErrcMax) return std::nullopt;
  return static_cast<Errc>(static_cast<int>(*kind));
}

}  // namespace runnel
