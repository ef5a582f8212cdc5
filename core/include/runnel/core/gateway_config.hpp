// `gateway:` in runnel.yaml (docs/config.md#gateway): the HTTP gateway `runnel up` serves
// (gateway/README.md). Parsed with the rest of the config, strictly: an unknown key or a bad value
// is a ConfigError naming the line.
#pragma once

#include <chrono>
#include <cstddef>
#include <string>
#include <vector>

#include "runnel/core/listen.hpp"
#include "runnel/core/secret.hpp"

namespace runnel {

// One bearer token of `gateway.tokens`: it may call only the functions listed.
struct GatewayToken {
  Secret token;  // at least kMinLength characters, never printed
  std::vector<std::string> functions;
  int line = 0;
  static constexpr std::size_t kMinLength = 16;
};

struct GatewayConfig {
  bool enabled = true;
  ListenAddress listen;  // 127.0.0.1, any free port
  // Requests handled at once; one more is answered 503 with Retry-After at once.
  int max_concurrent = 64;
  // The largest upload body (PUT /uploads); a function's body is bounded by its max_payload.
  std::size_t max_body = std::size_t{8} << 30;
  // A synchronous call's deadline without X-Runnel-Timeout, and the longest the header may ask.
  std::chrono::milliseconds timeout{30'000};
  std::chrono::milliseconds max_timeout{300'000};
  // How long the gateway waits for the next bytes of a request (headers or body) from a client.
  std::chrono::milliseconds read_timeout{30'000};
  std::string upload_dir;  // absolute; empty: <state dir>/uploads
  std::vector<GatewayToken> tokens;
};

}  // namespace runnel
