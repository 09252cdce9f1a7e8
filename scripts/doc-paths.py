#!/usr/bin/env python3
"""Files the docs name must exist: every repository path in README.md and docs/*.md that starts
at a top-level directory (`crates/…`, `scripts/…`, `deploy/…`, `tests/e2e/…`, …) is looked up
in the working tree. `{a,b}` is expanded, `*` is a glob, and a path with a placeholder
(`<name>`, or a segment in capitals such as `TARGET`) is checked up to it. Prints each missing
path with its file and line and exits 1 if there is any. Usage: scripts/doc-paths.py [FILE...]
(default: README.md docs/*.md). Run by scripts/test.sh stage fmt."""
import glob, os, re, sys

ROOTS = r"(?:crates|scripts|deploy|plugins|tools|fuzz|crds|\.ci|docs|tests/e2e)/"
PATH = re.compile(r"(?<![\w./:-])(" + ROOTS + r"[\w.{},*<>/-]*)")


# Paths that look like ours but name another project's file or a Kubernetes object.
NOT_OURS = {
    "docs/provider/kubernetes.md",  # ESO's documentation
    "docs/provider/webhook.md",  # ESO's documentation
    "docs/snippets",  # ESO's documented manifests, copied next to the peer binary
    "crds/bundle.yaml",  # ESO's CRD bundle, next to the peer binary
    "deploy/hush",  # `kubectl … deploy/hush`: the Deployment
}


def expand(path):
    m = re.search(r"\{([^{}]*)\}", path)
    if not m:
        return [path]
    return [alt for part in m.group(1).split(",")
            for alt in expand(path[:m.start()] + part + path[m.end():])]


def exists(path):
    path = path.split("<", 1)[0].rstrip(".,")
    path = re.split(r"/[A-Z][A-Z_]+(?=/|$)", path, maxsplit=1)[0]  # fuzz/corpus/TARGET/
    if path.rstrip("/") in NOT_OURS:
        return True
    if "*" in path:
        return bool(glob.glob(path))
    return os.path.exists(path)


def main(files):
    missing = 0
    for doc in files:
        for n, line in enumerate(open(doc, encoding="utf-8"), 1):
            for m in PATH.finditer(line):
                for path in expand(m.group(1)):
                    if not exists(path):
                        print(f"{doc}:{n}: {path} does not exist")
                        missing += 1
    return 1 if missing else 0


if __name__ == "__main__":
    os.chdir(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    sys.exit(main(sys.argv[1:] or ["README.md"] + sorted(glob.glob("docs/*.md"))))
