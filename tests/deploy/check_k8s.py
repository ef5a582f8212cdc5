#!/usr/bin/python3
"""deploy tier: the Kubernetes manifests in deploy/k8s/, parsed as YAML (python3-yaml).

Checks, failing with every problem named:
  - each file holds exactly the kinds expected of it, each object with apiVersion, kind and name;
    a manifest this test does not know is an error (keep the test in step with the folder);
  - kustomization.yaml lists every manifest but the KEDA example, and each file it lists exists and
    parses; namespaced objects are all in the Namespace the folder defines; no object is
    cluster-wide but the Namespace (no ClusterRole, no ClusterRoleBinding);
  - the stack (deployment.yaml) runs `runnel up --kafka ... --config ...` with one replica, mounts
    the ConfigMap's runnel.yaml where --config points, the claim runnel-data at /data and a claim
    (not a pod-lifetime volume: it holds the CURVE keys and join tokens) at --state-dir, takes the
    Kafka address from a ConfigMap key that exists, has readiness and liveness probes on the port
    the config's `metrics:` serves;
  - every probe of every container names a port the container declares;
  - RBAC (rbac.yaml): the Role grants exactly get and patch on apps deployments/scale (the two
    requests autoscaler/src/kubernetes_backend.cpp sends), limited to the worker Deployments when
    it names resources; the RoleBinding binds that Role (not a ClusterRole) to the ServiceAccount
    of rbac.yaml, which is the stack pod's serviceAccountName, with its token mounted; the worker
    pods run without that account and without a token;
  - the ConfigMap's runnel.yaml uses `workers.backend: kubernetes`, in this namespace; each of its
    functions' Deployments (the name under workers.kubernetes.deployments, else the default
    runnel-worker-<function, dots as dashes>, a DNS-1123 subdomain) is in workers.yaml, with 0
    replicas, in the namespace, one container running `runnel-worker --function <that function>
    --join FILE` with FILE in a Secret volume, non-root, with CPU and memory requests and a memory
    limit, and a grace period of at least the function's timeout + 2 s; workers.yaml has no
    Deployment the config does not scale;
  - the config's listen ports (one dispatcher port per function, results, control) are declared by
    the stack's container and exposed by the Service its `advertise` host names (SERVICE.NAMESPACE
    [.svc...]); every Service's targetPort is a port of the stack's container, and its selector
    selects the stack's pods and no worker pod;
  - join/kustomization.yaml generates, in the namespace and without a hash suffix, exactly the
    Secrets the worker pods mount, each with the key they read, from files join/.gitignore keeps
    out of git;
  - keda-scaledobject.yaml scales a Deployment of workers.yaml, in the namespace, by a query whose
    metric names are documented in METRICS_MD, with only their documented labels, and whose
    `function` label is the function that Deployment runs.

Usage: check_k8s.py K8S_DIR METRICS_MD
"""
import fnmatch
import os
import re
import sys

import yaml

EXPECTED = {
    "namespace.yaml": ["Namespace"],
    "rbac.yaml": ["ServiceAccount", "Role", "RoleBinding"],
    "configmap.yaml": ["ConfigMap"],
    "pvc.yaml": ["PersistentVolumeClaim", "PersistentVolumeClaim"],
    "deployment.yaml": ["Deployment"],
    "service.yaml": ["Service", "Service"],
    "workers.yaml": ["Deployment", "..."],  # one or more: a worker Deployment per function
    "keda-scaledobject.yaml": ["ScaledObject"],
    "kustomization.yaml": ["Kustomization"],
}
# In the folder, not applied by `kubectl apply -k`: the KEDA example needs KEDA's CRDs.
NOT_APPLIED = {"kustomization.yaml", "keda-scaledobject.yaml"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass",
                  "CustomResourceDefinition", "Kustomization"}
ROW = re.compile(r"^\| `(runnel_[a-z_]+)` \| (counter|gauge|histogram) \| ([^|]*)\|")
METRIC = re.compile(r"\b(runnel_[a-z_]+)\s*(\{[^}]*\})?")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*\"([^\"]*)\"")


