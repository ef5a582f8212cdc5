#include "config_gateway.hpp"

#include <fmt/format.h>

#include "runnel/core/duration.hpp"

namespace runnel::detail {
namespace {

class GatewayParser {
 public:
  explicit GatewayParser(const ConfigFail& fail) : fail_(fail) {}

  [[noreturn]] void Fail(const YAML::Node& node, const std::string& key, const std::string& why) const {
    fail_(node, key, why);
    throw std::logic_error("ConfigFail returned");  // cannot happen: it throws
  }

  void OnlyKeys(const YAML::Node& map, const std::string& where, const std::set<std::string>& allowed) const {
    if (!map.IsMap()) Fail(map, where, "must be a mapping");
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (allowed.contains(key)) continue;
      std::string known;
      for (const auto& a : allowed) known.append(known.empty() ? "" : ", ").append(a);
      Fail(kv.first, fmt::format("{}.{}", where, key), fmt::format("unknown key (known: {})", known));
    }
  }

  std::string Text(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) Fail(node, key, "must be a single value");
    return node.Scalar();
  }

  long long Int(const YAML::Node& node, const std::string& key, long long lo, long long hi) const {
    const std::string text = Text(node, key);
    long long v = 0;
    try {
      std::size_t used = 0;
      v = std::stoll(text, &used);
      if (used != text.size()) throw std::invalid_argument(text);
    } catch (const std::exception&) {
      Fail(node, key, fmt::format("'{}' is not a valid integer", text));
    }
    if (v < lo || v > hi) Fail(node, key, fmt::format("{} is outside {}..{}", v, lo, hi));
    return v;
  }

  bool Bool(const YAML::Node& node, const std::string& key) const {
    const std::string text = Text(node, key);
    if (text != "true" && text != "false") Fail(node, key, fmt::format("'{}' is not a valid boolean", text));
    return text == "true";
  }

  std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& key,
                                     std::chrono::milliseconds lo, std::chrono::milliseconds hi,
                                     const char* bounds) const {
    const auto parsed = ParseDuration(Text(node, key));
    if (!parsed) Fail(node, key, parsed.error);
    if (parsed.value < lo || parsed.value > hi) Fail(node, key, fmt::format("must be within {}", bounds));
    return parsed.value;
  }

 private:
  const ConfigFail& fail_;
};

GatewayToken ParseToken(const GatewayParser& p, const YAML::Node& node, const std::string& where,
                        const std::set<std::string>& functions) {
  if (!node.IsMap())
    p.Fail(node, where, "must be a mapping like {token: \"${GATEWAY_TOKEN}\", functions: [echo]}");
  p.OnlyKeys(node, where, {"token", "functions"});
  GatewayToken t;
  t.line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
  if (!node["token"]) p.Fail(node, where + ".token", "is required");
  // Held as a secret from here on: no message below shows it.
  t.token = Secret(p.Text(node["token"], where + ".token"));
  if (t.token.Reveal().size() < GatewayToken::kMinLength) {
    p.Fail(node["token"], where + ".token",
           fmt::format("is shorter than {} characters", GatewayToken::kMinLength));
  }
  for (const char c : t.token.Reveal()) {
    if (c <= 0x20 || c > 0x7e)
      p.Fail(node["token"], where + ".token", "may hold only printable ASCII, no spaces");
  }
  const auto fns = node["functions"];
  if (!fns || !fns.IsSequence() || fns.size() == 0) {
    p.Fail(fns ? fns : node, where + ".functions", "must be a non-empty list of the stack's functions");
  }
  for (std::size_t i = 0; i < fns.size(); ++i) {
    const std::string key = fmt::format("{}.functions[{}]", where, i);
    auto name = p.Text(fns[i], key);
    if (!functions.contains(name))
      p.Fail(fns[i], key, fmt::format("'{}' is not a function of this stack", name));
    t.functions.push_back(std::move(name));
  }
  return t;
}

}  // namespace

GatewayConfig ParseGateway(const YAML::Node& node, const std::set<std::string>& functions,
                           const std::filesystem::path& dir, const ConfigFail& fail) {
  const GatewayParser p(fail);
  p.OnlyKeys(node, "gateway",
             {"enabled", "listen", "max_concurrent", "max_body", "timeout", "max_timeout", "read_timeout",
              "upload_dir", "tokens"});
  GatewayConfig g;
  if (const auto e = node["enabled"]) g.enabled = p.Bool(e, "gateway.enabled");
  if (const auto l = node["listen"]) {
    auto parsed = ListenAddress::Parse(p.Text(l, "gateway.listen"));
    if (auto* why = std::get_if<std::string>(&parsed))
      p.Fail(l, "gateway.listen", *why + " (HOST or HOST:PORT)");
    g.listen = std::get<ListenAddress>(std::move(parsed));
    g.listen.line = l.Mark().line + 1;
    if (g.listen.Ports() != 1) p.Fail(l, "gateway.listen", "takes one port, not a range");
  }
  if (const auto m = node["max_concurrent"])
    g.max_concurrent = static_cast<int>(p.Int(m, "gateway.max_concurrent", 1, 10'000));
  if (const auto b = node["max_body"])
    g.max_body = static_cast<std::size_t>(p.Int(b, "gateway.max_body", 1, 1LL << 42));
  using std::chrono::hours;
  using std::chrono::milliseconds;
  if (const auto t = node["timeout"])
    g.timeout = p.Duration(t, "gateway.timeout", milliseconds(1), hours(1), "1ms..1h");
  if (const auto t = node["max_timeout"])
    g.max_timeout = p.Duration(t, "gateway.max_timeout", milliseconds(1), hours(1), "1ms..1h");
  if (node["max_timeout"] && !node["timeout"] && g.timeout > g.max_timeout) g.timeout = g.max_timeout;
  if (g.timeout > g.max_timeout) {
    p.Fail(
        node["timeout"], "gateway.timeout",
        fmt::format("{} ms is above gateway.max_timeout ({} ms)", g.timeout.count(), g.max_timeout.count()));
  }
  if (const auto t = node["read_timeout"])
    g.read_timeout = p.Duration(t, "gateway.read_timeout", milliseconds(100), hours(1), "100ms..1h");
  if (const auto u = node["upload_dir"]) {
    const auto path = p.Text(u, "gateway.upload_dir");
    if (path.empty()) p.Fail(u, "gateway.upload_dir", "must not be empty");
    g.upload_dir =
        std::filesystem::path(path).is_absolute() ? path : (dir / path).lexically_normal().string();
  }
  if (const auto t = node["tokens"]) {
    if (!t.IsSequence()) p.Fail(t, "gateway.tokens", "must be a list of {token, functions}");
    for (std::size_t i = 0; i < t.size(); ++i) {
      g.tokens.push_back(ParseToken(p, t[i], fmt::format("gateway.tokens[{}]", i), functions));
      for (std::size_t k = 0; k + 1 < g.tokens.size(); ++k) {
        if (g.tokens[k].token == g.tokens.back().token)
          p.Fail(t[i]["token"], fmt::format("gateway.tokens[{}].token", i),
                 fmt::format("repeats gateway.tokens[{}]", k));
      }
    }
  }
  return g;
}

}  // namespace runnel::detail
