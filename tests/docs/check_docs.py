#!/usr/bin/env python3
"""The docs tier: what a fresh clone's reader relies on, checked statically.

1. Every public header of a library folder (FOLDER/include/**.hpp|.h) is named in FOLDER/README.md,
   and that README says who calls the module ("Called by").
2. Every relative link in README.md, docs/*.md and the folder READMEs points at a file or folder
   inside the repository that exists (nothing may point outside a clone).

Usage: check_docs.py REPO_ROOT. Exit status 1 with one line per finding.
"""
import pathlib
import re
import sys

LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def headers_named(root: pathlib.Path, findings: list) -> None:
    for include in sorted(root.glob("*/include")):
        folder = include.parent
        readme = folder / "README.md"
        if not readme.is_file():
            findings.append(f"{folder.name}/: has public headers but no README.md")
            continue
        text = readme.read_text()
        for header in sorted(list(include.rglob("*.hpp")) + list(include.rglob("*.h"))):
            if header.name not in text:
                findings.append(f"{folder.name}/README.md: does not name public header "
                                f"{header.relative_to(folder)}")
        if "called by" not in text.lower():
            findings.append(f"{folder.name}/README.md: does not say who calls the module (\"Called by\")")


def links_inside(root: pathlib.Path, findings: list) -> None:
    docs = [root / "README.md", *sorted((root / "docs").glob("*.md")), *sorted(root.glob("*/README.md")),
            *sorted(root.glob("*/*/README.md"))]
    for doc in docs:
        if not doc.is_file():
            continue
        for lineno, line in enumerate(doc.read_text().splitlines(), 1):
            for target in LINK.findall(line):
                if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto:
                    continue
                resolved = (doc.parent / target).resolve()
                where = f"{doc.relative_to(root)}:{lineno}"
                if root.resolve() not in resolved.parents and resolved != root.resolve():
                    findings.append(f"{where}: link {target} points outside the repository")
                elif not resolved.exists():
                    findings.append(f"{where}: link {target} points at nothing")


def main() -> int:
    root = pathlib.Path(sys.argv[1])
    findings: list = []
    headers_named(root, findings)
    links_inside(root, findings)
    for f in findings:
        print(f)
    return 1 if findings else 0


if __name__ == "__main__":
    sys.exit(main())
