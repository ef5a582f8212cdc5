#!/usr/bin/python3
"""deploy tier: the Kubernetes manifests in deploy/k8s/, parsed as YAML (python3-yaml).

Checks, failing with every problem named:
  - each file holds exactly the kinds expected of it, each object with apiVersion, kind and name;
    a manifest this test does not know is an error (keep the test in step with the folder);
  - namespaced objects are all in the Namespace the folder defines;
  - kustomization.yaml lists every other manifest;
  - the references hold: the Deployment runs `runnel up --kafka ... --config ...` with one replica,
    mounts the ConfigMap's runnel.yaml and the PersistentVolumeClaim at /data, takes the Kafka
    address from a ConfigMap key that exists, and the Service selects the Deployment's pods on a
    port the container declares.

Usage: check_k8s.py K8S_DIR
"""
import os
import sys

import yaml

EXPECTED = {
    "namespace.yaml": ["Namespace"],
    "configmap.yaml": ["ConfigMap"],
    "pvc.yaml": ["PersistentVolumeClaim"],
    "deployment.yaml": ["Deployment"],
    "service.yaml": ["Service"],
    "kustomization.yaml": ["Kustomization"],
}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    folder = sys.argv[1]
    problems = []
    objects = {}  # kind -> [object]
    files = sorted(f for f in os.listdir(folder) if f.endswith((".yaml", ".yml")))
    for name in sorted(set(EXPECTED) - set(files)):
        problems.append(f"{name}: missing")
    for name in files:
        path = os.path.join(folder, name)
        try:
            docs = [d for d in yaml.safe_load_all(open(path)) if d is not None]
        except yaml.YAMLError as e:
            problems.append(f"{name}: not valid YAML: {e}")
            continue
        if name not in EXPECTED:
            problems.append(f"{name}: not a manifest this test knows (add it to EXPECTED in {__file__})")
            continue
        kinds = [d.get("kind") if isinstance(d, dict) else None for d in docs]
        if kinds != EXPECTED[name]:
            problems.append(f"{name}: kinds {kinds}, expected {EXPECTED[name]}")
        for d in docs:
            if not isinstance(d, dict):
                continue
            if not d.get("apiVersion"):
                problems.append(f"{name}: {d.get('kind')} has no apiVersion")
            if d.get("kind") != "Kustomization" and not d.get("metadata", {}).get("name"):
                problems.append(f"{name}: {d.get('kind')} has no metadata.name")
            objects.setdefault(d.get("kind"), []).append(d)
    if problems:
        return report(problems)

    def one(kind):
        return objects[kind][0]

    namespace = one("Namespace")["metadata"]["name"]
    for kind, items in objects.items():
        if kind in ("Namespace", "Kustomization"):
            continue
        for o in items:
            if o["metadata"].get("namespace") != namespace:
                problems.append(f"{kind} {o['metadata']['name']} is not in namespace {namespace}")
    resources = one("Kustomization").get("resources", [])
    if sorted(resources) != sorted(set(EXPECTED) - {"kustomization.yaml"}):
        problems.append(f"kustomization.yaml lists {resources}")

    config_map = one("ConfigMap")
    cm_data = config_map.get("data", {})
    if "runnel.yaml" not in cm_data:
        problems.append("the ConfigMap has no runnel.yaml")
    deployment = one("Deployment")
    spec = deployment.get("spec", {})
    if spec.get("replicas") != 1:
        problems.append(f"the Deployment has {spec.get('replicas')} replicas; one stack per Kafka groups, 1 expected")
    pod = spec.get("template", {}).get("spec", {})
    pod_labels = spec.get("template", {}).get("metadata", {}).get("labels", {})
    selector = spec.get("selector", {}).get("matchLabels", {})
    if not selector or any(pod_labels.get(k) != v for k, v in selector.items()):
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
    claim = one("PersistentVolumeClaim")["metadata"]["name"]
    data_volume = volumes.get(mounts.get("/data", ""), {})
    if data_volume.get("persistentVolumeClaim", {}).get("claimName") != claim:
        problems.append(f"/data is not the PersistentVolumeClaim {claim}")
    service = one("Service")
    svc_selector = service.get("spec", {}).get("selector", {})
    if not svc_selector or any(pod_labels.get(k) != v for k, v in svc_selector.items()):
        problems.append(f"the Service's selector {svc_selector} does not select the Deployment's pods")
    port_names = {p.get("name") for p in container.get("ports", [])}
    port_numbers = {p.get("containerPort") for p in container.get("ports", [])}
    for p in service.get("spec", {}).get("ports", []):
        if p.get("targetPort") not in port_names | port_numbers:
            problems.append(f"the Service's targetPort {p.get('targetPort')} is not a container port")
    if problems:
        return report(problems)
    print(f"ok: {len(files)} manifests in {folder}: " +
          ", ".join(f"{f} ({'/'.join(EXPECTED[f])})" for f in files))
    return 0


def report(problems):
    for p in problems:
        print(f"FAIL: {p}")
    return 1


if __name__ == "__main__":
    sys.exit(main())
