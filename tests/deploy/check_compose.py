#!/usr/bin/python3
"""deploy tier: deploy/docker-compose.yml, parsed by Debian's docker-compose without an engine.

1. `docker-compose -f FILE config -q` must succeed with DOCKER_HOST pointing at a socket that does
   not exist, which proves the check needs no Docker engine.
2. The resolved config (`docker-compose config`) must hold what deploy/README.md promises: Kafka
   from the official image in KRaft mode reachable as kafka:9092, `runnel up` pointed at it with the
   mounted config and state dir, a volume at /data, Prometheus scraping runnel:9464, Grafana with
   the Prometheus data source; and every bind-mounted file or folder must exist (Docker would
   silently create a missing one as an empty folder).

Usage: check_compose.py COMPOSE_FILE
"""
import os
import shutil
import subprocess
import sys

import yaml


def volume_mount(entry):
    """A service volume as {type, source, target}: docker-compose 1.x prints the short form
    (SOURCE:TARGET[:MODE]), Compose v2 the long one."""
    if isinstance(entry, dict):
        return entry
    parts = entry.split(":")
    if len(parts) == 1:
        return {"type": "volume", "source": "", "target": parts[0]}
    kind = "bind" if parts[0].startswith(("/", ".", "~")) else "volume"
    return {"type": kind, "source": parts[0], "target": parts[1]}


def main():
    if len(sys.argv) != 2:
        print(__doc__)
        return 2
    compose = os.path.abspath(sys.argv[1])
    tool = shutil.which("docker-compose")
    if tool is None:
        print("FAIL: docker-compose is not installed (Debian package docker-compose; "
              "scripts/install-deps.sh installs it)")
        return 1
    env = dict(os.environ, DOCKER_HOST="unix:///nonexistent/runnel-deploy-test.sock")
    for var in ("COMPOSE_FILE", "COMPOSE_PROJECT_NAME", "RUNNEL_LOG", "KAFKA_CLUSTER_ID"):
        env.pop(var, None)

    quiet = subprocess.run([tool, "-f", compose, "config", "-q"], capture_output=True, text=True, env=env)
    if quiet.returncode != 0:
        print(f"FAIL: docker-compose -f {compose} config -q exited {quiet.returncode}:\n{quiet.stderr}")
        return 1
    full = subprocess.run([tool, "-f", compose, "config"], capture_output=True, text=True, env=env)
    if full.returncode != 0:
        print(f"FAIL: docker-compose config exited {full.returncode}:\n{full.stderr}")
        return 1
    config = yaml.safe_load(full.stdout)
    services = config.get("services", {})
    problems = []

    def expect(condition, what):
        if not condition:
            problems.append(what)

    expect(set(services) == {"kafka", "runnel", "prometheus", "grafana"},
           f"services are {sorted(services)}, expected kafka, runnel, prometheus, grafana")
    kafka = services.get("kafka", {})
    kenv = kafka.get("environment", {})
    expect(str(kafka.get("image", "")).startswith("apache/kafka:"), "kafka does not use the official apache/kafka image")
    expect(set(str(kenv.get("KAFKA_PROCESS_ROLES", "")).split(",")) == {"broker", "controller"},
           "kafka is not one KRaft node (KAFKA_PROCESS_ROLES broker,controller)")
    expect("CLUSTER_ID" in kenv and "KAFKA_CONTROLLER_QUORUM_VOTERS" in kenv, "kafka lacks CLUSTER_ID or quorum voters")
    expect("://kafka:9092" in str(kenv.get("KAFKA_ADVERTISED_LISTENERS", "")),
           "kafka does not advertise kafka:9092 to the other containers")
    expect("healthcheck" in kafka, "kafka has no healthcheck for runnel to wait on")

    runnel = services.get("runnel", {})
    command = runnel.get("command", [])
    expect(command == ["up", "--kafka", "kafka:9092", "--config", "/etc/runnel/runnel.yaml",
                       "--state-dir", "/var/lib/runnel", "--metrics", "0.0.0.0:9464", "--output-dir", "/data/outputs"],
           f"runnel's command is {command}")
    build = runnel.get("build", {})
    dockerfile = os.path.join(build.get("context", ""), build.get("dockerfile", ""))
    expect(os.path.isfile(dockerfile), f"runnel's Dockerfile {dockerfile} does not exist")
    expect(os.path.normpath(dockerfile) ==
           os.path.join(os.path.dirname(os.path.dirname(compose)), "deploy", "Dockerfile"),
           f"runnel is not built from deploy/Dockerfile with the repository root as context: {build}")
    expect(runnel.get("depends_on", {}).get("kafka", {}).get("condition") == "service_healthy",
           "runnel does not wait for a healthy kafka")
    targets = {}
    for service_name, service in services.items():
        for volume in map(volume_mount, service.get("volumes", [])):
            targets[(service_name, volume.get("target"))] = volume
            if volume.get("type") == "bind":
                expect(os.path.exists(volume.get("source", "")),
                       f"{service_name}: bind mount source {volume.get('source')} does not exist")
    expect(("runnel", "/data") in targets and targets[("runnel", "/data")].get("type") == "volume",
           "runnel has no named volume at /data (uploads and outputs)")
    runnel_yaml = targets.get(("runnel", "/etc/runnel/runnel.yaml"), {})
    expect(runnel_yaml.get("source") == os.path.join(os.path.dirname(compose), "runnel.yaml"),
           "runnel does not mount deploy/runnel.yaml at /etc/runnel/runnel.yaml")

    prom_file = targets.get(("prometheus", "/etc/prometheus/prometheus.yml"), {}).get("source")
    if prom_file and os.path.isfile(prom_file):
        prom = yaml.safe_load(open(prom_file))
        scrape = [t for job in prom.get("scrape_configs", []) for sc in job.get("static_configs", [])
                  for t in sc.get("targets", [])]
        expect("runnel:9464" in scrape, f"Prometheus does not scrape runnel:9464 (targets {scrape})")
    else:
        problems.append("prometheus does not mount a prometheus.yml")
    provisioning = targets.get(("grafana", "/etc/grafana/provisioning"), {}).get("source")
    if provisioning and os.path.isdir(provisioning):
        sources_dir = os.path.join(provisioning, "datasources")
        urls = [ds.get("url") for f in sorted(os.listdir(sources_dir)) if f.endswith((".yml", ".yaml"))
                for ds in yaml.safe_load(open(os.path.join(sources_dir, f))).get("datasources", [])]
        expect("http://prometheus:9090" in urls, f"Grafana has no data source for http://prometheus:9090 ({urls})")
    else:
        problems.append("grafana does not mount a provisioning folder")

    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"ok: {compose} parses with {tool} (no engine) and holds {', '.join(sorted(services))}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
