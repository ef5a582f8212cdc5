#!/usr/bin/env python3
"""The library seams the folder table promises, checked on the source tree:

- librdkafka (rdkafka.h) is included only by kafka/src (and tests): the Kafka client layer is the
  one library that speaks it, and none of its public headers does.
- No public header (any <folder>/include, broker/api/include) includes rdkafka.h or ZeroMQ
  (zmq.h, zmq.hpp, zmq_addon.hpp): callers of a library never see its transport.
- No library's CMakeLists adds another library's src/ to an include path.

Prints each violation as path:line: reason and exits 1 if there is any.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()
SKIP = {"build", ".git", "tests", "samples"}
INCLUDE = re.compile(r'^\s*#\s*include\s*[<"]([^>"]+)[>"]')
ZMQ = {"zmq.h", "zmq.hpp", "zmq_addon.hpp"}


def sources():
    for path in ROOT.rglob("*"):
        rel = path.relative_to(ROOT)
        if rel.parts[0] in SKIP or rel.parts[0].startswith("build") or not path.is_file():
            continue
        if path.suffix in {".cpp", ".hpp", ".h", ".cc"}:
            yield rel, path


def main():
    problems = []
    for rel, path in sources():
        public = "include" in rel.parts
        for number, line in enumerate(path.read_text(errors="replace").splitlines(), 1):
            match = INCLUDE.match(line)
            if not match:
                continue
            header = match.group(1)
            if header.startswith("librdkafka/"):
                if public:
                    problems.append(f"{rel}:{number}: a public header includes {header}")
                elif rel.parts[:2] != ("kafka", "src"):
                    problems.append(f"{rel}:{number}: {header} outside kafka/src (use runnel::kafka)")
            if public and header in ZMQ:
                problems.append(f"{rel}:{number}: a public header includes {header}")
    for cmake in ROOT.rglob("CMakeLists.txt"):
        rel = cmake.relative_to(ROOT)
        if rel.parts[0].startswith("build") or rel.parts[0] in SKIP:
            continue
        for number, line in enumerate(cmake.read_text().splitlines(), 1):
            if line.lstrip().startswith("#"):
                continue
            for other in re.findall(r"PROJECT_SOURCE_DIR\}/([a-z_]+)/src", line):
                problems.append(f"{rel}:{number}: adds {other}/src to an include path")
    for problem in problems:
        print(problem)
    if problems:
        return 1
    print("layout: every seam holds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
