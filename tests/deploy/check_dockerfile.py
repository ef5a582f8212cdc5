#!/usr/bin/python3
"""deploy tier: deploy/Dockerfile against the binaries this build made (runnel, runnel-worker, and
the media module librunnel-media.so).

Checks, failing with every problem named:
  - two stages on Debian 12 (debian:bookworm*), the last one named `runtime`;
  - the build stage builds with -DRUNNEL_BUILD_TESTS=OFF; the runtime stage copies each file
    from it (the module into /usr/local/lib/runnel/, where the binaries look for it), runs as a
    non-root USER, has ENTRYPOINT ["runnel"] and VOLUMEs /data and the state dir, a HEALTHCHECK
    running `runnel status`, and the OCI labels title, description and version;
  - the runtime stage's `apt-get install` lists the Debian package (found with `dpkg -S`) of every
    library one of the files needs directly (NEEDED in `readelf -d`);
  - every other library `ldd` reports comes from a listed package or from a package those depend
    on (Depends/Pre-Depends, recursively, as installed here), so apt brings it along;
  - every listed package provides at least one of those libraries: the stage carries nothing extra
    (but the RUNTIME_DATA_PACKAGES below, each with its reason).

Usage: check_dockerfile.py DOCKERFILE RUNNEL_BINARY WORKER_BINARY MEDIA_MODULE
"""
import json
import os
import re
import shlex
import subprocess
import sys



# Packages the runtime stage needs for data rather than libraries, each with the reason.
RUNTIME_DATA_PACKAGES = {
    "tzdata": "the IANA time-zone database; cron schedules read it through absl::TimeZone",
    "python3": "the interpreter of exec: handlers such as samples/exec-python (exec:/usr/bin/python3 enrich.py)",
}

# OCI annotations the runtime stage must carry (https://github.com/opencontainers/image-spec, annotations.md).
OCI_LABELS = ("org.opencontainers.image.title", "org.opencontainers.image.description",
              "org.opencontainers.image.version")

def fail(problems):
    for p in problems:
        print(f"FAIL: {p}")
    sys.exit(1)


def instructions(path):
    """(keyword, argument text) per instruction: continuations joined, comment lines dropped."""
    out, current = [], ""
    with open(path) as f:
        for raw in f:
            line = raw.rstrip("\n")
            if line.lstrip().startswith("#"):
                continue  # Docker drops comment lines, also inside a continued instruction
            if line.endswith("\\"):
                current += line[:-1] + " "
                continue
            current += line
            if current.strip():
                keyword, _, rest = current.strip().partition(" ")
                out.append((keyword.upper(), rest.strip()))
            current = ""
    if current.strip():
        keyword, _, rest = current.strip().partition(" ")
        out.append((keyword.upper(), rest.strip()))
    return out


def stages(path):
    """[{'from': image, 'name': name, 'body': [(keyword, args)...]}...]"""
    result = []
    for keyword, args in instructions(path):
        if keyword == "FROM":
            words = args.split()
            name = words[2] if len(words) >= 3 and words[1].upper() == "AS" else ""
            result.append({"from": words[0], "name": name, "body": []})
        elif result:
            result[-1]["body"].append((keyword, args))
    return result


def apt_installed_packages(stage):
    """Package names after `apt-get install` in the stage's RUN instructions."""
    packages = []
    for keyword, args in stage["body"]:
        if keyword != "RUN":
            continue
        for command in re.split(r"&&|;|\|\|", args):
            words = shlex.split(command)
            if "apt-get" in words and "install" in words:
                after = words[words.index("install") + 1:]
                packages += [w for w in after if not w.startswith("-")]
    return packages


def ldd(binary):
    run = subprocess.run(["ldd", binary], capture_output=True, text=True)
    if run.returncode != 0:
        fail([f"ldd {binary} failed: {run.stderr.strip()}"])
    libs, problems = {}, []
    for line in run.stdout.splitlines():
        line = line.strip()
        m = re.match(r"(\S+) => (\S+) \(0x[0-9a-f]+\)", line)
        if m:
            libs[m.group(1)] = m.group(2)
            continue
        m = re.match(r"(\S+) => not found", line)
        if m:
            problems.append(f"ldd: {m.group(1)} not found on this machine")
            continue
        m = re.match(r"(/\S+) \(0x[0-9a-f]+\)", line)  # the dynamic loader
        if m:
            libs[os.path.basename(m.group(1))] = m.group(1)
    if problems:
        fail(problems)
    libs.pop("linux-vdso.so.1", None)  # the kernel's, no file
    return libs


def needed(binary):
    run = subprocess.run(["readelf", "-d", binary], capture_output=True, text=True, check=True)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", run.stdout)


def owners(paths):
    """{path: Debian package} for the library files, asked of dpkg once (a query per file is slow).
    Each path is tried as given and resolved, in its /usr-merged and unmerged spellings."""
    spellings = {}
    for path in paths:
        for p in (path, os.path.realpath(path)):
            for s in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
                spellings.setdefault(s, path)
    run = subprocess.run(["dpkg-query", "-S", *sorted(spellings)], capture_output=True, text=True)
    found = {}
    for line in run.stdout.splitlines():
        owner, _, owned = line.partition(": ")
        owned = owned.strip()
        if owned in spellings and "diversion" not in owner:
            found.setdefault(spellings[owned], owner.split(",")[0].split(":")[0].strip())
    return found


