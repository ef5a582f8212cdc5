#include "runnel/core/config.hpp"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <fstream>
#include <iterator>
#include <set>
#include <unordered_map>

#include "config_filter.hpp"
#include "config_gateway.hpp"
#include "runnel/core/duration.hpp"
#include "runnel/core/env_expand.hpp"
#include "runnel/core/error.hpp"
#include "runnel/core/handler.hpp"

namespace runnel {
namespace {

// Errors point at the file and line of the offending node.
class Parser {
 public:
  explicit Parser(std::string file) : file_(std::move(file)) {}

  // The config file's directory, absolute: relative paths in the config are relative to it.
  std::filesystem::path Dir() const { return std::filesystem::absolute(file_).parent_path(); }

  [[noreturn]] void Fail(const YAML::Node& node, const std::string& key, const std::string& why) const {
    const auto mark = node.Mark();
    throw ConfigError(fmt::format("{}:{}: {}: {}", file_, mark.is_null() ? 0 : mark.line + 1, key, why));
  }

  void OnlyKeys(const YAML::Node& map, const std::string& where, const std::set<std::string>& allowed) const {
    if (!map.IsMap()) Fail(map, where, "must be a mapping");
    for (const auto& kv : map) {
      const auto key = kv.first.as<std::string>();
      if (!allowed.contains(key)) {
        std::string known;
        for (const auto& a : allowed) known.append(known.empty() ? "" : ", ").append(a);
        Fail(kv.first, where.empty() ? key : fmt::format("{}.{}", where, key),
             fmt::format("unknown key (known: {})", known));
      }
    }
  }

  template <typename T>
  T Scalar(const YAML::Node& node, const std::string& key) const {
    if (!node.IsScalar()) Fail(node, key, "must be a single value");
    try {
      return node.as<T>();
    } catch (const YAML::Exception&) {
      Fail(node, key, fmt::format("'{}' is not a valid {}", node.Scalar(), TypeName<T>()));
    }
  }

  long Int(const YAML::Node& node, const std::string& key, long lo, long hi) const {
    const long v = Scalar<long>(node, key);
    if (v < lo || v > hi) Fail(node, key, fmt::format("{} is outside {}..{}", v, lo, hi));
    return v;
  }

  // A duration with a unit ("30s", "500ms", "2m"; runnel/core/duration.hpp has the rule).
  std::chrono::milliseconds Duration(const YAML::Node& node, const std::string& key) const {
    const auto parsed = ParseDuration(Scalar<std::string>(node, key));
    if (!parsed) Fail(node, key, parsed.error);
    return parsed.value;
  }

  // Expands ${VAR} references in every scalar value (keys stay as written) before anything reads
  // them, so errors about a value name its line and key path. Values reached twice through a YAML
  // alias are expanded once: what came from the environment is never expanded again.
  // Both walks over the tree recurse once per level. As deep as yaml-cpp's parser lets a document
  // nest, they overflowed the stack (found by fuzzing: "[[[[..." in a sanitizer build), and aliases
  // can stack one nested value inside another deeper still; no real config nests past 64 levels.
  static constexpr int kMaxDepth = 64;
  void CheckDepth(const YAML::Node& node, const std::string& key, int depth) const {
    if (depth > kMaxDepth) Fail(node, key, fmt::format("nests deeper than {} levels", kMaxDepth));
  }

  void ExpandEnvironment(YAML::Node node, const std::string& key, int depth = 0) {
    CheckDepth(node, key.empty() ? "(top level)" : key, depth);
    // Looked up by the node's place in the text, which an alias shares with its anchor: one list of
    // every node made this walk quadratic (seconds for a list of 40,000 values).
    auto& same_place = expanded_[node.Mark().pos];
    if (std::any_of(same_place.begin(), same_place.end(),
                    [&node](const YAML::Node& seen) { return seen.is(node); }))
      return;
    same_place.push_back(node);
    if (node.IsMap()) {
      for (auto kv : node) {
        // The first walk over the whole tree: from here on every key is a name.
        if (!kv.first.IsScalar() && !kv.first.IsNull()) {
          Fail(kv.first, key.empty() ? "(top level)" : key, "a key must be a name, not a mapping or a list");
        }
        const auto name = kv.first.as<std::string>();
        ExpandEnvironment(kv.second, key.empty() ? name : fmt::format("{}.{}", key, name), depth + 1);
      }
    } else if (node.IsSequence()) {
      for (std::size_t i = 0; i < node.size(); ++i) {
        ExpandEnvironment(node[i], fmt::format("{}[{}]", key, i), depth + 1);
      }
    } else if (node.IsScalar() && node.Scalar().find('$') != std::string::npos) {
      try {
        node = ExpandEnv(node.Scalar());  // keeps the node's mark (line) and tag (quoted or not)
      } catch (const ConfigError& e) {
        Fail(node, key, e.what());
      }
    }
  }

