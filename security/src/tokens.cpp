#include "runnel/security/tokens.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <random>

#include "runnel/core/error.hpp"
#include "runnel/core/fd.hpp"
#include "runnel/core/json.hpp"
#include "runnel/core/log.hpp"
#include "runnel/security/key_files.hpp"

namespace runnel::security {
namespace fs = std::filesystem;
namespace {

constexpr int kTokenVersion = 1;

std::string NewTokenId() {
  std::random_device rd;
  std::uniform_int_distribution<std::uint64_t> any;
  return fmt::format("{:016x}", (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ any(rd));
}

bool IsTokenId(const std::string& id) {
  return id.size() == 16 && std::all_of(id.begin(), id.end(), [](char c) {
           return std::isxdigit(static_cast<unsigned char>(c)) != 0;
         });
}

TokenRecord RecordFromJson(const nlohmann::json& j, const std::string& where) {
  TokenRecord r;
  try {
    r.id = j.at("id").get<std::string>();
    r.public_key = j.at("public_key").get<std::string>();
    r.functions = j.value("functions", std::vector<std::string>{});
    r.created_ms = j.value("created_ms", std::int64_t{0});
    r.expires_ms = j.value("expires_ms", std::int64_t{0});
    r.revoked = j.value("revoked", false);
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(fmt::format("{}: not a token: {}", where, e.what()));
  }
  if (!IsTokenId(r.id)) throw ConfigError(fmt::format("{}: '{}' is not a token id", where, r.id));
  if (!IsKey(r.public_key)) throw ConfigError(fmt::format("{}: its public key is not a CURVE key", where));
  return r;
}

}  // namespace

std::int64_t NowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

bool TokenRecord::Admits(const std::string& domain, std::int64_t now_ms) const {
  if (revoked || (expires_ms != 0 && now_ms >= expires_ms)) return false;
  if (functions.empty()) return true;
  if (domain == "results" || domain == "control") return true;  // "jobs" needs a token for all
  return std::any_of(functions.begin(), functions.end(),
                     [&](const std::string& f) { return domain == "dispatcher/" + f; });
}

nlohmann::json TokenRecord::Json() const {
  return {{"id", id},
          {"public_key", public_key},
          {"functions", functions},
          {"created_ms", created_ms},
          {"expires_ms", expires_ms},
          {"revoked", revoked}};
}

TokenStore::TokenStore(const fs::path& state_root) : dir_(state_root / "tokens") {}

JoinToken TokenStore::Create(const std::vector<std::string>& functions, std::chrono::milliseconds ttl,
                             const nlohmann::json& endpoints) {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw Error(fmt::format("{}: cannot create: {}", dir_.string(), ec.message()), false);
  fs::permissions(dir_, fs::perms::owner_all, fs::perm_options::replace, ec);
  const std::string server_key = endpoints.value("server_key", "");
  if (!endpoints.value("curve", false) || !IsKey(server_key)) {
    throw ConfigError(
        "the running stack does not use CURVE (security.curve is false): a token would admit nothing");
  }
  const auto dispatchers = endpoints.value("dispatchers", nlohmann::json::object());
  for (const auto& f : functions) {
    if (!dispatchers.contains(f)) {
      std::string known;
      for (const auto& [name, _] : dispatchers.items()) known += (known.empty() ? "" : ", ") + name;
      throw ConfigError(fmt::format("the stack serves no function '{}' (it serves {})", f, known));
    }
  }
  JoinToken token;
  token.record.id = NewTokenId();
  token.keys.server_key = server_key;
  token.keys.own = NewKeyPair();
  token.record.public_key = token.keys.own.public_key;
  token.record.functions = functions;
  token.record.created_ms = NowMs();
  token.record.expires_ms = ttl.count() > 0 ? token.record.created_ms + ttl.count() : 0;
  // The endpoints the token may use; the rest of endpoints.json (pid, output_dir) stays home.
  nlohmann::json reach = nlohmann::json::object();
  for (const char* key : {"results", "control", "kafka"}) {
    if (endpoints.contains(key)) reach[key] = endpoints[key];
  }
  reach["dispatchers"] = nlohmann::json::object();
  for (const auto& [name, endpoint] : dispatchers.items()) {
    if (functions.empty() || std::find(functions.begin(), functions.end(), name) != functions.end()) {
      reach["dispatchers"][name] = endpoint;
    }
  }
  token.endpoints = std::move(reach);
  WritePrivateFile(dir_ / (token.record.id + ".json"), JsonText(token.record.Json()) + "\n");
  return token;
}

std::vector<TokenRecord> TokenStore::List() const {
  std::vector<TokenRecord> out;
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_, ec)) {
    if (entry.path().extension() != ".json") continue;
    try {
      std::ifstream in(entry.path());
      out.push_back(RecordFromJson(nlohmann::json::parse(in), entry.path().string()));
    } catch (const std::exception& e) {
      log::kSecurity->warn("{}: skipped: {}", entry.path().string(), e.what());
    }
  }
  std::sort(out.begin(), out.end(), [](const auto& a, const auto& b) {
    return a.created_ms != b.created_ms ? a.created_ms < b.created_ms : a.id < b.id;
  });
  return out;
}

bool TokenStore::Revoke(const std::string& id) {
  if (!IsTokenId(id)) return false;
  const fs::path file = dir_ / (id + ".json");
  std::ifstream in(file);
  if (!in) return false;
  TokenRecord r = RecordFromJson(nlohmann::json::parse(in, nullptr, false), file.string());
  r.revoked = true;
  WritePrivateFile(file, JsonText(r.Json()) + "\n");
  return true;
}

std::string EncodeJoinToken(const JoinToken& token) {
  nlohmann::json j = token.record.Json();
  j.erase("revoked");
  j["runnel_join_token"] = kTokenVersion;
  j["server_key"] = token.keys.server_key;
  j["secret_key"] = token.keys.own.secret_key.Reveal();
  j["endpoints"] = token.endpoints;
  return j.dump(2) + "\n";
}

JoinToken ReadJoinToken(const fs::path& file) {
  std::ifstream in(file);
  if (!in)
    throw ConfigError(fmt::format("{}: cannot read the join token: {}", file.string(), std::strerror(errno)));
  const auto j = nlohmann::json::parse(in, nullptr, false);
  if (!j.is_object() || j.value("runnel_join_token", 0) != kTokenVersion) {
    throw ConfigError(
        fmt::format("{}: not a Runnel join token (runnel token create writes one)", file.string()));
  }
  JoinToken token;
  token.record = RecordFromJson(j, file.string());
  try {
    token.keys.server_key = j.at("server_key").get<std::string>();
    token.keys.own.public_key = token.record.public_key;
    token.keys.own.secret_key = Secret(j.at("secret_key").get<std::string>());
    token.endpoints = j.at("endpoints");
  } catch (const nlohmann::json::exception& e) {
    throw ConfigError(fmt::format("{}: not a join token: {}", file.string(), e.what()));
  }
  if (!IsKey(token.keys.server_key) || !token.endpoints.is_object()) {
    throw ConfigError(fmt::format("{}: its server key or endpoints are not valid", file.string()));
  }
  if (PublicKeyOf(token.keys.own.secret_key, file.string()) != token.keys.own.public_key) {
    throw ConfigError(fmt::format("{}: its secret key does not match its public key", file.string()));
  }
  if (token.record.expires_ms != 0 && NowMs() >= token.record.expires_ms) {
    throw ConfigError(fmt::format("{}: token {} expired", file.string(), token.record.id));
  }
  return token;
}

}  // namespace runnel::security
