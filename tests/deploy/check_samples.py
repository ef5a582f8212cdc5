#!/usr/bin/python3
"""deploy tier: every sample's config run through the compose stack's settings, statically.

deploy/README.md and each samples/X/README.md say `RUNNEL_CONFIG=../samples/X/runnel.yaml docker
compose -f deploy/docker-compose.yml up`. For deploy/runnel.yaml and every samples/*/runnel.yaml this
resolves the compose file with that RUNNEL_CONFIG (docker-compose config, no engine) and checks,
with the `runnel` service's command, environment and volumes as the container would see them:

  - the config is mounted at the path `--config` names;
  - metrics: `--metrics` (else the config's `metrics`, else 127.0.0.1:0) listens on every interface
    at the port deploy/prometheus/prometheus.yml scrapes for host `runnel`;
  - outputs: `--output-dir` (else the config's `output_dir`, else <state dir>/outputs) is under a
    named volume, and under /data/outputs when the sample's README promises that;
  - files: every file the config names (an exec: program and its file arguments, a plugin:
    library, after ${VAR} expansion with the service's environment; paths relative to the mounted
    config's folder) is in the image: a COPY of deploy/Dockerfile's runtime stage (whose source
    exists in the repository or at the same place in this build) or a file of a package the stage
    installs (dpkg -S, with its dependencies); a schedule's folder is under a volume;
  - every flag of the command is one `runnel up --help` lists;
  - `runnel config check` accepts it in a staged copy of the image's files (COPY sources placed at
    their image paths under a temporary root, absolute image paths in the environment moved there).

Usage: check_samples.py COMPOSE_FILE DOCKERFILE SAMPLES_DIR RUNNEL_BINARY BUILD_DIR
"""
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile

import yaml

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from check_compose import volume_mount  # noqa: E402
from check_dockerfile import apt_installed_packages, closure, stages  # noqa: E402

CONFIG_IN_IMAGE_DIR = "/etc/runnel"
VAR = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*)|:\?([^}]*))?\}")


def expand(text, env, where, problems):
    """${NAME}, ${NAME:-default}, ${NAME:?message}, $$ as runnel.yaml expands them."""
    def one(m):
        if m.group(0) == "$$":
            return "$"
        name, default = m.group(1), m.group(2)
        if env.get(name):
            return env[name]
        if default is not None:
            return default
        problems.append(f"{where}: ${{{name}}} is not set by the compose service's environment")
        return ""
    return VAR.sub(one, text)


def image_copies(dockerfile, repo, build_dir, problems):
    """{path in the image: local source} for the runtime stage's COPY instructions."""
    all_stages = stages(dockerfile)
    runtime = all_stages[-1]
    build_names = {s["name"] for s in all_stages[:-1]}
    copies = {}
    for keyword, args in runtime["body"]:
        if keyword != "COPY":
            continue
        words = shlex.split(args)
        flags = [w for w in words if w.startswith("--")]
        paths = [w for w in words if not w.startswith("--")]
        from_stage = next((f.split("=", 1)[1] for f in flags if f.startswith("--from=")), None)
        *sources, dest = paths
        for source in sources:
            if from_stage in build_names:
                if not source.startswith("/src/build/"):
                    problems.append(f"Dockerfile: COPY --from={from_stage} {source} is not under /src/build/")
                    continue
                local = os.path.join(build_dir, source[len("/src/build/"):])
            else:
                local = os.path.join(repo, source)
            if not os.path.exists(local):
                problems.append(f"Dockerfile: COPY source {source} does not exist (looked at {local})")
            target = os.path.join(dest, os.path.basename(source)) if dest.endswith("/") or len(sources) > 1 else dest
            copies[os.path.normpath(target)] = local
    return copies, runtime


def package_files(packages):
    """The files the packages hold (dpkg -L), as installed on this machine."""
    files = set()
    for package in packages:
        listing = subprocess.run(["dpkg", "-L", package], capture_output=True, text=True)
        files.update(line.strip() for line in listing.stdout.splitlines())
    return files