def installed_dependencies():
    """{package: its Depends and Pre-Depends} for every installed package: the first alternative
    of each clause (what apt picks), without versions or architecture qualifiers."""
    run = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Abbrev}\t${Package}\t${Depends}, ${Pre-Depends}\n"],
                         capture_output=True, text=True, check=True)
    deps = {}
    for line in run.stdout.splitlines():
        status, package, clauses = (line.split("\t") + ["", ""])[:3]
        if not status.startswith("ii"):
            continue
        names = deps.setdefault(package, set())
        for clause in clauses.split(","):
            first = clause.split("|")[0].strip()
            name = re.sub(r"\s*\(.*\)", "", first).split(":")[0].strip()
            if name:
                names.add(name)
    return deps


def closure(packages):
    deps = installed_dependencies()
    seen, todo = set(), list(packages)
    while todo:
        p = todo.pop()
        if p in seen:
            continue
        seen.add(p)
        todo.extend(deps.get(p, set()) - seen)
    return seen


def main():
    if len(sys.argv) != 5:
        print(__doc__)
        sys.exit(2)
    dockerfile, files = sys.argv[1], sys.argv[2:]
    problems = []

    all_stages = stages(dockerfile)
    if len(all_stages) < 2:
        fail([f"{dockerfile}: expected a build stage and a runtime stage, found {len(all_stages)} stage(s)"])
    for s in all_stages:
        if not re.fullmatch(r"debian:bookworm(-slim)?", s["from"]):
            problems.append(f"stage '{s['name']}' is FROM {s['from']}, not Debian 12 (debian:bookworm)")
    build, runtime = all_stages[0], all_stages[-1]
    if runtime["name"] != "runtime":
        problems.append(f"the last stage is named '{runtime['name']}', expected 'runtime'")
    build_runs = " ".join(a for k, a in build["body"] if k == "RUN")
    if "-DRUNNEL_BUILD_TESTS=OFF" not in build_runs:
        problems.append("the build stage does not configure with -DRUNNEL_BUILD_TESTS=OFF")
    body = runtime["body"]
    copies = [a for k, a in body if k == "COPY"]
    for f in files:
        name = os.path.basename(f)
        copied = [a for a in copies if a.startswith(f"--from={build['name']} ") and f"/cli/{name} " in a + " "]
        if not copied:
            problems.append(f"the runtime stage does not COPY --from={build['name']} {name}")
        elif name.endswith(".so") and not copied[0].split()[-1].startswith("/usr/local/lib/runnel"):
            problems.append(f"{name} is copied to {copied[0].split()[-1]}, not /usr/local/lib/runnel/ "
                            f"(where the binaries in /usr/local/bin look for modules)")
    users = [a for k, a in body if k == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append(f"the runtime stage must end with a non-root USER (has {users or 'none'})")
    entrypoints = [a for k, a in body if k == "ENTRYPOINT"]
    if not entrypoints or json.loads(entrypoints[-1]) != ["runnel"]:
        problems.append(f'the runtime stage ENTRYPOINT must be ["runnel"] (has {entrypoints or "none"})')
    volumes = set()
    for k, a in body:
        if k == "VOLUME":
            volumes.update(json.loads(a) if a.startswith("[") else a.split())
    for v in ("/data", "/var/lib/runnel"):
        if v not in volumes:
            problems.append(f"the runtime stage does not declare VOLUME {v}")
    healthchecks = [a for k, a in body if k == "HEALTHCHECK"]
    if not healthchecks or "CMD" not in healthchecks[-1].split() or "status" not in healthchecks[-1]:
        problems.append(f"the runtime stage has no HEALTHCHECK running `runnel status` (has {healthchecks or 'none'})")
    labels = " ".join(shlex.split(" ".join(a for k, a in body if k == "LABEL")))
    for label in OCI_LABELS:
        if f"{label}=" not in labels:
            problems.append(f"the runtime stage has no LABEL {label}")

    listed = apt_installed_packages(runtime)
    if not listed:
        fail(problems + ["the runtime stage has no `apt-get install`"])
    libs, direct = {}, set()
    for f in files:
        libs.update(ldd(f))
        direct.update(needed(f))
    brought_along = closure(listed)
    used = set()
    owner = owners(libs.values())
    for soname, path in sorted(libs.items()):
        package = owner.get(path)
        if package is None:
            problems.append(f"{soname} ({path}): no Debian package owns it (dpkg -S)")
            continue
        used.add(package)
        if soname in direct and package not in listed:
            problems.append(f"{soname} is linked directly, but its package {package} is missing "
                            f"from the runtime stage's apt-get install")
        elif package not in brought_along:
            problems.append(f"{soname} ({package}) is neither listed in the runtime stage nor a "
                            f"dependency of a listed package")
    for package in listed:
        if package not in used and package not in RUNTIME_DATA_PACKAGES:
            problems.append(f"the runtime stage installs {package}, which provides none of the "
                            f"libraries ldd reports: remove it")
    if problems:
        fail(problems)
    print(f"ok: {len(libs)} libraries ({len(direct)} direct) covered by {len(listed)} listed "
          f"packages: {' '.join(sorted(listed))}")


if __name__ == "__main__":
    main()
