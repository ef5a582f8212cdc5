// Workers as the pods of a Kubernetes Deployment per function, whose replicas the autoscaler sets
// through the Deployment's `scale` subresource (autoscaling/v1 Scale):
//   GET   /apis/apps/v1/namespaces/{ns}/deployments/{name}/scale   reads spec.replicas, status.replicas
//   PATCH the same path, Content-Type: application/merge-patch+json, body {"spec":{"replicas":N}}
// with `Authorization: Bearer <token>` and `Accept: application/json`. The pods run
// `runnel-worker --join` with a join token from a Secret; that is the Deployment's business, not
// this backend's (deploy/README.md).
//
// Start raises the replicas it wants by one and returns `<deployment>/<n>`; Stop lowers them by one
// (Kubernetes picks the pod, which drains on SIGTERM within its terminationGracePeriodSeconds; the
// `grace` argument is not used). List reports max(wanted, status.replicas) entries with pid 0:
// the first `wanted` running (when the Deployment reports that many pods) or starting, the rest
// stopping. Whether a pod's worker joined is the dispatcher's `joined` count, not this backend's.
//
// Requests run on one thread of the backend's own: Start and Stop only change the count wanted and
// wake it, so the autoscaler's loop never waits for the API server, and starts asked in one tick
// become one PATCH with their sum. Every request is bounded by `timeout`; a failed PATCH is retried
// every `retry`; each Deployment's scale is read every `resync` (and once at Prepare: a Deployment
// that already runs pods is adopted with its replicas, not restarted from zero). A change made
// outside Runnel (kubectl scale) is set back to the count wanted once the backend has started or
// stopped a worker of that function.
//
// The bearer token is read from `token_file` before every request (projected service account
// tokens rotate; kubelet replaces the file) and held as a Secret: it is never logged. Errors are
// logged once per change of reason, with the HTTP status and the API's `message`, and shown in
// OrchestratorOf (status `orchestrator.error`).
//
// Thread-safety: every method may be called from any thread. The destructor stops the request
// thread, waiting at most for the request in progress (its timeout).
#pragma once

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "runnel/autoscaler/backend.hpp"
#include "runnel/core/config.hpp"

namespace runnel::autoscaler {

class KubernetesBackend final : public WorkerBackend {
 public:
  // Where an in-cluster pod finds its service account.
  static constexpr const char* kServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount";

  struct Options {
    std::string api_server;  // http(s)://host:port, no trailing /
    std::string ns;          // the Deployments' namespace
    std::filesystem::path token_file;
    std::filesystem::path ca_file;                   // empty: the system's CA store
    std::map<std::string, std::string> deployments;  // function -> Deployment; missing: the default name
    std::chrono::milliseconds timeout{2000};         // per request, connecting included
    std::chrono::milliseconds retry{1000};           // after a failed PATCH
    std::chrono::milliseconds resync{1000};          // each Deployment's scale is read this often
    bool scale_to_zero_on_stop = false;              // StopAll sets every Deployment to 0
  };
  // `config` with its empty fields taken from the in-cluster service account: api_server from
  // $KUBERNETES_SERVICE_HOST and $KUBERNETES_SERVICE_PORT (https), namespace from
  // <service account>/namespace, token and CA from <service account>/token and ca.crt. Throws
  // ConfigError naming what is missing (not in a cluster and not configured).
  static Options Resolve(const KubernetesWorkers& config);

  explicit KubernetesBackend(Options options);
  ~KubernetesBackend() override;
  KubernetesBackend(const KubernetesBackend&) = delete;
  KubernetesBackend& operator=(const KubernetesBackend&) = delete;

  std::string Start(const std::string& function, const std::string& dispatcher) override;
  void Stop(const std::string& id, std::chrono::milliseconds grace) override;
  std::vector<WorkerInfo> List(const std::string& function) const override;
  void Tick() override {}  // the request thread does the work
  // Sets every Deployment to 0 replicas when scale_to_zero_on_stop, waiting for the PATCHes (each
  // bounded by the timeout); otherwise leaves them as they are, for the next stack to adopt.
  void StopAll(std::chrono::milliseconds grace) override;
  void Prepare(const std::string& function, const std::string& dispatcher) override;
  std::optional<OrchestratorInfo> OrchestratorOf(const std::string& function) const override;

 private:
  using Clock = std::chrono::steady_clock;
  struct Deployment {
    std::string name;
    int wanted = 0;
    bool owned = false;  // Start or Stop was called: `wanted` is ours, not adopted from a read
    bool dirty = false;  // `wanted` is not yet applied
    Clock::time_point next_patch{};
    Clock::time_point next_read{};
    OrchestratorInfo info;
  };
  Deployment& Find(const std::string& function);  // mu_ held; made on first use
  void Run();
  // One request: the answer's status and body, or the reason it failed.
  struct Answer {
    long status = 0;
    std::string body;
    std::string failure;  // transport: refused, timed out, TLS (empty when an answer came)
  };
  Answer Request(const char* method, const std::string& path, const std::string& body) const;
  std::string Path(const std::string& deployment) const;
  void Record(const std::string& function, const char* method, int patched, const Answer& a);

  Options opt_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // the request thread waits on it
  std::condition_variable applied_cv_;
  std::map<std::string, Deployment> deployments_;  // per function
  bool stop_ = false;
  std::thread thread_;
};

}  // namespace runnel::autoscaler