def load_all(path):
    with open(path) as f:
        return [d for d in yaml.safe_load_all(f) if d is not None]


def default_deployment(function):  # core/src/config.cpp DefaultDeploymentName
    return "runnel-worker-" + function.replace(".", "-")


def dns1123_subdomain_problem(name):  # core/src/config.cpp Dns1123Problem(name, 253, true)
    if not name:
        return "it is empty"
    if len(name) > 253:
        return f"{len(name)} characters, more than 253"
    if not re.fullmatch(r"[a-z0-9.-]+", name):
        return "only lowercase letters, digits, '-' and '.'"
    if not re.fullmatch(r"[a-z0-9](.*[a-z0-9])?", name):
        return "it must start and end with a lowercase letter or digit"
    return ""


def duration_ms(text):  # the config's durations: 500ms, 30s, 1m, 1h
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m|h)", str(text).strip())
    if not m:
        return None
    return float(m.group(1)) * {"ms": 1, "s": 1000, "m": 60000, "h": 3600000}[m.group(2)]


def listen_ports(address):
    """Ports of a listen value: HOST, HOST:PORT or HOST:LOW-HIGH (IPv6 in brackets)."""
    text = str(address)
    port = text.rsplit("]", 1)[1] if text.startswith("[") else text
    if ":" not in port:
        return []
    port = port.rsplit(":", 1)[1]
    if "-" in port:
        low, high = port.split("-", 1)
        return list(range(int(low), int(high) + 1))
    return [int(port)]


def documented_metrics(metrics_md):
    families = {}
    with open(metrics_md) as f:
        for line in f:
            m = ROW.match(line)
            if m:
                families[m.group(1)] = {label.strip() for label in m.group(3).split(",") if label.strip()}
    return families


