// Fetching an http:// or https:// input reference with libcurl, for Context::ReadInput.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>

namespace runnel::functions {

struct HttpFetchLimits {
  std::size_t max_bytes = 0;          // the body may not be larger (Content-Length or counted)
  std::chrono::milliseconds timeout;  // the whole transfer, redirects included
  long max_redirects = 5;
};

// GETs `url` (already checked by CheckHttpUrl) and returns its body. Throws FunctionError:
// kLimitExceeded as soon as Content-Length or the bytes received pass max_bytes; kBadInput for a 4xx
// status ("GET https://host/path: HTTP 404"), too many redirects, or a redirect to another scheme;
// kTransient for a 5xx (and 408, 429), a connection failure or the timeout, so the event is retried.
// Messages show the URL as UrlForLogs does: never its query, which may hold credentials.
std::string HttpFetch(const std::string& url, const HttpFetchLimits& limits);

}  // namespace runnel::functions
