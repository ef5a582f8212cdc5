// Who may call the gateway: bearer tokens. The stack's own token (any function) lives in
// <state dir>/gateway.token, created by the first `runnel up` with mode 0600 and kept across
// restarts; `gateway.tokens` adds tokens limited to functions. A token is never logged.
// Private to gateway/. Thread-safety: const methods from any thread.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "runnel/core/gateway_config.hpp"

namespace runnel::gateway {

class Tokens {
 public:
  // Reads <state_dir>/gateway.token, or creates it (32 random bytes as hex, mode 0600). Throws
  // Error when it cannot.
  Tokens(const std::filesystem::path& state_dir, const std::vector<GatewayToken>& limited);

  struct Grant {
    bool any = false;  // the stack's token
    const std::vector<std::string>* functions = nullptr;
    bool Allows(const std::string& function) const;
  };
  // The grant of an `Authorization: Bearer TOKEN` value; nullopt when absent or not a token of
  // this gateway.
  std::optional<Grant> Check(const std::optional<std::string>& authorization) const;
  const std::filesystem::path& File() const { return file_; }

 private:
  std::filesystem::path file_;
  std::string stack_token_;
  std::vector<GatewayToken> limited_;
};

}  // namespace runnel::gateway