  // A value reached through an alias is copied each time: nested aliases in a few hundred bytes
  // ("billion laughs") would make 10^8 values, so the copy stops at kMaxJsonValues.
  static constexpr std::size_t kMaxJsonValues = 100'000;
  nlohmann::json Json(const YAML::Node& node, const std::string& key) const {
    std::size_t values = 0;
    return Json(node, key, values, 0);
  }
  nlohmann::json Json(const YAML::Node& node, const std::string& key, std::size_t& values, int depth) const {
    CheckDepth(node, key, depth);
    if (++values > kMaxJsonValues) {
      Fail(node, key,
           fmt::format("holds more than {} values (YAML aliases copied too often?)", kMaxJsonValues));
    }
    switch (node.Type()) {
      case YAML::NodeType::Map: {
        auto obj = nlohmann::json::object();
        for (const auto& kv : node) obj[kv.first.as<std::string>()] = Json(kv.second, key, values, depth + 1);
        return obj;
      }
      case YAML::NodeType::Sequence: {
        auto arr = nlohmann::json::array();
        for (const auto& item : node) arr.push_back(Json(item, key, values, depth + 1));
        return arr;
      }
      case YAML::NodeType::Scalar: {
        const std::string& s = node.Scalar();
        if (node.Tag() == "!") return s;  // quoted: always a string
        if (s == "true" || s == "false") return s == "true";
        try {
          std::size_t used = 0;
          const long long i = std::stoll(s, &used);
          if (used == s.size()) return i;
          const double d = std::stod(s, &used);
          if (used == s.size()) return d;
        } catch (const std::exception&) {
        }
        return s;
      }
      default:
        return nullptr;
    }
  }

