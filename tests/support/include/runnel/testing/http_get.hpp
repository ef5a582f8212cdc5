// A plain HTTP/1.0 GET for tests that scrape the stack's metrics endpoint: a TCP connect, one
// request, the whole answer read until the server closes. Bounded by `deadline`.
#pragma once

#include <chrono>
#include <optional>
#include <string>

namespace runnel::testing {

struct HttpResponse {
  int status = 0;
  std::string content_type;
  std::string body;
};

// `url` is http://HOST:PORT/PATH with a numeric IPv4 host. nullopt when it cannot connect or the
// answer does not come within the deadline.
std::optional<HttpResponse> HttpGet(const std::string& url,
                                    std::chrono::milliseconds deadline = std::chrono::seconds(5));

}  // namespace runnel::testing
