#include "runnel/autoscaler/kubernetes_backend.hpp"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>

#include "runnel/core/error.hpp"
#include "runnel/core/log.hpp"
#include "runnel/core/secret.hpp"

namespace runnel::autoscaler {
namespace {

using Clock = std::chrono::steady_clock;

// An answer larger than this is not a Scale or a Status: the read stops there.
constexpr std::size_t kMaxAnswerBytes = 1 << 20;

std::shared_ptr<spdlog::logger> Log() { return log::kAutoscaler.Logger(); }

std::string Trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r' || s.back() == ' ' || s.back() == '\t'))
    s.pop_back();
  return s;
}

// The whole file, or nullopt with `why` set.
std::optional<std::string> ReadFile(const std::filesystem::path& file, std::string& why) {
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    why = fmt::format("cannot read {}: {}", file.string(), std::strerror(errno));
    return std::nullopt;
  }
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

std::size_t OnBody(char* data, std::size_t size, std::size_t count, void* user) {
  auto* body = static_cast<std::string*>(user);
  const std::size_t n = size * count;
  if (body->size() + n > kMaxAnswerBytes) return 0;  // aborts with CURLE_WRITE_ERROR
  body->append(data, n);
  return n;
}

void CurlInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A replicas count from a Scale: a non-negative integer that fits an int.
std::optional<int> Replicas(const nlohmann::json& obj) {
  if (!obj.is_object()) return std::nullopt;
  const auto it = obj.find("replicas");
  if (it == obj.end()) return std::nullopt;
  if (!it->is_number_integer()) return std::nullopt;
  const auto v = it->get<std::int64_t>();
  if (v < 0 || v > 1'000'000) return std::nullopt;
  return static_cast<int>(v);
}

}  // namespace

KubernetesBackend::Options KubernetesBackend::Resolve(const KubernetesWorkers& config) {
  const std::filesystem::path sa(kServiceAccountDir);
  Options o;
  o.api_server = config.api_server;
  if (o.api_server.empty()) {
    const char* host = std::getenv("KUBERNETES_SERVICE_HOST");
    const char* port = std::getenv("KUBERNETES_SERVICE_PORT");
    if (host == nullptr || *host == '\0') {
      throw ConfigError(
          "workers.kubernetes.api_server is not set and $KUBERNETES_SERVICE_HOST is not either (not in a "
          "pod?): "
          "outside a cluster, set api_server, token_file, ca_file and namespace");
    }
    const std::string h = std::strchr(host, ':') != nullptr ? fmt::format("[{}]", host) : host;
    o.api_server = fmt::format("https://{}:{}", h, port != nullptr && *port != '\0' ? port : "443");
  }
  o.token_file = config.token_file.empty() ? sa / "token" : std::filesystem::path(config.token_file);
  if (!config.ca_file.empty()) {
    o.ca_file = config.ca_file;
  } else if (std::error_code ec; std::filesystem::exists(sa / "ca.crt", ec)) {
    o.ca_file = sa / "ca.crt";
  }
  o.ns = config.ns;
  if (o.ns.empty()) {
    std::string why;
    const auto text = ReadFile(sa / "namespace", why);
    if (!text) {
      throw ConfigError(
          fmt::format("workers.kubernetes.namespace is not set and the service account's {} (not "
                      "in a pod?); set namespace",
                      why));
    }
    o.ns = Trimmed(*text);
    if (const auto problem = Dns1123LabelProblem(o.ns); !problem.empty()) {
      throw ConfigError(fmt::format("{}: {}", (sa / "namespace").string(), problem));
    }
  }
  o.deployments = config.deployments;
  o.timeout = config.timeout;
  o.scale_to_zero_on_stop = config.scale_to_zero_on_stop;
  return o;
}

KubernetesBackend::KubernetesBackend(Options options) : opt_(std::move(options)) {
  CurlInitOnce();
  if (opt_.api_server.empty()) throw ConfigError("kubernetes backend: no API server");
  if (opt_.ns.empty()) throw ConfigError("kubernetes backend: no namespace");
  std::string names;
  for (const auto& [fn, name] : opt_.deployments)
    names += fmt::format("{}{} -> {}", names.empty() ? "" : ", ", fn, name);
  Log()->info(
      "workers are Kubernetes Deployments ({}) in namespace {}, scaled at {}; token from {} (read before "
      "each "
      "request), CA {}; requests time out after {} ms",
      names.empty() ? "default names" : names, opt_.ns, opt_.api_server, opt_.token_file.string(),
      opt_.ca_file.empty() ? "(the system's)" : opt_.ca_file.string(), opt_.timeout.count());
  thread_ = std::thread([this] { Run(); });
}