 private:
  template <typename T>
  static const char* TypeName() {
    if constexpr (std::is_same_v<T, std::string>) {
      return "string";
    } else if constexpr (std::is_same_v<T, bool>) {
      return "boolean";
    } else if constexpr (std::is_floating_point_v<T>) {
      return "number";
    } else {
      return "integer";
    }
  }
  std::string file_;
  std::unordered_map<int, std::vector<YAML::Node>> expanded_;  // by Mark().pos
};

bool IsTopicName(const std::string& s) {
  return !s.empty() && s.size() <= 249 && s != "." && s != ".." &&
         std::all_of(s.begin(), s.end(), [](char c) {
           return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-';
         });
}

// `batch: {size: 1..10000, window: 0..60s}`; size is required, the window defaults to 0 (a call
// takes what the worker already holds and never waits).
BatchSpec ParseBatch(const Parser& p, const YAML::Node& node, const std::string& where, int& line) {
  if (!node.IsMap()) p.Fail(node, where, "must be a mapping like {size: 100, window: 500ms}");
  p.OnlyKeys(node, where, {"size", "window"});
  line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
  BatchSpec b;
  if (!node["size"]) p.Fail(node, where + ".size", "is required (events per call, 1..10000)");
  b.size = static_cast<std::size_t>(p.Int(node["size"], where + ".size", 1, 10'000));
  if (node["window"]) {
    b.window = p.Duration(node["window"], where + ".window");
    if (b.window > std::chrono::minutes(1)) p.Fail(node["window"], where + ".window", "must be at most 60s");
  }
  return b;
}

FunctionSpec ParseFunction(const Parser& p, const YAML::Node& node, const std::string& where) {
  p.OnlyKeys(node, where,
             {"name",
              "handler",
              "topic",
              "partitions",
              "params",
              "concurrency",
              "timeout",
              "memory_mb",
              "max_payload",
              "retries",
              "dead_letter_topic",
              "results_topic",
              "workers",
              "scaling",
              "next",
              "batch",
              "start",
              "group",
              "max_record_age",
              "filter",
              "replication_factor"});
  FunctionSpec f;
  if (!node["name"]) p.Fail(node, where + ".name", "is required");
  f.name = p.Scalar<std::string>(node["name"], where + ".name");
  if (!IsTopicName(f.name))
    p.Fail(node["name"], where + ".name", fmt::format("'{}' must be 1..249 of [A-Za-z0-9._-]", f.name));
  f.handler =
      node["handler"] ? p.Scalar<std::string>(node["handler"], where + ".handler") : "builtin:" + f.name;
  // Relative paths in plugin: and exec: resolve against the config file's directory; the spec
  // keeps them absolute so workers started anywhere find the same files.
  try {
    f.handler = ResolveHandler(ParseHandler(f.handler), p.Dir()).ToString();
  } catch (const ConfigError& e) {
    p.Fail(node["handler"], where + ".handler", e.what());
  }
  f.handler_dir = p.Dir().string();
  f.topic = node["topic"] ? p.Scalar<std::string>(node["topic"], where + ".topic") : f.name;
  if (!IsTopicName(f.topic))
    p.Fail(node["topic"], where + ".topic", fmt::format("'{}' is not a valid topic name", f.topic));
  if (node["partitions"])
    f.partitions = static_cast<int>(p.Int(node["partitions"], where + ".partitions", 1, 10'000));
  if (node["params"]) {
    if (!node["params"].IsMap()) p.Fail(node["params"], where + ".params", "must be a mapping");
    f.params = p.Json(node["params"], where + ".params");
  }
  if (const auto b = node["batch"]) f.batch = ParseBatch(p, b, where + ".batch", f.batch_line);
  if (node["concurrency"])
    f.concurrency = static_cast<int>(p.Int(node["concurrency"], where + ".concurrency", 1, 10'000));
  if (node["timeout"]) {
    f.timeout = p.Duration(node["timeout"], where + ".timeout");
    if (f.timeout.count() < 1) p.Fail(node["timeout"], where + ".timeout", "must be at least 1ms");
  }
  if (node["replication_factor"]) {
    f.replication_factor =
        static_cast<int>(p.Int(node["replication_factor"], where + ".replication_factor", 1, 32));
  }
  if (node["memory_mb"])
    f.memory_mb = static_cast<int>(p.Int(node["memory_mb"], where + ".memory_mb", 0, 1 << 20));
  if (node["max_payload"]) {
    f.max_payload =
        static_cast<std::size_t>(p.Int(node["max_payload"], where + ".max_payload", 0, 100L << 20));
  }
  if (const auto r = node["retries"]) {
    const std::string rw = where + ".retries";
    p.OnlyKeys(r, rw, {"max_attempts", "backoff", "backoff_max", "multiplier"});
    if (r["max_attempts"])
      f.retry.max_attempts = static_cast<int>(p.Int(r["max_attempts"], rw + ".max_attempts", 1, 100));
    if (r["backoff"]) f.retry.backoff_initial = p.Duration(r["backoff"], rw + ".backoff");
    if (r["backoff_max"]) f.retry.backoff_max = p.Duration(r["backoff_max"], rw + ".backoff_max");
    if (r["multiplier"]) {
      f.retry.backoff_multiplier = p.Scalar<double>(r["multiplier"], rw + ".multiplier");
      if (f.retry.backoff_multiplier < 1.0 || f.retry.backoff_multiplier > 10.0) {
        p.Fail(r["multiplier"], rw + ".multiplier", "must be within 1..10");
      }
    }
  }
  f.dead_letter_topic = node["dead_letter_topic"]
                            ? p.Scalar<std::string>(node["dead_letter_topic"], where + ".dead_letter_topic")
                            : f.topic + ".dlq";
  if (node["results_topic"])
    f.results_topic = p.Scalar<std::string>(node["results_topic"], where + ".results_topic");
  if (const auto s = node["start"]) {
    const auto start = p.Scalar<std::string>(s, where + ".start");
    if (start != "earliest" && start != "latest") {
      p.Fail(s, where + ".start", fmt::format("'{}' is not earliest or latest", start));
    }
    f.start = start == "latest" ? StartPosition::kLatest : StartPosition::kEarliest;
  }
  if (const auto g = node["group"]) {
    f.group = p.Scalar<std::string>(g, where + ".group");
    if (!IsTopicName(f.group))
      p.Fail(g, where + ".group", fmt::format("'{}' must be 1..249 of [A-Za-z0-9._-]", f.group));
  }
  if (const auto a = node["max_record_age"]) {
    f.max_record_age = p.Duration(a, where + ".max_record_age");
    if (f.max_record_age < std::chrono::seconds(1))
      p.Fail(a, where + ".max_record_age", "must be at least 1s");
  }
  if (const auto fl = node["filter"]) {
    f.filter = detail::ParseEventFilter(
        fl, where + ".filter",
        [&p](const YAML::Node& n, const std::string& key, const std::string& why) { p.Fail(n, key, why); });
  }
  if (node["workers"] && node["scaling"]) {
    p.Fail(node["workers"], where + ".workers",
           "a fixed count; use scaling.min and scaling.max with scaling, not both");
  }
  if (node["workers"]) {
    f.scaling.min = f.scaling.max = static_cast<int>(p.Int(node["workers"], where + ".workers", 0, 1000));
  }
  if (const auto sc = node["scaling"]) {
    const std::string sw = where + ".scaling";
    p.OnlyKeys(sc, sw, {"min", "max", "target_drain", "idle_to_zero", "stabilization", "warm", "shared"});
    ScalingSpec& s = f.scaling;
    if (sc["min"]) s.min = static_cast<int>(p.Int(sc["min"], sw + ".min", 0, 1000));
    if (sc["max"]) s.max = static_cast<int>(p.Int(sc["max"], sw + ".max", 1, 1000));
    if (sc["warm"]) s.warm = static_cast<int>(p.Int(sc["warm"], sw + ".warm", 0, 1000));
    if (sc["shared"]) s.shared = p.Scalar<bool>(sc["shared"], sw + ".shared");
    if (sc["target_drain"]) s.target_drain = p.Duration(sc["target_drain"], sw + ".target_drain");
    if (sc["idle_to_zero"]) s.idle_to_zero = p.Duration(sc["idle_to_zero"], sw + ".idle_to_zero");
    if (sc["stabilization"]) s.stabilization = p.Duration(sc["stabilization"], sw + ".stabilization");
    if (!sc["max"] && s.min > s.max) s.max = s.min;  // `min: 6` alone raises the default max
    if (s.min > s.max) p.Fail(sc["min"], sw + ".min", fmt::format("{} is above max {}", s.min, s.max));
    if (s.warm > s.max) p.Fail(sc["warm"], sw + ".warm", fmt::format("{} is above max {}", s.warm, s.max));
    if (s.target_drain.count() < 100)
      p.Fail(sc["target_drain"], sw + ".target_drain", "must be at least 100ms");
  }
  if (const auto n = node["next"]) {
    if (n.IsScalar()) {
      f.next.push_back(p.Scalar<std::string>(n, where + ".next"));
    } else if (n.IsSequence()) {
      for (std::size_t i = 0; i < n.size(); ++i)
        f.next.push_back(p.Scalar<std::string>(n[i], fmt::format("{}.next[{}]", where, i)));
    } else {
      p.Fail(n, where + ".next", "must be a function name or a list of them");
    }
  }
  return f;
}

ScheduleSpec ParseSchedule(const Parser& p, const YAML::Node& node, const std::string& where,
                           const StackConfig& config, const std::filesystem::path& base_dir) {
  p.OnlyKeys(node, where,
             {"name", "cron", "timezone", "function", "payload", "content_type", "files", "catch_up"});
  ScheduleSpec s;
  s.line = node.Mark().is_null() ? 0 : node.Mark().line + 1;
  if (!node["name"]) p.Fail(node, where + ".name", "is required");
  s.name = p.Scalar<std::string>(node["name"], where + ".name");
  if (s.name.empty() || s.name.size() > 64 || !IsTopicName(s.name)) {
    p.Fail(node["name"], where + ".name", fmt::format("'{}' must be 1..64 of [A-Za-z0-9._-]", s.name));
  }
  if (!node["cron"]) p.Fail(node, where + ".cron", "is required (e.g. \"0 2 * * *\" or @daily)");
  s.cron = p.Scalar<std::string>(node["cron"], where + ".cron");
  s.cron_line = node["cron"].Mark().line + 1;
  s.timezone_line = s.line;
  if (node["timezone"]) {
    s.timezone = p.Scalar<std::string>(node["timezone"], where + ".timezone");
    s.timezone_line = node["timezone"].Mark().line + 1;
  }
  if (!node["function"]) p.Fail(node, where + ".function", "is required");
  s.function = p.Scalar<std::string>(node["function"], where + ".function");
  if (config.Find(s.function) == nullptr) {
    std::string known;
    for (const auto& f : config.functions) known += (known.empty() ? "" : ", ") + f.name;
    p.Fail(node["function"], where + ".function",
           fmt::format("'{}' is not a function of this stack (functions: {})", s.function, known));
  }
  if (node["payload"] && node["files"])
    p.Fail(node["files"], where + ".files", "give either payload or files, not both");
  if (!node["payload"] && !node["files"])
    p.Fail(node, where, "needs payload (one event) or files (one event per file)");
  if (node["payload"]) s.payload = p.Scalar<std::string>(node["payload"], where + ".payload");
  if (node["content_type"]) {
    if (!node["payload"]) {
      p.Fail(node["content_type"], where + ".content_type",
             "applies to payload only (files get theirs from the extension)");
    }
    s.content_type = p.Scalar<std::string>(node["content_type"], where + ".content_type");
    if (s.content_type.find('/') == std::string::npos) {
      p.Fail(node["content_type"], where + ".content_type",
             fmt::format("'{}' is not a MIME type like text/plain", s.content_type));
    }
  }
  if (const auto f = node["files"]) {
    const std::string fw = where + ".files";
    p.OnlyKeys(f, fw, {"dir", "glob", "recursive"});
    ScheduleSpec::Files files;
    if (!f["dir"]) p.Fail(f, fw + ".dir", "is required");
    const std::string dir = p.Scalar<std::string>(f["dir"], fw + ".dir");
    if (dir.empty()) p.Fail(f["dir"], fw + ".dir", "must not be empty");
    files.dir = std::filesystem::path(dir).is_absolute() ? dir : (base_dir / dir).lexically_normal().string();
    if (f["glob"]) {
      files.glob = p.Scalar<std::string>(f["glob"], fw + ".glob");
      if (files.glob.empty() || files.glob.find('/') != std::string::npos) {
        p.Fail(f["glob"], fw + ".glob",
               fmt::format("'{}' must be a non-empty file-name pattern without '/'", files.glob));
      }
    }
    if (f["recursive"]) files.recursive = p.Scalar<bool>(f["recursive"], fw + ".recursive");
    s.files = files;
  }
  if (node["catch_up"]) s.catch_up = p.Duration(node["catch_up"], where + ".catch_up");
  return s;
}

ListenAddress ParseListenAddress(const Parser& p, const YAML::Node& node, const std::string& key) {
  auto parsed = ListenAddress::Parse(p.Scalar<std::string>(node, key));
  if (auto* why = std::get_if<std::string>(&parsed))
    p.Fail(node, key, *why + " (HOST, HOST:PORT or HOST:LOW-HIGH)");
  auto address = std::get<ListenAddress>(std::move(parsed));
  address.line = node.Mark().line + 1;
  return address;
}

// `outputs`: where workers PUT output files (docs/config.md#outputs).
OutputTarget ParseOutputs(const Parser& p, const YAML::Node& node) {
  if (!node.IsMap()) {
    p.Fail(node, "outputs",
           "must be a mapping like {url: \"http://store:9000/bucket/runnel\", headers: {...}, timeout: 30s}");
  }
  p.OnlyKeys(node, "outputs", {"url", "headers", "timeout"});
  OutputTarget target;
  const auto url = node["url"];
  if (!url) p.Fail(node, "outputs.url", "is required (the base URL each output file is PUT under)");
  const auto text = p.Scalar<std::string>(url, "outputs.url");
  if (const auto why = OutputUrlProblem(text); !why.empty()) p.Fail(url, "outputs.url", why);
  target.url = NormalizeOutputUrl(text);
  if (const auto h = node["headers"]) {
    if (!h.IsMap()) p.Fail(h, "outputs.headers", "must be a mapping of HTTP header names to values");
    if (h.size() > OutputTarget::kMaxHeaders) {
      p.Fail(h, "outputs.headers",
             fmt::format("has {} headers, more than {}", h.size(), OutputTarget::kMaxHeaders));
    }
    for (const auto& kv : h) {
      const auto name = kv.first.as<std::string>();
      const std::string key = "outputs.headers." + name;
      // Held as a secret from here on: an Authorization value must never reach a log line.
      Secret value(p.Scalar<std::string>(kv.second, key));
      if (const auto why = OutputHeaderProblem(name, value.Reveal()); !why.empty()) {
        p.Fail(kv.first, key, why);
      }
      for (const auto& [seen, unused] : target.headers) {
        if (SameHeaderName(seen, name)) p.Fail(kv.first, key, fmt::format("repeats header {}", seen));
      }
      target.headers.emplace_back(name, std::move(value));
    }
  }
  if (const auto t = node["timeout"]) {
    target.timeout = p.Duration(t, "outputs.timeout");
    if (target.timeout < OutputTarget::kMinTimeout || target.timeout > OutputTarget::kMaxTimeout)
      p.Fail(t, "outputs.timeout", "must be between 100ms and 1h");
  }
  return target;
}

// `workers`: which backend runs the workers, and for kubernetes where its Deployments are
// (docs/config.md#workers). Deployment names are resolved once the functions are known.
void ParseWorkers(const Parser& p, const YAML::Node& node, WorkersConfig& workers) {
  if (!node.IsMap()) {
    p.Fail(node, "workers", "must be a mapping like {backend: kubernetes, kubernetes: {...}}");
  }
  p.OnlyKeys(node, "workers", {"backend", "kubernetes"});
  if (const auto b = node["backend"]) {
    const auto name = p.Scalar<std::string>(b, "workers.backend");
    if (name == "local") {
      workers.backend = WorkersConfig::Backend::kLocal;
    } else if (name == "kubernetes") {
      workers.backend = WorkersConfig::Backend::kKubernetes;
    } else if (name == "external") {
      workers.backend = WorkersConfig::Backend::kExternal;
    } else {
      p.Fail(b, "workers.backend", fmt::format("'{}' is not a backend (local, kubernetes, external)", name));
    }
  }
  const auto k = node["kubernetes"];
  if (!k) return;
  if (workers.backend != WorkersConfig::Backend::kKubernetes) {
    p.Fail(k, "workers.kubernetes", "is set but workers.backend is not kubernetes");
  }
  p.OnlyKeys(k, "workers.kubernetes",
             {"api_server", "namespace", "token_file", "ca_file", "deployments", "timeout",
              "scale_to_zero_on_stop"});
  auto& kw = workers.kubernetes;
  if (const auto a = k["api_server"]) {
    kw.api_server = p.Scalar<std::string>(a, "workers.kubernetes.api_server");
    const bool scheme = kw.api_server.starts_with("https://") || kw.api_server.starts_with("http://");
    const auto rest = kw.api_server.substr(
        kw.api_server.find("//") == std::string::npos ? 0 : kw.api_server.find("//") + 2);
    if (!scheme || rest.empty() || rest.front() == '/' || rest.find_first_of("?#@ ") != std::string::npos) {
      p.Fail(a, "workers.kubernetes.api_server",
             fmt::format("'{}' is not an http:// or https:// URL of the API server "
                         "(e.g. https://10.0.0.1:443; no query, no user:password@)",
                         kw.api_server));
    }
    while (kw.api_server.ends_with('/')) kw.api_server.pop_back();
  }
  if (const auto n = k["namespace"]) {
    kw.ns = p.Scalar<std::string>(n, "workers.kubernetes.namespace");
    if (const auto why = Dns1123LabelProblem(kw.ns); !why.empty()) {
      p.Fail(n, "workers.kubernetes.namespace", why);
    }
  }
  const auto path = [&](const char* key) {
    const std::string name = fmt::format("workers.kubernetes.{}", key);
    auto value = p.Scalar<std::string>(k[key], name);
    if (value.empty()) p.Fail(k[key], name, "is empty");
    const std::filesystem::path file(value);
    return (file.is_relative() ? p.Dir() / file : file).string();
  };
  if (k["token_file"]) kw.token_file = path("token_file");
  if (k["ca_file"]) kw.ca_file = path("ca_file");
  if (const auto d = k["deployments"]) {
    if (!d.IsMap()) {
      p.Fail(d, "workers.kubernetes.deployments", "must be a mapping of function names to Deployment names");
    }
    for (const auto& kv : d) {
      const auto fn = kv.first.as<std::string>();
      const std::string key = "workers.kubernetes.deployments." + fn;
      auto name = p.Scalar<std::string>(kv.second, key);
      if (const auto why = Dns1123SubdomainProblem(name); !why.empty()) p.Fail(kv.second, key, why);
      kw.deployments[fn] = std::move(name);
    }
  }
  if (const auto t = k["timeout"]) {
    kw.timeout = p.Duration(t, "workers.kubernetes.timeout");
    if (kw.timeout < KubernetesWorkers::kMinTimeout || kw.timeout > KubernetesWorkers::kMaxTimeout) {
      p.Fail(t, "workers.kubernetes.timeout", "must be between 100ms and 10s (the autoscaler waits for it)");
    }
  }
  if (const auto z = k["scale_to_zero_on_stop"]) {
    kw.scale_to_zero_on_stop = p.Scalar<bool>(z, "workers.kubernetes.scale_to_zero_on_stop");
  }
}

// Every function's Deployment: a name given under workers.kubernetes.deployments, else the default;
// a name given for no function, a default that is not a valid name and two functions on one
// Deployment are errors.
void ResolveDeployments(const Parser& p, const YAML::Node& root, StackConfig& config) {
  if (config.workers.backend != WorkersConfig::Backend::kKubernetes) return;
  auto& given = config.workers.kubernetes.deployments;
  // yaml-cpp throws on a lookup in a node that is not there: one level at a time.
  YAML::Node given_node;
  if (const auto k = root["workers"]["kubernetes"]) {
    if (const auto d = k["deployments"]) given_node = d;
  }
  std::map<std::string, std::string> resolved;
  for (const auto& [fn, name] : given) {
    if (config.Find(fn) == nullptr) {
      std::string known;
      for (const auto& f : config.functions) known += (known.empty() ? "" : ", ") + f.name;
      // reset() rebinds `at`; assigning one YAML::Node to another overwrites the node it refers to
      // (here the mapping being walked: a use-after-free, found by fuzzing).
      YAML::Node at;
      at.reset(given_node);
      for (const auto& kv : given_node) {
        if (kv.first.as<std::string>() == fn) at.reset(kv.first);
      }
      p.Fail(at, "workers.kubernetes.deployments." + fn,
             fmt::format("'{}' is not a function of this stack (functions: {})", fn, known));
    }
  }
  std::map<std::string, std::string> owner;  // Deployment -> function
  for (const auto& f : config.functions) {
    std::string name;
    if (const auto it = given.find(f.name); it != given.end()) {
      name = it->second;
    } else {
      name = DefaultDeploymentName(f.name);
      if (const auto why = Dns1123SubdomainProblem(name); !why.empty()) {
        p.Fail(root["workers"], "workers.kubernetes.deployments",
               fmt::format("function {}: its default Deployment name '{}' {}; name one: "
                           "deployments: {{{}: runnel-worker-...}}",
                           f.name, name, why.substr(why.find(' ') + 1), f.name));
      }
    }
    if (const auto [it, fresh] = owner.emplace(name, f.name); !fresh) {
      p.Fail(given_node.IsMap() ? given_node : root["workers"], "workers.kubernetes.deployments",
             fmt::format("functions {} and {} would share Deployment '{}': each needs its own", it->second,
                         f.name, name));
    }
    resolved[f.name] = std::move(name);
  }
  given = std::move(resolved);
}

// listen, advertise, security: where the stack's sockets bind and who may connect.
void ParseSockets(const Parser& p, const YAML::Node& root, StackConfig& config) {
  if (const auto l = root["listen"]) {
    p.OnlyKeys(l, "listen", {"dispatchers", "results", "control", "metrics"});
    if (l["dispatchers"])
      config.listen.dispatchers = ParseListenAddress(p, l["dispatchers"], "listen.dispatchers");
    for (const auto& [key, address] :
         {std::pair{"results", &config.listen.results}, {"control", &config.listen.control}}) {
      const auto node = l[key];
      if (!node) continue;
      const std::string name = fmt::format("listen.{}", key);
      *address = ParseListenAddress(p, node, name);
      if (address->Ports() != 1) p.Fail(node, name, "takes one port, not a range");
    }
    if (const auto m = l["metrics"]) {
      if (root["metrics"])
        p.Fail(m, "listen.metrics", "is also set as the top-level metrics: set it in one place");
      const auto address = ParseListenAddress(p, m, "listen.metrics");
      if (address.Ports() != 1) p.Fail(m, "listen.metrics", "takes one port, not a range");
      config.metrics_listen = address.HostPort();
      config.metrics_line = address.line;
    }
  }
  if (const auto a = root["advertise"]) {
    config.advertise = p.Scalar<std::string>(a, "advertise");
    if (config.advertise.empty() || config.advertise.find_first_of(" /:[]") != std::string::npos) {
      p.Fail(a, "advertise", fmt::format("'{}' is not a host name or IPv4 address", config.advertise));
    }
  }
  if (const auto s = root["security"]) {
    p.OnlyKeys(s, "security", {"curve", "clients"});
    if (s["curve"]) {
      config.security.curve = p.Scalar<bool>(s["curve"], "security.curve");
      config.security.curve_line = s["curve"].Mark().line + 1;
    }
    if (s["clients"]) {
      const auto dir = p.Scalar<std::string>(s["clients"], "security.clients");
      if (dir.empty()) p.Fail(s["clients"], "security.clients", "must not be empty");
      config.security.clients =
          std::filesystem::path(dir).is_absolute() ? dir : (p.Dir() / dir).lexically_normal().string();
    }
  }
}

}  // namespace

std::chrono::milliseconds RetryPolicy::Backoff(int next_attempt) const {
  double ms = static_cast<double>(backoff_initial.count()) *
              std::pow(backoff_multiplier, std::max(0, next_attempt - 2));
  ms = std::min(ms, static_cast<double>(backoff_max.count()));
  return std::chrono::milliseconds(static_cast<std::int64_t>(ms));
}

const FunctionSpec* StackConfig::Find(const std::string& name) const {
  for (const auto& f : functions) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

bool IsSensitiveKafkaOption(std::string_view name) {
  // librdkafka 2.0's _RK_SENSITIVE properties, plus sasl.oauthbearer.client.secret (flagged in
  // later versions).
  static constexpr std::array<std::string_view, 10> kSensitive = {"ssl.key.location",
                                                                  "ssl.key.password",
                                                                  "ssl.key.pem",
                                                                  "ssl_key",
                                                                  "ssl.ca.pem",
                                                                  "ssl.keystore.password",
                                                                  "sasl.username",
                                                                  "sasl.password",
                                                                  "sasl.oauthbearer.config",
                                                                  "sasl.oauthbearer.client.secret"};
  return std::find(kSensitive.begin(), kSensitive.end(), name) != kSensitive.end();
}

StackConfig LoadStackConfig(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);  // as YAML::LoadFile read it
  std::string text;
  if (in) text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  if (!in.is_open() || in.bad()) throw ConfigError(fmt::format("{}: cannot read the file", file.string()));
  return ParseStackConfig(text, file);
}

StackConfig ParseStackConfig(const std::string& yaml, const std::filesystem::path& file) {
  Parser p(file.string());
  YAML::Node root;
  try {
    root = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    throw ConfigError(fmt::format("{}:{}: not valid YAML: {}", file.string(), e.mark.line + 1, e.msg));
  }
  if (!root || root.IsNull()) throw ConfigError(fmt::format("{}: the file is empty", file.string()));
  p.ExpandEnvironment(root, "");
  p.OnlyKeys(root, "",
             {"kafka", "heartbeat", "output_dir", "outputs", "metrics", "trace_events", "standby_workers",
              "functions", "schedules", "replication_factor", "listen", "advertise", "security", "workers",
              "gateway"});
  StackConfig config;
  config.source = file.string();
  if (const auto k = root["kafka"]) {
    p.OnlyKeys(k, "kafka", {"bootstrap", "options", "secrets"});
    if (k["bootstrap"]) config.kafka_bootstrap = p.Scalar<std::string>(k["bootstrap"], "kafka.bootstrap");
    if (const auto o = k["options"]) {
      if (!o.IsMap()) p.Fail(o, "kafka.options", "must be a mapping of librdkafka options");
      for (const auto& kv : o) {
        const auto name = kv.first.as<std::string>();
        auto value = p.Scalar<std::string>(kv.second, "kafka.options." + name);
        if (IsSensitiveKafkaOption(name)) {
          config.kafka_secrets.insert_or_assign(name, Secret(std::move(value)));
        } else {
          config.kafka_options[name] = std::move(value);
        }
      }
    }
    if (const auto o = k["secrets"]) {
      if (!o.IsMap())
        p.Fail(o, "kafka.secrets", "must be a mapping of librdkafka options whose values are secret");
      for (const auto& kv : o) {
        const auto name = kv.first.as<std::string>();
        if (config.kafka_options.contains(name) || config.kafka_secrets.contains(name)) {
          p.Fail(kv.first, "kafka.secrets." + name, "is also set in kafka.options: set it in one place");
        }
        config.kafka_secrets.emplace(name, Secret(p.Scalar<std::string>(kv.second, "kafka.secrets." + name)));
      }
    }
  }
  if (root["heartbeat"]) config.heartbeat = p.Duration(root["heartbeat"], "heartbeat");
  if (config.heartbeat.count() < 10) p.Fail(root["heartbeat"], "heartbeat", "must be at least 10ms");
  if (root["standby_workers"])
    config.standby_workers = p.Scalar<bool>(root["standby_workers"], "standby_workers");
  if (root["output_dir"]) config.output_dir = p.Scalar<std::string>(root["output_dir"], "output_dir");
  if (const auto o = root["outputs"]) config.outputs = ParseOutputs(p, o);
  if (const auto w = root["workers"]) ParseWorkers(p, w, config.workers);
  if (const auto m = root["metrics"]) {
    config.metrics_listen = p.Scalar<std::string>(m, "metrics");
    const auto colon = config.metrics_listen.rfind(':');
    const std::string port = colon == std::string::npos ? "" : config.metrics_listen.substr(colon + 1);
    if (colon == 0 || port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) > 65535) {
      p.Fail(m, "metrics",
             fmt::format("'{}' is not HOST:PORT (e.g. 127.0.0.1:9464; port 0: any free port)",
                         config.metrics_listen));
    }
  }
  if (root["metrics"]) config.metrics_line = root["metrics"].Mark().line + 1;
  ParseSockets(p, root, config);
  if (const auto t = root["trace_events"]) {
    config.trace_events = static_cast<std::size_t>(p.Int(t, "trace_events", 1, 10'000'000));
  }
  if (root["replication_factor"]) {
    config.replication_factor =
        static_cast<int>(p.Int(root["replication_factor"], "replication_factor", 1, 32));
  }
  const auto fns = root["functions"];
  if (!fns || !fns.IsSequence() || fns.size() == 0)
    p.Fail(fns ? fns : root, "functions", "must be a non-empty list");
  std::set<std::string> names;
  std::set<std::string> topics;
  for (std::size_t i = 0; i < fns.size(); ++i) {
    FunctionSpec f = ParseFunction(p, fns[i], fmt::format("functions[{}]", i));
    if (!f.replication_factor) f.replication_factor = config.replication_factor;
    if (!names.insert(f.name).second) {
      p.Fail(fns[i]["name"], fmt::format("functions[{}].name", i),
             fmt::format("'{}' is defined twice", f.name));
    }
    if (!topics.insert(f.topic).second) {
      p.Fail(fns[i], fmt::format("functions[{}].topic", i),
             fmt::format("topic '{}' already feeds another function", f.topic));
    }
    config.functions.push_back(std::move(f));
  }
  // Pipelines name functions defined in the same file.
  for (std::size_t i = 0; i < config.functions.size(); ++i) {
    for (std::size_t k = 0; k < config.functions[i].next.size(); ++k) {
      const std::string& target = config.functions[i].next[k];
      if (!names.contains(target)) {
        const auto node = fns[i]["next"];
        p.Fail(node.IsSequence() ? node[k] : node, fmt::format("functions[{}].next", i),
               fmt::format("'{}' is not a function defined in this file", target));
      }
    }
  }
  if (const auto sch = root["schedules"]) {
    if (!sch.IsSequence()) p.Fail(sch, "schedules", "must be a list");
    std::set<std::string> schedule_names;
    const auto base_dir = std::filesystem::absolute(file).parent_path();
    for (std::size_t i = 0; i < sch.size(); ++i) {
      ScheduleSpec s = ParseSchedule(p, sch[i], fmt::format("schedules[{}]", i), config, base_dir);
      if (!schedule_names.insert(s.name).second) {
        p.Fail(sch[i]["name"], fmt::format("schedules[{}].name", i),
               fmt::format("'{}' is defined twice", s.name));
      }
      config.schedules.push_back(std::move(s));
    }
  }
  if (const auto g = root["gateway"]) {
    config.gateway = detail::ParseGateway(
        g, names, p.Dir(),
        [&p](const YAML::Node& n, const std::string& key, const std::string& why) { p.Fail(n, key, why); });
  }
  ResolveDeployments(p, root, config);
  CheckListen(config);
  return config;
}

std::string DefaultDeploymentName(std::string_view function) {
  std::string name = "runnel-worker-";
  for (const char c : function) name += c == '.' ? '-' : c;
  return name;
}

namespace {
// DNS-1123: lowercase letters, digits and '-' (and '.' between labels of a subdomain), starting and
// ending with a letter or digit.
std::string Dns1123Problem(std::string_view name, std::size_t max, bool dots) {
  const auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  const std::string_view kind = dots ? "DNS-1123 subdomain" : "DNS-1123 label";
  if (name.empty()) return fmt::format("'' is not a {}: it is empty", kind);
  if (name.size() > max) {
    return fmt::format("'{}' is not a {}: {} characters, more than {}", name, kind, name.size(), max);
  }
  for (const char c : name) {
    if (!alnum(c) && c != '-' && !(dots && c == '.')) {
      return fmt::format("'{}' is not a {}: only lowercase letters, digits and '-'{} (found '{}')", name,
                         kind, dots ? " and '.'" : "", c);
    }
  }
  if (!alnum(name.front()) || !alnum(name.back())) {
    return fmt::format("'{}' is not a {}: it must start and end with a lowercase letter or digit", name,
                       kind);
  }
  return {};
}
}  // namespace

std::string Dns1123SubdomainProblem(std::string_view name) { return Dns1123Problem(name, 253, true); }
std::string Dns1123LabelProblem(std::string_view name) { return Dns1123Problem(name, 63, false); }

void CheckListen(const StackConfig& config) {
  const auto where = [&](int line, const std::string& key) {
    return line > 0 ? fmt::format("{}:{}: {}", config.source, line, key) : key;
  };
  const std::pair<const ListenAddress*, const char*> kinds[] = {
      {&config.listen.dispatchers, "listen.dispatchers"},
      {&config.listen.results, "listen.results"},
      {&config.listen.control, "listen.control"}};
  if (!config.security.curve) {
    for (const auto& [address, key] : kinds) {
      if (address->IsLoopback()) continue;
      throw ConfigError(fmt::format(
          "{}: binds {}, beyond this host, while security.curve is false{}: CURVE may be off only when every "
          "socket binds a loopback address",
          where(address->line, key), address->host,
          config.security.curve_line > 0 ? fmt::format(" (line {})", config.security.curve_line) : ""));
    }
  }
  const auto& d = config.listen.dispatchers;
  if (d.port_low != 0 && d.Ports() < config.functions.size()) {
    throw ConfigError(
        fmt::format("{}: {} port(s) for {} functions: give a range with a port for each, e.g. {}:{}-{}",
                    where(d.line, "listen.dispatchers"), d.Ports(), config.functions.size(), d.host,
                    d.port_low, d.port_low + config.functions.size() - 1));
  }
}

StackConfig DefaultStack(const std::vector<std::string>& builtin_names) {
  StackConfig config;
  config.source = "(built-in default)";
  for (const auto& name : builtin_names) {
    FunctionSpec f;
    f.name = name;
    f.handler = "builtin:" + name;
    f.topic = name;
    f.dead_letter_topic = name + ".dlq";
    config.functions.push_back(std::move(f));
  }
  return config;
}

}  // namespace runnel
