#include "runnel/core/env_expand.hpp"

#include <fmt/format.h>

#include <cctype>
#include <cstdlib>

#include "runnel/core/error.hpp"

namespace runnel {
namespace {

bool IsNameStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsNameChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The index of the `}` closing the `${` whose body starts at `from`, skipping nested `${...}`;
// npos when there is none.
std::size_t ClosingBrace(std::string_view text, std::size_t from) {
  int depth = 0;
  for (std::size_t i = from; i < text.size(); ++i) {
    if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '$') {
      ++i;  // `$$` inside a default is a literal, not the start of a reference
    } else if (text[i] == '$' && i + 1 < text.size() && text[i + 1] == '{') {
      ++depth;
      ++i;
    } else if (text[i] == '}') {
      if (depth == 0) return i;
      --depth;
    }
  }
  return std::string_view::npos;
}

// Defaults and messages nest `${...}` at most this deep. Each level is a recursion and rescans its
// text, so without a bound a deeply nested value overflowed the stack and took quadratic time.
constexpr int kMaxNesting = 16;

std::string Expand(std::string_view text, const EnvLookup& lookup, int depth);

// One `${...}` reference; `body` is what lies between the braces.
std::string ExpandReference(std::string_view body, const EnvLookup& lookup, int depth) {
  std::size_t n = 0;
  while (n < body.size() && IsNameChar(body[n])) ++n;
  const std::string name(body.substr(0, n));
  if (name.empty() || !IsNameStart(name[0])) {
    throw ConfigError(
        fmt::format("'${{{}}}' is not a variable reference: a name is letters, digits and _, not "
                    "starting with a digit",
                    body));
  }
  const std::string_view rest = body.substr(n);
  const auto value = lookup(name);
  if (rest.empty()) {
    if (!value) {
      throw ConfigError(
          fmt::format("${{{0}}} is not set (set it, or give a default: ${{{0}:-value}})", name));
    }
    return *value;
  }
  if (rest.starts_with(":-")) {
    if (value && !value->empty()) return *value;
    return Expand(rest.substr(2), lookup, depth + 1);
  }
  if (rest.starts_with(":?")) {
    if (value && !value->empty()) return *value;
    const std::string_view why = rest.substr(2);
    throw ConfigError(
        fmt::format("${{{}}} is {}: {}", name, value ? "empty" : "not set",
                    why.empty() ? std::string("it is required") : Expand(why, lookup, depth + 1)));
  }
  throw ConfigError(
      fmt::format("'${{{}}}': after the name {} comes '{}'; expected }}, :-default or :?message", body, name,
                  rest.substr(0, 1)));
}

std::string Expand(std::string_view text, const EnvLookup& lookup, int depth) {
  std::string out;
  out.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '$') {
      out += text[i];
      continue;
    }
    if (i + 1 < text.size() && text[i + 1] == '$') {
      out += '$';
      ++i;
      continue;
    }
    if (i + 1 >= text.size() || text[i + 1] != '{') {
      std::size_t n = i + 1;
      while (n < text.size() && IsNameChar(text[n])) ++n;
      const std::string_view word = text.substr(i, n - i);
      if (word.size() > 1) {
        throw ConfigError(
            fmt::format("'{0}' is not expanded: write ${{{1}}} for the variable, or $${1} for the text", word,
                        word.substr(1)));
      }
      throw ConfigError("a lone '$': write $$ for a literal $, or ${NAME} for a variable");
    }
    if (depth == kMaxNesting) {
      throw ConfigError(fmt::format("a default or message nests ${{...}} more than {} deep", kMaxNesting));
    }
    const std::size_t close = ClosingBrace(text, i + 2);
    if (close == std::string_view::npos) {
      throw ConfigError(fmt::format("'{}' has no closing }}", text.substr(i)));
    }
    out += ExpandReference(text.substr(i + 2, close - i - 2), lookup, depth);
    i = close;
  }
  return out;
}

}  // namespace

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* value = std::getenv(name.c_str());
  if (value == nullptr) return std::nullopt;
  return std::string(value);
}

std::string ExpandEnv(std::string_view text, const EnvLookup& lookup) { return Expand(text, lookup, 0); }

}  // namespace runnel
