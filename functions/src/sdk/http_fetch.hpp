// Fetching an http:// or https:// input reference with libcurl, for Context::ReadInput.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

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
// The same, handing the body to `sink` chunk by chunk as it arrives (for inputs too large to hold
// in memory); the chunks never add up to more than max_bytes. A sink that returns false (it could
// not store the chunk) ends the transfer with kTransient.
void HttpFetchTo(const std::string& url, const HttpFetchLimits& limits,
                 const std::function<bool(std::string_view)>& sink);

// The libcurl handling the fetch and the output upload (output_upload.cpp) share.
// curl_global_init, once per process.
void CurlGlobalInit();
// Throws FunctionError(kInternal) naming the option when curl_easy_setopt refused it.
void CurlCheck(int code, const char* what);
// Runs `transfer` (a blocking libcurl call) on a helper thread while the calling fiber waits, so
// the worker's thread keeps running its other fibers; rethrows what it threw. The transfer must
// bound its own time (CURLOPT_TIMEOUT_MS): the helper is joined before this returns.
void RunTransferOffFiber(const std::function<void()>& transfer);

}  // namespace runnel::functions
