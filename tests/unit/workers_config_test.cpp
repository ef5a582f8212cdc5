// runnel.yaml's top-level `workers`: the backend that runs workers, and for kubernetes where its
// Deployments are (docs/config.md#workers).
#include <gmock/gmock.h>

#include <filesystem>

#include "runnel/core/config.hpp"
#include "runnel/core/error.hpp"

namespace runnel {
namespace {

const std::filesystem::path kFile = "/etc/runnel/runnel.yaml";

constexpr const char* kFunctions = "functions:\n  - name: image.thumbnail\n  - name: iot.ingest\n";

StackConfig Parse(const std::string& yaml) { return ParseStackConfig(yaml, kFile); }

std::string Error(const std::string& yaml) {
  try {
    (void)Parse(yaml);
  } catch (const ConfigError& e) {
    std::string m = e.what();
    if (m.rfind(kFile.string(), 0) == 0) m = "F" + m.substr(kFile.string().size());
    return m;
  }
  return "(no error)";
}

TEST(WorkersConfig, LocalProcessesUnlessItSaysKubernetes) {
  EXPECT_EQ(Parse(kFunctions).workers.backend, WorkersConfig::Backend::kLocal);
  EXPECT_EQ(Parse(std::string(kFunctions) + "workers: {backend: local}\n").workers.backend,
            WorkersConfig::Backend::kLocal);
}

TEST(WorkersConfig, ExternalMeansOnlyTheCountAndTakesNoKubernetesKeys) {
  EXPECT_EQ(Parse(std::string(kFunctions) + "workers: {backend: external}\n").workers.backend,
            WorkersConfig::Backend::kExternal);
  EXPECT_EQ(Error(std::string(kFunctions) + "workers:\n  backend: external\n  kubernetes: {namespace: x}\n"),
            "F:6: workers.kubernetes: is set but workers.backend is not kubernetes");
}

TEST(WorkersConfig, KubernetesDefaultsComeFromTheServiceAccountAndNames) {
  const auto c = Parse(std::string(kFunctions) + "workers:\n  backend: kubernetes\n");
  ASSERT_EQ(c.workers.backend, WorkersConfig::Backend::kKubernetes);
  const auto& k = c.workers.kubernetes;
  EXPECT_EQ(k.api_server, "");  // resolved at start from $KUBERNETES_SERVICE_HOST
  EXPECT_EQ(k.ns, "");
  EXPECT_EQ(k.token_file, "");
  EXPECT_EQ(k.timeout, std::chrono::milliseconds(2000));
  EXPECT_FALSE(k.scale_to_zero_on_stop);
  EXPECT_EQ(k.deployments,
            (std::map<std::string, std::string>{{"image.thumbnail", "runnel-worker-image-thumbnail"},
                                                {"iot.ingest", "runnel-worker-iot-ingest"}}));
}

// Found by running `runnel config check` on a file with workers.kubernetes but no deployments:
// a lookup in the missing node escaped as YAML::InvalidNode instead of resolving the defaults.
TEST(WorkersConfig, KubernetesWithoutDeploymentsGetsTheDefaultNames) {
  const auto c =
      Parse(std::string(kFunctions) + "workers:\n  backend: kubernetes\n  kubernetes: {namespace: runnel}\n");
  EXPECT_EQ(c.workers.kubernetes.deployments.at("iot.ingest"), "runnel-worker-iot-ingest");
  EXPECT_EQ(
      Error("functions:\n  - name: A\n  - name: b\nworkers:\n  backend: kubernetes\n  kubernetes: {}\n"),
      "F:5: workers.kubernetes.deployments: function A: its default Deployment name 'runnel-worker-A' is not "
      "a "
      "DNS-1123 subdomain: only lowercase letters, digits and '-' and '.' (found 'A'); name one: "
      "deployments: "
      "{A: runnel-worker-...}");
}

TEST(WorkersConfig, EveryKubernetesKey) {
  const auto c = Parse(std::string(kFunctions) +
                       "workers:\n"
                       "  backend: kubernetes\n"
                       "  kubernetes:\n"
                       "    api_server: https://10.0.0.1:6443/\n"
                       "    namespace: media\n"
                       "    token_file: secrets/token\n"
                       "    ca_file: /etc/k8s/ca.crt\n"
                       "    deployments: {image.thumbnail: thumbs}\n"
                       "    timeout: 500ms\n"
                       "    scale_to_zero_on_stop: true\n");
  const auto& k = c.workers.kubernetes;
  EXPECT_EQ(k.api_server, "https://10.0.0.1:6443");
  EXPECT_EQ(k.ns, "media");
  EXPECT_EQ(k.token_file, "/etc/runnel/secrets/token");  // relative to the config's folder
  EXPECT_EQ(k.ca_file, "/etc/k8s/ca.crt");
  EXPECT_EQ(k.deployments.at("image.thumbnail"), "thumbs");
  EXPECT_EQ(k.deployments.at("iot.ingest"), "runnel-worker-iot-ingest");
  EXPECT_EQ(k.timeout, std::chrono::milliseconds(500));
  EXPECT_TRUE(k.scale_to_zero_on_stop);
}

TEST(WorkersConfig, ErrorsNameTheLineAndTheKey) {
  const std::string f = kFunctions;  // 3 lines: `workers` is on line 4
  EXPECT_EQ(Error(f + "workers: {backend: nomad}\n"),
            "F:4: workers.backend: 'nomad' is not a backend (local, kubernetes, external)");
  EXPECT_EQ(Error(f + "workers: {count: 3}\n"),
            "F:4: workers.count: unknown key (known: backend, kubernetes)");
  EXPECT_EQ(Error(f + "workers: 3\n"),
            "F:4: workers: must be a mapping like {backend: kubernetes, kubernetes: {...}}");
  EXPECT_EQ(Error(f + "workers:\n  kubernetes: {namespace: a}\n"),
            "F:5: workers.kubernetes: is set but workers.backend is not kubernetes");
  const std::string k = f + "workers:\n  backend: kubernetes\n  kubernetes:\n";  // keys on line 7
  EXPECT_EQ(
      Error(k + "    namespaces: a\n"),
      "F:7: workers.kubernetes.namespaces: unknown key (known: api_server, ca_file, deployments, namespace, "
      "scale_to_zero_on_stop, timeout, token_file)");
  EXPECT_EQ(Error(k + "    namespace: Media\n"),
            "F:7: workers.kubernetes.namespace: 'Media' is not a DNS-1123 label: only lowercase letters, "
            "digits and "
            "'-' (found 'M')");
  EXPECT_EQ(Error(k + "    api_server: 10.0.0.1:443\n"),
            "F:7: workers.kubernetes.api_server: '10.0.0.1:443' is not an http:// or https:// URL of the API "
            "server "
            "(e.g. https://10.0.0.1:443; no query, no user:password@)");
  EXPECT_EQ(Error(k + "    timeout: 30s\n"),
            "F:7: workers.kubernetes.timeout: must be between 100ms and 10s (the autoscaler waits for it)");
  EXPECT_EQ(Error(k + "    timeout: 2\n"),
            "F:7: workers.kubernetes.timeout: '2' has no unit: durations need one, write \"2s\" or \"2ms\"");
  EXPECT_EQ(
      Error(k + "    deployments: {image.thumbnail: -thumbs}\n"),
      "F:7: workers.kubernetes.deployments.image.thumbnail: '-thumbs' is not a DNS-1123 subdomain: it must "
      "start and end with a lowercase letter or digit");
  EXPECT_EQ(Error(k + "    deployments:\n      video: v\n"),
            "F:8: workers.kubernetes.deployments.video: 'video' is not a function of this stack (functions: "
            "image.thumbnail, iot.ingest)");
  // The unknown name first, a known one after it: the walk that finds the name's line goes on past it.
  EXPECT_EQ(Error(k + "    deployments:\n      video: v\n      image.thumbnail: thumbs\n"),
            "F:8: workers.kubernetes.deployments.video: 'video' is not a function of this stack (functions: "
            "image.thumbnail, iot.ingest)");
  EXPECT_EQ(
      Error(k + "    deployments: {image.thumbnail: runnel-worker-iot-ingest}\n"),
      "F:7: workers.kubernetes.deployments: functions image.thumbnail and iot.ingest would share Deployment "
      "'runnel-worker-iot-ingest': each needs its own");
  EXPECT_EQ(
      Error("functions:\n  - name: Thumbs_v2\nworkers: {backend: kubernetes}\n"),
      "F:3: workers.kubernetes.deployments: function Thumbs_v2: its default Deployment name "
      "'runnel-worker-Thumbs_v2' is not a DNS-1123 subdomain: only lowercase letters, digits and '-' and '.' "
      "(found 'T'); name one: deployments: {Thumbs_v2: runnel-worker-...}");
}

TEST(WorkersConfig, DeploymentNames) {
  EXPECT_EQ(DefaultDeploymentName("image.thumbnail"), "runnel-worker-image-thumbnail");
  EXPECT_EQ(Dns1123SubdomainProblem("a.b-c"), "");
  EXPECT_EQ(Dns1123LabelProblem("a.b"),
            "'a.b' is not a DNS-1123 label: only lowercase letters, digits and '-' (found '.')");
  EXPECT_EQ(Dns1123LabelProblem(std::string(64, 'a')),
            "'" + std::string(64, 'a') + "' is not a DNS-1123 label: 64 characters, more than 63");
  EXPECT_EQ(Dns1123SubdomainProblem(""), "'' is not a DNS-1123 subdomain: it is empty");
}

}  // namespace
}  // namespace runnel
