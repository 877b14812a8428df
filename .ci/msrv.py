#!/usr/bin/env python3
"""The workspace has one MSRV: every member inherits `[workspace.package] rust-version`, and no
package in Cargo.lock's resolution declares a higher one. (Only the current toolchain is
installed here; clippy's `incompatible_msrv` lint, on in CI, checks std APIs against the figure.)"""
import json
import subprocess
import sys

meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--format-version", "1", "--locked"], text=True))
members = set(meta["workspace_members"])


def version(v):
    return tuple(int(x) for x in v.split("."))[:2] if v else None


figures = {p["name"]: p["rust_version"] for p in meta["packages"] if p["id"] in members}
wanted = set(figures.values())
print("workspace rust-version:", figures)
if len(wanted) != 1 or None in wanted:
    sys.exit("the workspace members must all declare one rust-version (rust-version.workspace = true)")
msrv = version(wanted.pop())
above = sorted((p["name"], p["version"], p["rust_version"]) for p in meta["packages"]
               if p["id"] not in members and p["rust_version"] and version(p["rust_version"]) > msrv)
if above:
    sys.exit(f"dependencies that need a newer Rust than {'.'.join(map(str, msrv))}: {above}")
print("no dependency needs more than", ".".join(map(str, msrv)))
