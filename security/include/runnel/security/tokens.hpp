// Join tokens: what lets a worker or a `runnel` command on another host use a stack
// (docs/protocol.md §6.1). A token is a fresh CURVE client pair the stack admits, limited to some
// functions and to a lifetime, with the stack's advertised endpoints and server key beside it:
//
//   <state dir>/tokens/<id>.json   the stack's record: the public key, the functions, the expiry,
//                                  whether it was revoked (no secret); the guard admits by it
//   the token file                 what `runnel token create` prints or writes (mode 0600) for the
//                                  other host: the record's fields, the client's secret key, the
//                                  server key and the endpoints
//
// A revoked or expired token is refused at its next handshake, and the stack's sockets drop
// connections already open under it (Guard::StillAdmitted).
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/security/curve.hpp"

namespace runnel::security {

struct TokenRecord {
  std::string id;                      // 16 hex digits
  std::string public_key;              // Z85, the token's client key
  std::vector<std::string> functions;  // empty: every function, and job control
  std::int64_t created_ms = 0;         // Unix epoch
  std::int64_t expires_ms = 0;         // 0: never
  bool revoked = false;

  // Whether it admits a connection now to the socket named `domain` ("dispatcher/<function>",
  // "results", "control"), or the control socket's job ops ("jobs"). A token limited to functions
  // reaches their dispatchers, the results feed and the control socket, not its job ops.
  bool Admits(const std::string& domain, std::int64_t now_ms) const;
  nlohmann::json Json() const;  // without a secret
};

// What a joining host holds.
struct JoinToken {
  TokenRecord record;
  ClientKeys keys;           // the stack's server key and the token's pair
  nlohmann::json endpoints;  // the stack's endpoints.json as advertised (dispatchers, results, ...)
};

// The records in <state dir>/tokens. Every method reads or writes the files; safe across processes
// (each record is written whole and renamed into place).
class TokenStore {
 public:
  explicit TokenStore(const std::filesystem::path& state_root);
  const std::filesystem::path& Dir() const { return dir_; }

  // A new token for `functions` (empty: all) living `ttl` (zero: forever), with the endpoints and
  // server key of the running stack (`endpoints`: its endpoints.json).
  JoinToken Create(const std::vector<std::string>& functions, std::chrono::milliseconds ttl,
                   const nlohmann::json& endpoints);
  // Every record, oldest first; a file that does not parse is skipped with a warning.
  std::vector<TokenRecord> List() const;
  // Marks the token revoked; false when there is none with that id.
  bool Revoke(const std::string& id);

 private:
  std::filesystem::path dir_;
};

// The token file's text, and reading one back: ConfigError naming the file and what is wrong.
std::string EncodeJoinToken(const JoinToken& token);
JoinToken ReadJoinToken(const std::filesystem::path& file);

std::int64_t NowMs();

}  // namespace runnel::security
