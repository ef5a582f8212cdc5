// A plain HTTP/1.0 GET for tests that scrape the stack's metrics endpoint: a TCP connect, one
// request, the whole answer read until the server closes. Bounded by `deadline`.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <utility>
#include <vector>

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

// The value of the first sample of `family` at the Prometheus endpoint `metrics_url` whose labels
// include every one of `labels` (name, value); -1 when there is none or the endpoint does not answer.
double MetricSample(const std::string& metrics_url, const std::string& family,
                    const std::vector<std::pair<std::string, std::string>>& labels);

}  // namespace runnel::testing
