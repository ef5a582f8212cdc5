#include "runnel/core/output_target.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <cctype>

#include "runnel/core/envelope.hpp"

namespace runnel {
namespace {

// RFC 9110 tchar.
bool IsTokenChar(char c) {
  static constexpr std::string_view kSymbols = "!#$%&'*+-.^_`|~";
  return std::isalnum(static_cast<unsigned char>(c)) != 0 || kSymbols.find(c) != std::string_view::npos;
}

}  // namespace

bool SameHeaderName(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

std::string OutputUrlProblem(std::string_view url) {
  if (!IsHttpUrl(url)) {
    return fmt::format("'{}' is not an http:// or https:// URL",
                       url.size() > 64 ? std::string(url.substr(0, 64)) + "..." : std::string(url));
  }
  if (url.size() > OutputTarget::kMaxUrl)
    return fmt::format("is {} bytes, more than {}", url.size(), OutputTarget::kMaxUrl);
  try {
    CheckHttpUrl(url);
  } catch (const EnvelopeError& e) {
    // "header 'runnel-file': URL '...' has ...": the rule, without the header it was written for.
    std::string_view why = e.what();
    if (const auto colon = why.find(": "); why.starts_with("header '") && colon != std::string_view::npos)
      why.remove_prefix(colon + 2);
    return std::string(why);
  }
  if (url.find('?') != std::string_view::npos) {
    return fmt::format(
        "URL '{}' has a query: each file is PUT to <url>/<function>/<event id>/<name>, so give a URL "
        "without one (credentials go in outputs.headers)",
        UrlForLogs(url));
  }
  return {};
}

std::string NormalizeOutputUrl(std::string_view url) {
  while (url.ends_with('/') && !url.ends_with("://")) url.remove_suffix(1);
  return std::string(url);
}

std::string OutputHeaderProblem(std::string_view name, std::string_view value) {
  if (name.empty() || name.size() > OutputTarget::kMaxHeaderName ||
      !std::all_of(name.begin(), name.end(), IsTokenChar)) {
    return fmt::format(
        "header name '{}' is not an HTTP field name (1..{} of letters, digits and !#$%&'*+-.^_`|~)",
        name.size() > 64 ? std::string(name.substr(0, 64)) + "..." : std::string(name),
        OutputTarget::kMaxHeaderName);
  }
  static constexpr std::array<std::string_view, 4> kOwn = {"Content-Length", "Transfer-Encoding", "Expect",
                                                           "Host"};
  for (const auto own : kOwn) {
    if (SameHeaderName(name, own))
      return fmt::format("header {} is set by Runnel, not by outputs.headers", own);
  }
  if (value.size() > OutputTarget::kMaxHeaderValue)
    return fmt::format("header {}: its value is over {} bytes", name, OutputTarget::kMaxHeaderValue);
  for (const char ch : value) {
    const auto c = static_cast<unsigned char>(ch);
    if ((c < 0x20 && c != '\t') || c >= 0x7f) {
      return fmt::format(
          "header {}: its value has a control character (CR, LF...) or a non-ASCII byte, which is not "
          "allowed",
          name);
    }
  }
  return {};
}

}  // namespace runnel
