// A civetweb HTTP server on 127.0.0.1 that implements one resource of the Kubernetes API, the
// `scale` subresource of Deployments (autoscaling/v1 Scale), as the API reference describes it:
//   GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale  -> 200 Scale
//   PATCH the same path, Content-Type application/merge-patch+json -> 200 Scale with the new spec
// Scale: {"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {...}, "spec": {"replicas"},
// "status": {"replicas", "selector"}}; spec.replicas is omitted when 0 (omitempty in the API's Go
// types), status.replicas never is. Errors are Status objects ({"kind": "Status", "status":
// "Failure", "message", "reason", "code"}) with the API server's messages: 401 for a token it does
// not accept, 403 when told to refuse (no RBAC), 404 for a Deployment it does not have, 415 for a
// patch of another Content-Type.
//
// What a client may not send is recorded as a violation (Violations()) besides being answered as
// the API server would: a path outside the subresource, a method other than GET and PATCH, no
// `Accept: application/json`, a PATCH body other than exactly {"spec":{"replicas":N}}, a GET with
// a body. Every request is recorded (Requests, WaitFor) with its headers as sent.
#pragma once

#include <civetweb.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <regex>
#include <stdexcept>
#include <string>
#include <vector>

namespace runnel::autoscaler::testing {

class FakeKubernetesApi {
 public:
  struct Request {
    std::string method;
    std::string path;
    std::string body;
    std::map<std::string, std::string> headers;  // as sent; look up with Header()
    int status = 0;                              // what the server answered
    std::string Header(const std::string& name) const {
      for (const auto& [k, v] : headers) {
        if (k.size() == name.size() && std::equal(k.begin(), k.end(), name.begin(), [](char a, char b) {
              return std::tolower(a) == std::tolower(b);
            }))
          return v;
      }
      return "";
    }
  };
  // How it answers, beside the contract: as a cluster whose RBAC refuses (403), as a broken proxy
  // (500 with an HTML body, or 200 with a body that is not JSON), or not at all (held until
  // Release() or the server's end).
  enum class Mode { kNormal, kForbid, kServerError, kBadJson, kHold };

  FakeKubernetesApi(std::string ns, std::string token) : ns_(std::move(ns)), token_(std::move(token)) {
    const char* options[] = {"listening_ports", "127.0.0.1:0", "num_threads", "8", nullptr};
    ctx_ = mg_start(nullptr, nullptr, options);
    if (ctx_ == nullptr) throw std::runtime_error("civetweb did not start");
    mg_server_port ports[1] = {};
    if (mg_get_server_ports(ctx_, 1, ports) != 1) throw std::runtime_error("civetweb has no port");
    port_ = ports[0].port;
    mg_set_request_handler(ctx_, "/", &FakeKubernetesApi::Handle, this);
  }
  ~FakeKubernetesApi() {
    Release();
    mg_stop(ctx_);
  }
  FakeKubernetesApi(const FakeKubernetesApi&) = delete;
  FakeKubernetesApi& operator=(const FakeKubernetesApi&) = delete;

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string ScalePath(const std::string& name) const {
    return "/apis/apps/v1/namespaces/" + ns_ + "/deployments/" + name + "/scale";
  }