KubernetesBackend::~KubernetesBackend() {
  {
    const std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

KubernetesBackend::Deployment& KubernetesBackend::Find(const std::string& function) {
  auto it = deployments_.find(function);
  if (it != deployments_.end()) return it->second;
  Deployment d;
  const auto named = opt_.deployments.find(function);
  d.name = named != opt_.deployments.end() ? named->second : DefaultDeploymentName(function);
  d.info.kind = "kubernetes";
  d.info.target = fmt::format("deployments/{} in namespace {}", d.name, opt_.ns);
  d.next_read = Clock::now();
  return deployments_.emplace(function, std::move(d)).first->second;
}

std::string KubernetesBackend::Path(const std::string& deployment) const {
  return fmt::format("/apis/apps/v1/namespaces/{}/deployments/{}/scale", opt_.ns, deployment);
}

void KubernetesBackend::Prepare(const std::string& function, const std::string& /*dispatcher*/) {
  {
    const std::lock_guard lock(mu_);
    Find(function).next_read = Clock::now();
  }
  cv_.notify_all();
}

std::string KubernetesBackend::Start(const std::string& function, const std::string& /*dispatcher*/) {
  std::string id;
  {
    const std::lock_guard lock(mu_);
    Deployment& d = Find(function);
    d.owned = true;
    d.dirty = true;
    d.info.applied = false;
    ++d.wanted;
    d.info.replicas_set = d.wanted;
    id = fmt::format("{}/{}", d.name, d.wanted);
  }
  cv_.notify_all();
  return id;
}

void KubernetesBackend::Stop(const std::string& id, std::chrono::milliseconds /*grace*/) {
  const auto slash = id.rfind('/');
  const std::string name = slash == std::string::npos ? id : id.substr(0, slash);
  {
    const std::lock_guard lock(mu_);
    for (auto& [fn, d] : deployments_) {
      if (d.name != name) continue;
      if (d.wanted == 0) return;
      d.owned = true;
      d.dirty = true;
      d.info.applied = false;
      --d.wanted;
      d.info.replicas_set = d.wanted;
      break;
    }
  }
  cv_.notify_all();
}

std::vector<WorkerInfo> KubernetesBackend::List(const std::string& function) const {
  const std::lock_guard lock(mu_);
  std::vector<WorkerInfo> out;
  const auto it = deployments_.find(function);
  if (it == deployments_.end()) return out;
  const Deployment& d = it->second;
  const int pods = std::max(d.info.replicas, 0);
  const int total = std::max(d.wanted, pods);
  for (int i = 1; i <= total; ++i) {
    WorkerInfo w;
    w.id = fmt::format("{}/{}", d.name, i);
    w.function = function;
    w.pid = 0;
    if (i > d.wanted) {
      w.state = WorkerState::kStopping;
    } else {
      w.state = i <= pods ? WorkerState::kRunning : WorkerState::kStarting;
    }
    out.push_back(std::move(w));
  }
  return out;
}

std::optional<OrchestratorInfo> KubernetesBackend::OrchestratorOf(const std::string& function) const {
  const std::lock_guard lock(mu_);
  const auto it = deployments_.find(function);
  if (it == deployments_.end()) return std::nullopt;
  return it->second.info;
}

void KubernetesBackend::StopAll(std::chrono::milliseconds /*grace*/) {
  std::unique_lock lock(mu_);
  if (!opt_.scale_to_zero_on_stop) {
    if (!deployments_.empty()) {
      Log()->info(
          "leaving {} Deployment(s) at their replicas (workers.kubernetes.scale_to_zero_on_stop is false)",
          deployments_.size());
    }
    return;
  }
  for (auto& [fn, d] : deployments_) {
    d.owned = true;
    d.wanted = 0;
    d.info.replicas_set = 0;
    d.dirty = true;
    d.info.applied = false;
    d.next_patch = Clock::now();
  }
  cv_.notify_all();
  // One try each: every PATCH is bounded by the timeout, done one after the other.
  const auto deadline = Clock::now() + opt_.timeout * static_cast<int>(deployments_.size() + 1);
  applied_cv_.wait_until(lock, deadline, [this] {
    return std::all_of(deployments_.begin(), deployments_.end(), [](const auto& kv) {
      return !kv.second.dirty || kv.second.next_patch > Clock::now();  // applied, or failed once
    });
  });
  for (const auto& [fn, d] : deployments_) {
    if (d.dirty) {
      Log()->warn("function {}: could not scale {} to 0 on stop: {}", fn, d.info.target,
                  d.info.error.empty() ? "no answer in time" : d.info.error);
    } else {
      Log()->info("function {}: scaled {} to 0 on stop", fn, d.info.target);
    }
  }
}

void KubernetesBackend::Run() {
  std::unique_lock lock(mu_);
  while (!stop_) {
    const auto now = Clock::now();
    auto wake_at = now + std::chrono::hours(1);
    std::string function;
    bool patch = false;
    // Writes first: a PATCH carries what the autoscaler wants now, and its answer is a read too.
    for (const auto& [fn, d] : deployments_) {
      if (!d.dirty) continue;
      if (d.next_patch <= now) {
        function = fn;
        patch = true;
        break;
      }
      wake_at = std::min(wake_at, d.next_patch);
    }
    if (function.empty()) {
      for (const auto& [fn, d] : deployments_) {
        if (d.next_read <= now) {
          function = fn;
          break;
        }
        wake_at = std::min(wake_at, d.next_read);
      }
    }
    if (function.empty()) {
      cv_.wait_until(lock, wake_at);
      continue;
    }
    const Deployment& d = deployments_.at(function);
    const std::string path = Path(d.name);
    const int replicas = d.wanted;
    lock.unlock();
    const Answer a = patch ? Request("PATCH", path, fmt::format(R"({{"spec":{{"replicas":{}}}}})", replicas))
                           : Request("GET", path, "");
    Record(function, patch ? "PATCH" : "GET", patch ? replicas : -1, a);
    lock.lock();
  }
}

KubernetesBackend::Answer KubernetesBackend::Request(const char* method, const std::string& path,
                                                     const std::string& body) const {
  Answer out;
  std::string why;
  const auto token_text = ReadFile(opt_.token_file, why);
  if (!token_text) {
    out.failure = fmt::format("no bearer token: {}", why);
    return out;
  }
  const Secret token(Trimmed(*token_text));
  if (token.Empty()) {
    out.failure = fmt::format("no bearer token: {} is empty", opt_.token_file.string());
    return out;
  }
  const std::unique_ptr<CURL, decltype(&curl_easy_cleanup)> curl(curl_easy_init(), &curl_easy_cleanup);
  if (!curl) {
    out.failure = "libcurl: curl_easy_init failed";
    return out;
  }
  CURL* h = curl.get();
  curl_slist* list = nullptr;
  const std::string authorization = "Authorization: Bearer " + token.Reveal();
  list = curl_slist_append(list, authorization.c_str());
  list = curl_slist_append(list, "Accept: application/json");
  if (!body.empty()) list = curl_slist_append(list, "Content-Type: application/merge-patch+json");
  const std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(list, &curl_slist_free_all);
  const std::string url = opt_.api_server + path;
  char errbuf[CURL_ERROR_SIZE] = {};
  bool set = true;
  const auto opt = [&](CURLcode code) { set = set && code == CURLE_OK; };
  opt(curl_easy_setopt(h, CURLOPT_URL, url.c_str()));
  opt(curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https"));
  opt(curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L));
  opt(curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method));
  if (!body.empty()) {
    opt(curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str()));
    opt(curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size())));
  }
  opt(curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get()));
  opt(curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(opt_.timeout.count())));
  opt(curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(opt_.timeout.count())));
  opt(curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L));
  opt(curl_easy_setopt(h, CURLOPT_USERAGENT, "runnel-autoscaler"));
  opt(curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf));
  opt(curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody));
  opt(curl_easy_setopt(h, CURLOPT_WRITEDATA, &out.body));
  if (!opt_.ca_file.empty()) opt(curl_easy_setopt(h, CURLOPT_CAINFO, opt_.ca_file.c_str()));
  if (!set) {
    out.failure = "libcurl refused an option (built without http or TLS?)";
    return out;
  }
  const CURLcode code = curl_easy_perform(h);
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  if (code == CURLE_OPERATION_TIMEDOUT) {
    out.failure = fmt::format("timed out after {} ms", opt_.timeout.count());
  } else if (code == CURLE_WRITE_ERROR) {
    out.failure = fmt::format("the answer is larger than {} bytes", kMaxAnswerBytes);
  } else if (code != CURLE_OK) {
    out.failure = errbuf[0] != '\0' ? fmt::format("{}: {}", curl_easy_strerror(code), Trimmed(errbuf))
                                    : std::string(curl_easy_strerror(code));
  }
  return out;
}