def main():
    if len(sys.argv) != 3:
        print(__doc__)
        return 2
    folder, metrics_md = sys.argv[1:]
    problems = []
    objects = {}  # kind -> [object]
    by_file = {}  # file -> [object]
    files = sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml")))
    for name in sorted(set(EXPECTED) - set(files)):
        problems.append(f"{name}: missing")
    for name in files:
        path = os.path.join(folder, name)
        try:
            docs = load_all(path)
        except yaml.YAMLError as e:
            problems.append(f"{name}: not valid YAML: {e}")
            continue
        if name not in EXPECTED:
            problems.append(f"{name}: not a manifest this test knows (add it to EXPECTED in {__file__})")
            continue
        kinds = [d.get("kind") if isinstance(d, dict) else None for d in docs]
        if EXPECTED[name][-1:] == ["..."]:
            if not kinds or set(kinds) != {EXPECTED[name][0]}:
                problems.append(f"{name}: kinds {kinds}, expected one or more {EXPECTED[name][0]}")
        elif kinds != EXPECTED[name]:
            problems.append(f"{name}: kinds {kinds}, expected {EXPECTED[name]}")
        for d in docs:
            if not isinstance(d, dict):
                continue
            if not d.get("apiVersion"):
                problems.append(f"{name}: {d.get('kind')} has no apiVersion")
            if d.get("kind") != "Kustomization" and not d.get("metadata", {}).get("name"):
                problems.append(f"{name}: {d.get('kind')} has no metadata.name")
            objects.setdefault(d.get("kind"), []).append(d)
            by_file.setdefault(name, []).append(d)
    if problems:
        return report(problems)

    def one(kind):
        return objects[kind][0]

    def pod_of(deployment):
        return deployment.get("spec", {}).get("template", {}).get("spec", {})

    def labels_of(deployment):
        return deployment.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})

    def selects(selector, labels):
        return bool(selector) and all(labels.get(k) == v for k, v in selector.items())

    # --- the kustomization, namespaces, nothing cluster-wide
    namespace = one("Namespace")["metadata"]["name"]
    for kind, items in objects.items():
        for o in items:
            if kind in CLUSTER_SCOPED - {"Namespace", "Kustomization"}:
                problems.append(f"{kind} {o['metadata']['name']}: cluster-wide; the stack needs nothing "
                                f"outside namespace {namespace}")
            if kind in CLUSTER_SCOPED:
                continue
            if o["metadata"].get("namespace") != namespace:
                problems.append(f"{kind} {o['metadata']['name']} is not in namespace {namespace}")
    resources = one("Kustomization").get("resources", [])
    if sorted(resources) != sorted(set(EXPECTED) - NOT_APPLIED):
        problems.append(f"kustomization.yaml lists {resources}, expected {sorted(set(EXPECTED) - NOT_APPLIED)} "
                        f"(not {sorted(NOT_APPLIED - {'kustomization.yaml'})})")
    for r in resources:
        path = os.path.join(folder, r)
        if not os.path.isfile(path):
            problems.append(f"kustomization.yaml lists {r}, which does not exist")
            continue
        try:
            if not load_all(path):
                problems.append(f"kustomization.yaml lists {r}, which holds no object")
        except yaml.YAMLError as e:
            problems.append(f"kustomization.yaml lists {r}, which is not valid YAML: {e}")

    # --- the ConfigMap and its runnel.yaml
    config_map = one("ConfigMap")
    cm_data = config_map.get("data", {})
    if "runnel.yaml" not in cm_data:
        return report(problems + ["the ConfigMap has no runnel.yaml"])
    try:
        config = yaml.safe_load(cm_data["runnel.yaml"]) or {}
    except yaml.YAMLError as e:
        return report(problems + [f"the ConfigMap's runnel.yaml is not valid YAML: {e}"])
    functions = [f for f in config.get("functions", []) if isinstance(f, dict) and f.get("name")]
    if not functions:
        problems.append("the ConfigMap's runnel.yaml has no functions")

    # --- the stack's Deployment
    deployment = by_file["deployment.yaml"][0]
    spec = deployment.get("spec", {})
    if spec.get("replicas") != 1:
        problems.append(f"the Deployment has {spec.get('replicas')} replicas; one stack per Kafka groups, 1 expected")
    pod = pod_of(deployment)
    pod_labels = labels_of(deployment)
    selector = spec.get("selector", {}).get("matchLabels", {})
    if not selects(selector, pod_labels):
        problems.append(f"the Deployment's selector {selector} does not match its pod labels {pod_labels}")
    containers = pod.get("containers", [])
    if len(containers) != 1:
        return report(problems + [f"the Deployment has {len(containers)} containers, expected 1"])
    container = containers[0]
    args = container.get("args", [])
    if args[:1] != ["up"] or "--kafka" not in args or "--config" not in args:
        problems.append(f"the container does not run `runnel up --kafka ... --config ...`: {args}")
    volumes = {v["name"]: v for v in pod.get("volumes", [])}
    mounts = {m["mountPath"]: m["name"] for m in container.get("volumeMounts", [])}
    if "--config" in args:
        config_path = args[args.index("--config") + 1]
        mount_dir = os.path.dirname(config_path)
        volume = volumes.get(mounts.get(mount_dir, ""), {})
        cm = volume.get("configMap", {})
        items = {i["path"]: i["key"] for i in cm.get("items", [])}
        if cm.get("name") != config_map["metadata"]["name"] or items.get(os.path.basename(config_path)) != "runnel.yaml":
            problems.append(f"--config {config_path} is not the ConfigMap's runnel.yaml mounted at {mount_dir}")
    for env in container.get("env", []):
        ref = env.get("valueFrom", {}).get("configMapKeyRef")
        if ref and (ref.get("name") != config_map["metadata"]["name"] or ref.get("key") not in cm_data):
            problems.append(f"env {env['name']} refers to ConfigMap key {ref} that does not exist")
    if "--kafka" in args:
        kafka = args[args.index("--kafka") + 1]
        env_names = {e["name"] for e in container.get("env", [])}
        if kafka.startswith("$(") and kafka[2:-1] not in env_names:
            problems.append(f"--kafka {kafka} names an env var the container does not set")
    claims = {c["metadata"]["name"] for c in objects["PersistentVolumeClaim"]}
    for v in volumes.values():
        claim = v.get("persistentVolumeClaim", {}).get("claimName")
        if claim is not None and claim not in claims:
            problems.append(f"volume {v['name']} is the claim {claim}, which pvc.yaml does not define")
    data_volume = volumes.get(mounts.get("/data", ""), {})
    if data_volume.get("persistentVolumeClaim", {}).get("claimName") != "runnel-data":
        problems.append("/data is not the PersistentVolumeClaim runnel-data")
    if "--state-dir" in args:
        state_dir = args[args.index("--state-dir") + 1]
        state_volume = volumes.get(mounts.get(state_dir, ""), {})
        if "persistentVolumeClaim" not in state_volume:
            problems.append(f"--state-dir {state_dir} is not on a PersistentVolumeClaim: a new pod would make "
                            f"new CURVE keys and refuse every join token the worker Secrets hold")
    else:
        problems.append("the container does not pass --state-dir")

    port_names = {p.get("name"): p.get("containerPort") for p in container.get("ports", [])}
    port_numbers = {p.get("containerPort") for p in container.get("ports", [])}

    # --- probes: every one on a declared port; the stack's on the port `metrics:` serves
    deployments = by_file["deployment.yaml"] + by_file["workers.yaml"]
    for d in deployments:
        for c in pod_of(d).get("containers", []):
            declared = {p.get("name") for p in c.get("ports", [])} | {p.get("containerPort") for p in c.get("ports", [])}
            for probe_kind in ("readinessProbe", "livenessProbe", "startupProbe"):
                probe = c.get(probe_kind)
                if not probe:
                    continue
                for handler in ("httpGet", "tcpSocket", "grpc"):
                    if handler in probe and probe[handler].get("port") not in declared:
                        problems.append(f"Deployment {d['metadata']['name']} container {c.get('name')}: "
                                        f"{probe_kind} {handler} port {probe[handler].get('port')!r} is not a "
                                        f"port the container declares {sorted(map(str, declared))}")
    metrics_ports = listen_ports(config.get("metrics", "")) or listen_ports(config.get("listen", {}).get("metrics", ""))
    for probe_kind in ("readinessProbe", "livenessProbe"):
        probe = container.get(probe_kind, {}).get("httpGet")
        if not probe:
            problems.append(f"the stack's container has no {probe_kind} (an httpGet on /metrics)")
            continue
        port = port_names.get(probe.get("port"), probe.get("port"))
        if [port] != metrics_ports:
            problems.append(f"the stack's {probe_kind} asks port {probe.get('port')!r} ({port}), but runnel.yaml's "
                            f"metrics serves {metrics_ports}")

    # --- RBAC
    accounts = {a["metadata"]["name"]: a for a in objects["ServiceAccount"]}
    role = one("Role")
    binding = one("RoleBinding")
    workers_cfg = config.get("workers") or {}
    k8s_cfg = workers_cfg.get("kubernetes") or {}
    if workers_cfg.get("backend") != "kubernetes":
        problems.append(f"the ConfigMap's runnel.yaml has workers.backend {workers_cfg.get('backend')!r}, "
                        f"expected kubernetes (workers.yaml would never be scaled)")
    if k8s_cfg.get("namespace", namespace) != namespace:
        problems.append(f"workers.kubernetes.namespace is {k8s_cfg.get('namespace')}, the manifests' is {namespace}")
    given = k8s_cfg.get("deployments") or {}
    names = {f["name"] for f in functions}
    for fn in given:
        if fn not in names:
            problems.append(f"workers.kubernetes.deployments.{fn}: not a function of runnel.yaml ({sorted(names)})")
    resolved = {}  # function -> Deployment name
    for f in functions:
        name = given.get(f["name"], default_deployment(f["name"]))
        why = dns1123_subdomain_problem(name)
        if why:
            problems.append(f"function {f['name']}: Deployment name '{name}' is not a DNS-1123 subdomain: {why}")
        if name in resolved.values():
            problems.append(f"function {f['name']}: Deployment '{name}' is already another function's")
        resolved[f["name"]] = name

    rules = role.get("rules", [])
    if len(rules) != 1:
        problems.append(f"Role {role['metadata']['name']} has {len(rules)} rules; expected one, on deployments/scale")
    for rule in rules:
        if rule.get("apiGroups") != ["apps"] or rule.get("resources") != ["deployments/scale"]:
            problems.append(f"Role rule on {rule.get('apiGroups')} {rule.get('resources')}: the backend needs only "
                            f"apps deployments/scale")
        if sorted(rule.get("verbs", [])) != ["get", "patch"]:
            problems.append(f"Role rule verbs {rule.get('verbs')}: the backend sends GET and PATCH only, "
                            f"expected exactly get and patch")
        if "resourceNames" in rule and sorted(rule["resourceNames"]) != sorted(resolved.values()):
            problems.append(f"Role rule resourceNames {rule['resourceNames']} are not the worker Deployments "
                            f"{sorted(resolved.values())}")
    ref = binding.get("roleRef", {})
    if ref.get("kind") != "Role" or ref.get("name") != role["metadata"]["name"] or \
            ref.get("apiGroup") != "rbac.authorization.k8s.io":
        problems.append(f"RoleBinding {binding['metadata']['name']} refers to {ref}, not Role {role['metadata']['name']}")
    subjects = binding.get("subjects", [])
    bound = [s.get("name") for s in subjects
             if s.get("kind") == "ServiceAccount" and s.get("namespace") == namespace and s.get("name") in accounts]
    if len(subjects) != 1 or len(bound) != 1:
        problems.append(f"RoleBinding subjects {subjects}: expected exactly one ServiceAccount of rbac.yaml "
                        f"({sorted(accounts)}) in namespace {namespace}")
    stack_account = pod.get("serviceAccountName")
    if stack_account not in bound:
        problems.append(f"the stack's pod runs as service account {stack_account!r}, not the one the RoleBinding "
                        f"binds ({bound})")
    if pod.get("automountServiceAccountToken") is False or \
            accounts.get(stack_account, {}).get("automountServiceAccountToken") is False:
        problems.append("the stack's pod does not mount its service account token (the backend sends it)")

    # --- the worker Deployments
    workers = {d["metadata"]["name"]: d for d in by_file["workers.yaml"]}
    secrets_mounted = {}  # Secret name -> key the pod reads
    for fn, name in resolved.items():
        d = workers.get(name)
        if d is None:
            problems.append(f"function {fn}: its Deployment {name} is not in workers.yaml ({sorted(workers)})")
            continue
        where = f"workers.yaml: Deployment {name}"
        wspec = d.get("spec", {})
        if wspec.get("replicas") != 0:
            problems.append(f"{where} has replicas {wspec.get('replicas')}, expected 0 (the autoscaler scales it)")
        if d["metadata"].get("namespace") != namespace:
            problems.append(f"{where} is in namespace {d['metadata'].get('namespace')}, not {namespace}")
        if not selects(wspec.get("selector", {}).get("matchLabels", {}), labels_of(d)):
            problems.append(f"{where}: its selector does not match its pod labels")
        wpod = pod_of(d)
        if wpod.get("serviceAccountName") in bound:
            problems.append(f"{where} runs as the stack's service account {wpod['serviceAccountName']}")
        if wpod.get("automountServiceAccountToken") is not False:
            problems.append(f"{where} mounts a service account token; workers call no Kubernetes API")
        wcontainers = wpod.get("containers", [])
        if len(wcontainers) != 1:
            problems.append(f"{where} has {len(wcontainers)} containers, expected 1")
            continue
        wc = wcontainers[0]
        command = list(wc.get("command", [])) + list(wc.get("args", []))
        if not command or os.path.basename(command[0]) != "runnel-worker":
            problems.append(f"{where} does not run runnel-worker: {command}")
        if "--function" not in command or command.index("--function") + 1 >= len(command) or \
                command[command.index("--function") + 1] != fn:
            problems.append(f"{where} does not run --function {fn}: {command}")
        if "--join" not in command or command.index("--join") + 1 >= len(command):
            problems.append(f"{where} does not run --join TOKEN_FILE: {command}")
        else:
            token = command[command.index("--join") + 1]
            wvolumes = {v["name"]: v for v in wpod.get("volumes", [])}
            wmounts = {m["mountPath"]: m["name"] for m in wc.get("volumeMounts", [])}
            secret = wvolumes.get(wmounts.get(os.path.dirname(token), ""), {}).get("secret")
            if not secret:
                problems.append(f"{where}: --join {token} is not in a Secret volume")
            else:
                items = {i["path"]: i["key"] for i in secret.get("items", [])}
                secrets_mounted[secret.get("secretName")] = items.get(os.path.basename(token),
                                                                      os.path.basename(token))
        security = {**wpod.get("securityContext", {}), **wc.get("securityContext", {})}
        if security.get("runAsNonRoot") is not True or security.get("runAsUser") in (None, 0):
            problems.append(f"{where} does not run as a non-root user (runAsNonRoot, runAsUser)")
        res = wc.get("resources", {})
        for part, keys in (("requests", ("cpu", "memory")), ("limits", ("memory",))):
            for key in keys:
                if key not in res.get(part, {}):
                    problems.append(f"{where} has no resources.{part}.{key}")
        timeout = duration_ms(next(f for f in functions if f["name"] == fn).get("timeout", "30s"))
        grace = wpod.get("terminationGracePeriodSeconds", 30)
        if timeout is not None and grace * 1000 < timeout + 2000:
            problems.append(f"{where}: terminationGracePeriodSeconds {grace} is less than function {fn}'s "
                            f"timeout + 2 s ({(timeout + 2000) / 1000:g} s): a pod scaled away is killed mid-call")
        for s in objects["Service"]:
            if selects(s.get("spec", {}).get("selector", {}), labels_of(d)):
                problems.append(f"Service {s['metadata']['name']} selects the worker pods of {name}")
    for name in sorted(set(workers) - set(resolved.values())):
        problems.append(f"workers.yaml: Deployment {name} is no function's in runnel.yaml: nothing scales it")

    # --- the listen ports: declared by the stack, exposed by the Service `advertise` names
    listen = config.get("listen") or {}
    dispatcher_ports = listen_ports(listen.get("dispatchers", ""))
    if len(dispatcher_ports) != len(functions):
        problems.append(f"listen.dispatchers {listen.get('dispatchers')!r} has {len(dispatcher_ports)} port(s) for "
                        f"{len(functions)} functions: worker pods need a fixed port per function")
    wanted_ports = dispatcher_ports + listen_ports(listen.get("results", "")) + listen_ports(listen.get("control", ""))
    if len(wanted_ports) != len(functions) + 2:
        problems.append(f"listen {listen}: every ZeroMQ socket (dispatchers, results, control) needs a fixed port")
    advertise = str(config.get("advertise", ""))
    labels = advertise.split(".")
    if len(labels) < 2 or labels[1] != namespace or (len(labels) > 2 and labels[2] != "svc"):
        problems.append(f"advertise {advertise!r} is not a Service of namespace {namespace} (SERVICE.{namespace}.svc)")
    services = {s["metadata"]["name"]: s for s in objects["Service"]}
    advertised = services.get(labels[0])
    if advertised is None:
        problems.append(f"advertise {advertise!r} names Service {labels[0]!r}, which service.yaml does not define")
    for port in wanted_ports:
        if port not in port_numbers:
            problems.append(f"the stack's container does not declare port {port} of runnel.yaml's listen")
        if advertised is not None and not any(
                p.get("port") == port and port_names.get(p.get("targetPort"), p.get("targetPort")) == port
                for p in advertised.get("spec", {}).get("ports", [])):
            problems.append(f"Service {labels[0]} does not expose port {port} (listen) on the container's port {port}")
    for s in objects["Service"]:
        svc_selector = s.get("spec", {}).get("selector", {})
        if not selects(svc_selector, pod_labels):
            problems.append(f"Service {s['metadata']['name']}'s selector {svc_selector} does not select the stack's pods")
        for p in s.get("spec", {}).get("ports", []):
            if p.get("targetPort") not in set(port_names) | port_numbers:
                problems.append(f"Service {s['metadata']['name']}'s targetPort {p.get('targetPort')} is not a container port")

    # --- the join-token Secrets (join/, applied once the tokens exist)
    join_dir = os.path.join(folder, "join")
    try:
        join = load_all(os.path.join(join_dir, "kustomization.yaml"))[0]
    except (OSError, IndexError, yaml.YAMLError) as e:
        problems.append(f"join/kustomization.yaml: cannot read it: {e}")
        join = None
    if join is not None:
        if join.get("namespace") != namespace:
            problems.append(f"join/kustomization.yaml: namespace {join.get('namespace')}, not {namespace}")
        if join.get("generatorOptions", {}).get("disableNameSuffixHash") is not True:
            problems.append("join/kustomization.yaml: the Secrets get a hash suffix, so workers.yaml would not "
                            "find them (generatorOptions.disableNameSuffixHash: true)")
        try:
            with open(os.path.join(join_dir, ".gitignore")) as f:
                ignored = [line.strip() for line in f if line.strip() and not line.startswith("#")]
        except OSError:
            ignored = []
        generated = {}
        for g in join.get("secretGenerator", []):
            keys = {}
            for entry in g.get("files", []):
                key, _, source = entry.partition("=") if "=" in entry else (os.path.basename(entry), "", entry)
                keys[key] = source
                if not any(fnmatch.fnmatch(source, pattern) for pattern in ignored):
                    problems.append(f"join/kustomization.yaml: {source} (a join token) is not in join/.gitignore")
            generated[g.get("name")] = keys
        if sorted(generated) != sorted(secrets_mounted):
            problems.append(f"join/kustomization.yaml generates Secrets {sorted(generated)}; the worker pods mount "
                            f"{sorted(secrets_mounted)}")
        for name, key in secrets_mounted.items():
            if name in generated and key not in generated[name]:
                problems.append(f"join/kustomization.yaml: Secret {name} has keys {sorted(generated[name])}, the "
                                f"worker pods read {key}")

    # --- the KEDA example
    families = documented_metrics(metrics_md)
    if len(families) < 10:
        problems.append(f"{metrics_md}: only {len(families)} documented families found in its table")
    scaled = one("ScaledObject")
    target = scaled.get("spec", {}).get("scaleTargetRef", {})
    target_fn = {v: k for k, v in resolved.items()}.get(target.get("name"))
    if target.get("kind", "Deployment") != "Deployment" or target.get("name") not in workers:
        problems.append(f"keda-scaledobject.yaml scales {target}, not a Deployment of workers.yaml")
    triggers = scaled.get("spec", {}).get("triggers", [])
    if not any(t.get("type") == "prometheus" for t in triggers):
        problems.append("keda-scaledobject.yaml has no prometheus trigger")
    for t in triggers:
        if t.get("type") != "prometheus":
            continue
        query = t.get("metadata", {}).get("query", "")
        used = METRIC.findall(query)
        if not used:
            problems.append(f"keda-scaledobject.yaml: query {query!r} reads no runnel_ metric")
        for metric, matchers in used:
            if metric not in families:
                problems.append(f"keda-scaledobject.yaml: query reads {metric}, which {metrics_md} does not document")
                continue
            found = dict((label, value) for label, _, value in MATCHER.findall(matchers or ""))
            for label in found:
                if label not in families[metric]:
                    problems.append(f"keda-scaledobject.yaml: {metric} has no label {label} "
                                    f"(documented: {sorted(families[metric])})")
            if "function" in families[metric] and found.get("function") != target_fn:
                problems.append(f"keda-scaledobject.yaml: query's function={found.get('function')!r} is not "
                                f"{target_fn!r}, the function Deployment {target.get('name')} runs")

    if problems:
        return report(problems)
    print(f"ok: {len(files)} manifests in {folder}: " +
          ", ".join(f"{f} ({'/'.join(k for k in EXPECTED[f] if k != '...')}{'...' if '...' in EXPECTED[f] else ''})"
                    for f in files) +
          f"; workers {', '.join(f'{k} -> {v}' for k, v in resolved.items())}; join/ Secrets {sorted(secrets_mounted)}")
    return 0


def report(problems):
    for p in problems:
        print(f"FAIL: {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
