// Where workers store the output files of a call when they do not leave them in `output_dir`: a
// base URL they PUT each file under (runnel.yaml's `outputs`, docs/config.md#outputs; WELCOME's
// `outputs`, docs/protocol.md §3.1). The checks live here so that the config parser and the WELCOME
// decoder hold a URL and headers to the same rules.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "runnel/core/secret.hpp"

namespace runnel {

struct OutputTarget {
  static constexpr std::size_t kMaxUrl = 2048;  // the base; a file's URL adds its three segments
  static constexpr std::size_t kMaxHeaders = 32;
  static constexpr std::size_t kMaxHeaderName = 128;
  static constexpr std::size_t kMaxHeaderValue = 8192;
  static constexpr std::chrono::milliseconds kMinTimeout{100};
  static constexpr std::chrono::milliseconds kMaxTimeout{3'600'000};

  std::string url;  // http:// or https://, no query, fragment or userinfo, no trailing '/'
  // Sent with every PUT. The values often carry credentials (Authorization): held as secrets.
  std::vector<std::pair<std::string, Secret>> headers;
  std::chrono::milliseconds timeout{30'000};  // per PUT, and never past the event's deadline
  bool operator==(const OutputTarget&) const = default;
};

// Why `url` cannot be an outputs URL, or "" when it can. The message shows the URL as UrlForLogs
// does. A trailing '/' is allowed here; NormalizeOutputUrl drops it.
std::string OutputUrlProblem(std::string_view url);
std::string NormalizeOutputUrl(std::string_view url);
// Why a header cannot go with the PUTs, or "" when it can: a name that is not an HTTP token, one
// Runnel sets itself (Content-Length, Transfer-Encoding, Expect, Host), a value with a control
// character (CR or LF would split the request). Never shows the value.
std::string OutputHeaderProblem(std::string_view name, std::string_view value);
// HTTP field names compare without case: a header given twice that way is refused.
bool SameHeaderName(std::string_view a, std::string_view b);

}  // namespace runnel