def in_image(path, copies, packaged):
    path = os.path.normpath(path)
    return path in copies or any(path.startswith(d + "/") for d, s in copies.items() if os.path.isdir(s)) or \
        path in packaged or os.path.realpath(path) in packaged


def image_path(path):
    return path if os.path.isabs(path) else os.path.normpath(os.path.join(CONFIG_IN_IMAGE_DIR, path))


def flag(command, name):
    return command[command.index(name) + 1] if name in command and command.index(name) + 1 < len(command) else None


def under(path, roots):
    return any(os.path.normpath(path) == r or os.path.normpath(path).startswith(r.rstrip("/") + "/") for r in roots)


def main():
    if len(sys.argv) != 6:
        print(__doc__)
        return 2
    compose, dockerfile, samples, runnel, build_dir = map(os.path.abspath, sys.argv[1:])
    repo = os.path.dirname(os.path.dirname(compose))
    tool = shutil.which("docker-compose")
    if tool is None:
        print("FAIL: docker-compose is not installed (Debian package docker-compose)")
        return 1
    problems = []
    copies, runtime = image_copies(dockerfile, repo, build_dir, problems)
    listed = apt_installed_packages(runtime)
    packaged = package_files(closure(listed))
    up_help = subprocess.run([runnel, "up", "--help"], capture_output=True, text=True).stdout

    configs = [os.path.join(repo, "deploy", "runnel.yaml")] + sorted(glob.glob(os.path.join(samples, "*", "runnel.yaml")))
    if len(configs) < 6:
        problems.append(f"only {len(configs) - 1} samples/*/runnel.yaml found under {samples}")
    checked = []
    for config_file in configs:
        name = os.path.relpath(config_file, repo)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNNEL_", "COMPOSE_"))}
        # As the READMEs write it: relative to deploy/ (./runnel.yaml, ../samples/X/runnel.yaml).
        relative = os.path.relpath(config_file, os.path.dirname(compose))
        env.update(DOCKER_HOST="unix:///nonexistent/runnel-deploy-test.sock",
                   RUNNEL_CONFIG=relative if relative.startswith("..") else "./" + relative)
        resolved = subprocess.run([tool, "-f", compose, "config"], capture_output=True, text=True, env=env)
        if resolved.returncode != 0:
            problems.append(f"{name}: docker-compose config failed: {resolved.stderr.strip()}")
            continue
        services = yaml.safe_load(resolved.stdout)["services"]
        service = services["runnel"]
        command = [str(w) for w in service.get("command", [])]
        environment = {k: "" if v is None else str(v) for k, v in (service.get("environment") or {}).items()}
        mounts = [volume_mount(v) for v in service.get("volumes", [])]
        volumes = [m["target"] for m in mounts if m.get("type") == "volume"]
        by_target = {m["target"]: m for m in mounts}

        for word in command:
            if word.startswith("--") and not re.search(rf"(^|[\s,]){re.escape(word)}\b", up_help):
                problems.append(f"{name}: the compose command passes {word}, which `runnel up --help` does not list")
        config_path = flag(command, "--config") or ""
        mounted = by_target.get(config_path, {})
        if os.path.normpath(mounted.get("source", "")) != config_file:
            problems.append(f"{name}: RUNNEL_CONFIG does not mount it at --config {config_path} ({mounted})")

        text = open(config_file).read()
        config = yaml.safe_load(expand(text, environment, name, problems)) or {}

        # Metrics: where Prometheus scrapes.
        prom_source = next((volume_mount(v)["source"] for v in services["prometheus"].get("volumes", [])
                            if volume_mount(v)["target"] == "/etc/prometheus/prometheus.yml"), None)
        prom = yaml.safe_load(open(prom_source)) if prom_source and os.path.isfile(prom_source) else {}
        ports = {t.split(":")[1] for job in prom.get("scrape_configs", []) for sc in job.get("static_configs", [])
                 for t in sc.get("targets", []) if t.startswith("runnel:")}
        metrics = flag(command, "--metrics") or str(config.get("metrics", "127.0.0.1:0"))
        host, _, port = metrics.rpartition(":")
        if host != "0.0.0.0" or port not in ports:
            problems.append(f"{name}: metrics listen on {metrics}, but Prometheus scrapes runnel:{sorted(ports)} "
                            f"over the compose network (needs 0.0.0.0:PORT)")

        # Outputs: in a volume, where the README says.
        state_dir = flag(command, "--state-dir") or environment.get("RUNNEL_STATE_DIR", "/var/lib/runnel")
        outputs = flag(command, "--output-dir") or (image_path(str(config["output_dir"])) if config.get("output_dir")
                                                     else os.path.join(state_dir, "outputs"))
        if not under(outputs, volumes):
            problems.append(f"{name}: outputs land in {outputs}, in no volume of the runnel service ({volumes})")
        readme = os.path.join(os.path.dirname(config_file), "README.md")
        if os.path.isfile(readme) and "/data/outputs" in open(readme).read() and not under(outputs, ["/data/outputs"]):
            problems.append(f"{name}: its README promises /data/outputs, but outputs land in {outputs}")

        # Files the config names: in the image.
        def need_file(path, what):
            if not in_image(image_path(path), copies, packaged):
                problems.append(f"{name}: {what} {image_path(path)} is not in the image (no COPY in the runtime "
                                f"stage, no file of an installed package)")
        for function in config.get("functions") or []:
            handler = str(function.get("handler", "builtin:" + str(function.get("name"))))
            fname = function.get("name")
            if handler.startswith("exec:"):
                words = shlex.split(handler[len("exec:"):])
                need_file(words[0], f"function {fname}: the program")
                for arg in words[1:]:
                    if not arg.startswith("-") and os.path.exists(os.path.join(os.path.dirname(config_file), arg)):
                        need_file(arg, f"function {fname}: the file argument")
            elif handler.startswith("plugin:"):
                need_file(handler[len("plugin:"):].split("#", 1)[0], f"function {fname}: the plugin")
        for schedule in config.get("schedules") or []:
            folder = (schedule.get("files") or {}).get("dir")
            if folder is not None and not under(image_path(str(folder)), volumes) and \
                    not in_image(image_path(str(folder)), copies, packaged):
                problems.append(f"{name}: schedule {schedule.get('name')} reads {image_path(str(folder))}, "
                                f"in no volume and not in the image")

        # runnel config check, on the image's files staged under a temporary root.
        with tempfile.TemporaryDirectory(prefix="runnel-image-") as root:
            def staged(path):
                return os.path.join(root, path.lstrip("/"))
            for target, source in copies.items():
                os.makedirs(os.path.dirname(staged(target)), exist_ok=True)
                os.symlink(source, staged(target))
            for volume in volumes:
                os.makedirs(staged(volume), exist_ok=True)
            os.makedirs(staged(os.path.join(CONFIG_IN_IMAGE_DIR)), exist_ok=True)
            if os.path.lexists(staged(config_path)):
                os.remove(staged(config_path))
            shutil.copy(config_file, staged(config_path))
            check_env = dict(os.environ)
            for key in [k for k in check_env if k.startswith("RUNNEL_")]:
                del check_env[key]
            for key, value in environment.items():
                moved = os.path.isabs(value) and (os.path.lexists(staged(value)) or under(value, volumes))
                check_env[key] = staged(value) if moved else value
            result = subprocess.run([runnel, "config", "check", staged(config_path)], capture_output=True, text=True,
                                    env=check_env, timeout=60)
            if result.returncode != 0:
                problems.append(f"{name}: `runnel config check` in the staged image refuses it: "
                                f"{(result.stderr or result.stdout).strip()}")
        checked.append(name)

    for p in problems:
        print(f"FAIL: {p}")
    if not problems:
        print(f"ok: {len(checked)} configs through the compose stack's settings: {', '.join(checked)}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