  // A Deployment with `replicas` desired and running.
  void AddDeployment(const std::string& name, int replicas) {
    const std::lock_guard lock(mu_);
    deployments_[name] = {replicas, replicas};
  }
  // Pods follow the desired count at once unless told not to (then status stays where it is).
  void FollowSpec(bool follow) {
    const std::lock_guard lock(mu_);
    follow_ = follow;
  }
  // The token it accepts from now on (a rotation).
  void SetToken(std::string token) {
    const std::lock_guard lock(mu_);
    token_ = std::move(token);
  }
  // Leaving kHold ends the requests held so far.
  void SetMode(Mode mode) {
    {
      const std::lock_guard lock(mu_);
      mode_ = mode;
      released_ = mode != Mode::kHold;
    }
    cv_.notify_all();
  }
  // Ends every held request (without an answer the client would still wait for).
  void Release() {
    {
      const std::lock_guard lock(mu_);
      released_ = true;
    }
    cv_.notify_all();
  }
  int SpecReplicas(const std::string& name) {
    const std::lock_guard lock(mu_);
    const auto it = deployments_.find(name);
    return it == deployments_.end() ? -1 : it->second.spec;
  }
  std::vector<Request> Requests() {
    const std::lock_guard lock(mu_);
    return requests_;
  }
  std::vector<std::string> Violations() {
    const std::lock_guard lock(mu_);
    return violations_;
  }
  int Held() {
    const std::lock_guard lock(mu_);
    return held_;
  }
  // Waits until `done(requests so far)` holds, or `timeout`; returns whether it held.
  bool WaitFor(const std::function<bool(const std::vector<Request>&)>& done,
               std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return done(requests_); });
  }
  bool WaitForHeld(std::chrono::milliseconds timeout) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, timeout, [&] { return held_ > 0; });
  }

 private:
  struct Scale {
    int spec = 0;
    int status = 0;
  };

  static int Handle(mg_connection* conn, void* self) {
    return static_cast<FakeKubernetesApi*>(self)->Serve(conn);
  }

  static void Answer(mg_connection* conn, int status, const char* phrase, const std::string& body) {
    mg_printf(conn, "HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n\r\n", status,
              phrase, body.size());
    mg_write(conn, body.data(), body.size());
  }
  static std::string Status(int code, const std::string& reason, const std::string& message) {
    return nlohmann::json{{"kind", "Status"},    {"apiVersion", "v1"}, {"metadata", nlohmann::json::object()},
                          {"status", "Failure"}, {"message", message}, {"reason", reason},
                          {"code", code}}
        .dump();
  }
  std::string ScaleJson(const std::string& name, const Scale& s) const {
    nlohmann::json spec = nlohmann::json::object();
    if (s.spec != 0) spec["replicas"] = s.spec;  // omitempty
    return nlohmann::json{{"kind", "Scale"},
                          {"apiVersion", "autoscaling/v1"},
                          {"metadata",
                           {{"name", name},
                            {"namespace", ns_},
                            {"uid", "0b7f3c5e-1d2a-4e8b-9f10-2c3d4e5f6a7b"},
                            {"resourceVersion", "4242"},
                            {"creationTimestamp", "2026-12-07T10:00:00Z"}}},
                          {"spec", spec},
                          {"status", {{"replicas", s.status}, {"selector", "app=runnel-worker"}}}}
        .dump();
  }

  int Serve(mg_connection* conn) {
    const mg_request_info* info = mg_get_request_info(conn);
    Request r;
    r.method = info->request_method;
    r.path = info->local_uri;
    for (int i = 0; i < info->num_headers; ++i)
      r.headers[info->http_headers[i].name] = info->http_headers[i].value;
    char buffer[4096];
    for (int n = 0; (n = mg_read(conn, buffer, sizeof buffer)) > 0;)
      r.body.append(buffer, static_cast<std::size_t>(n));
    if (info->query_string != nullptr) r.path += std::string("?") + info->query_string;

    std::unique_lock lock(mu_);
    if (mode_ == Mode::kHold) {
      ++held_;
      cv_.notify_all();
      cv_.wait_for(lock, std::chrono::seconds(60), [this] { return released_; });
      --held_;
      r.status = 0;  // never answered
      requests_.push_back(std::move(r));
      cv_.notify_all();
      return 1;
    }
    const auto [status, phrase, body] = Decide(r);
    r.status = status;
    requests_.push_back(r);
    lock.unlock();
    cv_.notify_all();
    Answer(conn, status, phrase, body);
    return status;
  }

  // mu_ held. The answer the API server would give, recording what breaks the contract.
  std::tuple<int, const char*, std::string> Decide(const Request& r) {
    static const std::regex kPath(
        R"(^/apis/apps/v1/namespaces/([a-z0-9-]+)/deployments/([a-z0-9.-]+)/scale$)");
    std::smatch m;
    if (!std::regex_match(r.path, m, kPath) || m[1] != ns_) {
      violations_.push_back("path outside the scale subresource: " + r.method + " " + r.path);
      return {404, "Not Found", Status(404, "NotFound", "the server could not find the requested resource")};
    }
    const std::string name = m[2];
    if (r.method != "GET" && r.method != "PATCH") {
      violations_.push_back("method " + r.method + " on " + r.path);
      return {405, "Method Not Allowed",
              Status(405, "MethodNotAllowed", "the server does not allow this method")};
    }
    if (r.Header("Accept") != "application/json") {
      violations_.push_back("Accept is '" + r.Header("Accept") + "', not application/json");
    }
    if (r.Header("Authorization") != "Bearer " + token_) {
      return {401, "Unauthorized", Status(401, "Unauthorized", "Unauthorized")};
    }
    if (mode_ == Mode::kForbid) {
      return {403, "Forbidden",
              Status(403, "Forbidden",
                     "deployments.apps \"" + name + "\" is forbidden: User \"system:serviceaccount:" + ns_ +
                         ":runnel\" cannot " + (r.method == "GET" ? "get" : "patch") +
                         " resource \"deployments/scale\" in API group \"apps\" in the namespace \"" + ns_ +
                         "\"")};
    }
    if (mode_ == Mode::kServerError) {
      return {500, "Internal Server Error", "<html><body>upstream connect error</body></html>"};
    }
    const auto it = deployments_.find(name);
    if (it == deployments_.end()) {
      return {404, "Not Found", Status(404, "NotFound", "deployments.apps \"" + name + "\" not found")};
    }
    if (r.method == "GET") {
      if (!r.body.empty()) violations_.push_back("GET with a body: " + r.body);
    } else {
      if (r.Header("Content-Type") != "application/merge-patch+json") {
        violations_.push_back("PATCH Content-Type is '" + r.Header("Content-Type") + "'");
        return {415, "Unsupported Media Type",
                Status(415, "UnsupportedMediaType",
                       "the body of the request was in an unknown format - accepted media types include: "
                       "application/json-patch+json, application/merge-patch+json, "
                       "application/apply-patch+yaml")};
      }
      static const std::regex kBody(R"(^\{"spec":\{"replicas":(0|[1-9][0-9]*)\}\}$)");
      std::smatch b;
      if (!std::regex_match(r.body, b, kBody)) {
        violations_.push_back("PATCH body is not {\"spec\":{\"replicas\":N}}: " + r.body);
        return {422, "Unprocessable Entity",
                Status(422, "Invalid", "Scale.autoscaling \"" + name + "\" is invalid")};
      }
      it->second.spec = std::stoi(b[1]);
      if (follow_) it->second.status = it->second.spec;
    }
    if (mode_ == Mode::kBadJson) return {200, "OK", "{\"kind\": \"Scale\", \"spec\": "};
    return {200, "OK", ScaleJson(name, it->second)};
  }

  std::string ns_;
  std::string token_;
  mg_context* ctx_ = nullptr;
  int port_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<std::string, Scale> deployments_;
  bool follow_ = true;
  Mode mode_ = Mode::kNormal;
  bool released_ = false;
  int held_ = 0;
  std::vector<Request> requests_;
  std::vector<std::string> violations_;
};

}  // namespace runnel::autoscaler::testing
