#!/usr/bin/env python3
"""Fails if Cargo.lock pins a crate version that its authors yanked from crates.io.

The RustSec advisory database (what `cargo audit` reads) is fetched from github.com,
which this CI cannot reach; crates.io's sparse index can be reached. A yank is how a
crate's authors withdraw a broken or unsound release, so a locked yanked version is the
part of an audit the registry itself can answer. Standard library only.
"""
import concurrent.futures
import json
import sys
import tomllib
import urllib.request

INDEX = "https://index.crates.io"


def index_path(name: str) -> str:
    n = name.lower()
    if len(n) <= 2:
        return f"{len(n)}/{n}"
    if len(n) == 3:
        return f"3/{n[0]}/{n}"
    return f"{n[:2]}/{n[2:4]}/{n}"


def check(pkg):
    name, version = pkg
    with urllib.request.urlopen(f"{INDEX}/{index_path(name)}", timeout=30) as r:
        for line in r.read().decode().splitlines():
            entry = json.loads(line)
            if entry["vers"] == version:
                return name, version, entry.get("yanked", False)
    return name, version, None


def main() -> int:
    with open("Cargo.lock", "rb") as f:
        lock = tomllib.load(f)
    pkgs = sorted({(p["name"], p["version"]) for p in lock["package"] if p.get("source", "").startswith("registry+")})
    bad = []
    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        for name, version, yanked in ex.map(check, pkgs):
            if yanked is None:
                bad.append(f"{name} {version}: not in the crates.io index")
            elif yanked:
                bad.append(f"{name} {version}: YANKED")
    for b in bad:
        print(b, file=sys.stderr)
    print(f"{len(pkgs)} locked crates checked against the crates.io index: {len(bad)} yanked or missing")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
