// Where the keys live. A stack keeps its own in <state dir>/keys (the directory mode 0700, every
// file 0600, created on its first start and kept across restarts):
//
//   server.pub, server.secret  the stack's server pair, which every socket it binds uses
//   local.pub,  local.secret   the client pair of the workers it starts and of `runnel` commands run
//                              on the same host as the same user; admitted by every socket
//
// Other clients are admitted by the public keys in `security.clients` (a directory of files, one
// key per line, like ssh's authorized_keys).
#pragma once

#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "runnel/security/curve.hpp"

namespace runnel::security {

struct StackKeys {
  KeyPair server;
  KeyPair local;
};

// Writes `text` to `file` with mode 0600: to a new file beside it, synced, then renamed into place,
// so that a reader never sees half of it and a crash leaves nothing readable by others. Throws
// runnel::Error naming the file.
void WritePrivateFile(const std::filesystem::path& file, const std::string& text);

// <state dir>/keys.
std::filesystem::path KeyDir(const std::filesystem::path& state_root);

// The stack's keys, each pair created when missing. Throws ConfigError naming the file when one is
// not a key, when a public half does not match its secret, or when a secret file can be read by
// anyone but its owner (chmod 600 it).
StackKeys LoadOrCreateStackKeys(const std::filesystem::path& state_root);

// What a worker started with `--keys DIR` or a `runnel` command on the stack's host connects with:
// server.pub and the local pair. Throws ConfigError naming the file and what to do when one cannot
// be read (another user's stack, or no stack has started in that state dir yet).
ClientKeys LoadLocalClientKeys(const std::filesystem::path& key_dir);

// The keys a client on the stack's host connects with when the stack's endpoints.json says
// "curve": true (LoadLocalClientKeys of <state dir>/keys); nullopt for a stack with CURVE off.
std::optional<ClientKeys> LocalClientKeysFor(const std::filesystem::path& state_root,
                                             const nlohmann::json& endpoints);

// A public key the stack admits, and the name it is logged and counted under: "local", or
// "<file>:<line>" of `security.clients`.
struct AuthorizedKey {
  std::string public_key;  // Z85
  std::string name;
};

// Every key in the regular files of `dir` (not recursive; names starting with '.' skipped): one
// Z85 key per line, blank lines and lines starting with '#' ignored, anything after the key and a
// space kept as a comment. Throws ConfigError naming file:line for a line that is not a key.
std::vector<AuthorizedKey> ReadAuthorizedKeys(const std::filesystem::path& dir);

}  // namespace runnel::security