void KubernetesBackend::Record(const std::string& function, const char* method, int patched,
                               const Answer& a) {
  const std::unique_lock lock(mu_);
  Deployment& d = deployments_.at(function);
  const std::string shown = fmt::format("{} {}{}", method, opt_.api_server, Path(d.name));
  std::string error;
  std::optional<int> spec;
  std::optional<int> status;
  if (!a.failure.empty()) {
    error = fmt::format("{}: {}", shown, a.failure);
  } else if (a.status < 200 || a.status >= 300) {
    // The API server's errors are a Status object: its message says what and why.
    std::string reason;
    std::string message;
    const auto j = nlohmann::json::parse(a.body, nullptr, false);
    if (j.is_object()) {
      if (j.contains("reason") && j["reason"].is_string()) reason = j["reason"].get<std::string>();
      if (j.contains("message") && j["message"].is_string()) message = j["message"].get<std::string>();
    }
    if (message.empty()) message = a.body.empty() ? "(no message)" : a.body.substr(0, 200);
    std::string hint;
    if (a.status == 401) {
      hint = fmt::format(" (the token in {} was refused: expired, or not this cluster's)",
                         opt_.token_file.string());
    } else if (a.status == 403) {
      hint = fmt::format(" (the service account needs get and patch on deployments/scale in namespace {})",
                         opt_.ns);
    } else if (a.status == 404) {
      hint = fmt::format(" (is there a Deployment {} in namespace {}?)", d.name, opt_.ns);
    }
    error = fmt::format("{}: HTTP {}{}: {}{}", shown, a.status, reason.empty() ? "" : " " + reason, message,
                        hint);
  } else {
    const auto j = nlohmann::json::parse(a.body, nullptr, false);
    if (!j.is_object() || j.value("kind", "") != "Scale") {
      error = fmt::format("{}: HTTP {} with a body that is not a Scale object", shown, a.status);
    } else {
      // spec.replicas is omitted when 0 (omitempty in the API's types); status.replicas is required.
      const auto s = j.find("spec");
      if (s == j.end() || (s->is_object() && !s->contains("replicas"))) {
        spec = 0;
      } else {
        spec = Replicas(*s);
      }
      const auto st = j.find("status");
      if (st != j.end()) status = Replicas(*st);
      if (!spec || !status) {
        error = fmt::format("{}: HTTP {}: a Scale without a valid {}", shown, a.status,
                            !spec ? "spec.replicas" : "status.replicas");
      }
    }
  }
  const auto now = Clock::now();
  d.next_read = now + opt_.resync;
  if (!error.empty()) {
    ++d.info.failures;
    if (error != d.info.error) Log()->warn("function {}: {}", function, error);
    d.info.error = std::move(error);
    if (patched >= 0) d.next_patch = now + opt_.retry;
    applied_cv_.notify_all();
    return;
  }
  if (!d.info.error.empty()) Log()->info("function {}: {} answers again", function, d.info.target);
  d.info.error.clear();
  d.info.spec_replicas = *spec;
  d.info.replicas = *status;
  if (patched >= 0) {
    if (d.wanted == patched) {
      d.dirty = false;
      d.info.applied = true;
    }
    Log()->debug("function {}: {} set to {} replica(s) ({} now)", function, d.info.target, patched, *status);
  } else if (!d.owned) {
    // Not driven yet: adopt what runs (a stack that restarts keeps its pods).
    if (d.wanted != *spec) {
      Log()->info("function {}: {} has {} replica(s); the autoscaler takes it from there", function,
                  d.info.target, *spec);
    }
    d.wanted = *spec;
    d.info.replicas_set = d.wanted;
    d.info.applied = true;
  } else if (!d.dirty && *spec != d.wanted) {
    Log()->warn("function {}: {} was set to {} replica(s) outside Runnel; setting it back to {}", function,
                d.info.target, *spec, d.wanted);
    d.dirty = true;
    d.info.applied = false;
  }
  applied_cv_.notify_all();
}

}  // namespace runnel::autoscaler
