// `runnel token create|list|revoke`: join tokens for workers and commands on other hosts
// (security/tokens.hpp, docs/protocol.md §6.1). They work on the state dir's files: the running
// stack admits a new token at once and refuses a revoked one at once, also on connections open.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>

#include "commands.hpp"
#include "exit_codes.hpp"
#include "flag_checks.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/state_dir.hpp"
#include "runnel/security/key_files.hpp"
#include "runnel/security/tokens.hpp"

namespace runnel::cli {
namespace {

std::string When(std::int64_t epoch_ms) {
  if (epoch_ms == 0) return "never";
  const auto t = static_cast<std::time_t>(epoch_ms / 1000);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}Z", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
                     tm.tm_hour, tm.tm_min, tm.tm_sec);
}

std::string StateOf(const security::TokenRecord& r) {
  if (r.revoked) return "revoked";
  if (r.expires_ms != 0 && security::NowMs() >= r.expires_ms) return "expired";
  return "valid";
}

}  // namespace

Command AddToken(CLI::App& app, CommonOptions& common) {
  struct Flags {
    std::vector<std::string> functions;
    double ttl = 0;
    std::string out;
    std::string id;
    bool json = false;
  };
  auto flags = std::make_shared<Flags>();
  auto* sub = app.add_subcommand(
      "token", "Join tokens: let a worker or a runnel command on another host use this stack (CURVE keys)");
  sub->require_subcommand(1);
  auto* create = sub->add_subcommand(
      "create", "A new token: the stack's advertised endpoints, its server key and a fresh client key pair");
  create->add_option(
      "--function", flags->functions,
      "A function the token may serve (repeat for several); none: every function and job control");
  create->add_option("--ttl", flags->ttl, "How long the token is valid, e.g. 24h; 0 or none: until revoked")
      ->transform(DurationSeconds());
  create->add_option("--out", flags->out, "Write the token to this file (mode 0600) instead of printing it");
  auto* list = sub->add_subcommand("list", "Every token of this stack: id, functions, expiry, state");
  list->add_flag("--json", flags->json, "Print a JSON array");
  auto* revoke =
      sub->add_subcommand("revoke", "Revoke a token: refused at once, also on connections already open");
  revoke->add_option("id", flags->id, "The token's id (runnel token list)")->required();

  return {sub, [flags, &common, create, list] {
            const StateDir state = StateDir::Resolve(common.state_dir);
            security::TokenStore store(state.Root());
            if (create->parsed()) {
              const auto ttl = std::chrono::milliseconds(static_cast<std::int64_t>(flags->ttl * 1000));
              const auto token = store.Create(flags->functions, ttl, state.ReadEndpoints());
              const std::string text = security::EncodeJoinToken(token);
              if (flags->out.empty()) {
                fmt::print("{}", text);
              } else {
                security::WritePrivateFile(flags->out, text);
                fmt::print(stderr, "token {} written to {} (expires {})\n", token.record.id, flags->out,
                           When(token.record.expires_ms));
              }
              return exit_code::kOk;
            }
            const auto tokens = store.List();
            if (list->parsed()) {
              if (flags->json) {
                nlohmann::json out = nlohmann::json::array();
                for (const auto& r : tokens) {
                  auto j = r.Json();
                  j["state"] = StateOf(r);
                  out.push_back(std::move(j));
                }
                fmt::print("{}\n", out.dump());
                return exit_code::kOk;
              }
              if (tokens.empty()) fmt::print("no tokens (runnel token create makes one)\n");
              for (const auto& r : tokens) {
                std::string functions;
                for (const auto& f : r.functions) functions += (functions.empty() ? "" : ",") + f;
                fmt::print("{}  {:<7}  functions {}  created {}  expires {}\n", r.id, StateOf(r),
                           functions.empty() ? "(all)" : functions, When(r.created_ms), When(r.expires_ms));
              }
              return exit_code::kOk;
            }
            if (!store.Revoke(flags->id)) {
              throw ConfigError(fmt::format("no token '{}' in {} (runnel token list shows them)", flags->id,
                                            store.Dir().string()));
            }
            fmt::print("token {} revoked\n", flags->id);
            return exit_code::kOk;
          }};
}

}  // namespace runnel::cli
