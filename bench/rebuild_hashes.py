"""Compare the artifacts of several builds file by file (each artifact.json's recorded sha256).

    edgekd build --all --epochs 2 --out /tmp/a && edgekd build --all --epochs 2 --out /tmp/b
    python bench/rebuild_hashes.py /tmp/a /tmp/b [--json bench/results/rebuild_hashes.json]

Prints the number of artifact files per build and every file whose bytes differ; exit 1 on a difference.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def artifact_hashes(root: Path) -> dict[str, str]:
    """``<artifact folder>/<file>`` -> sha256 for every artifact under ``root`` (student and teacher)."""
    out = {}
    for meta in sorted(root.rglob("artifact.json")):
        folder = meta.parent.relative_to(root).as_posix()
        for name, sha in sorted(json.loads(meta.read_text()).get("sha256", {}).items()):
            out[f"{folder}/{name}"] = sha
    return out


def _revision(root: Path) -> str | None:
    """The edgekd commit a build ran from, as its manifest records it."""
    manifest = root / "manifest.json"
    return json.loads(manifest.read_text()).get("git", {}).get("revision") if manifest.exists() else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("builds", type=Path, nargs="+")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    hashes = {str(b): artifact_hashes(b) for b in args.builds}
    first = next(iter(hashes.values()))
    differ = sorted({k for h in hashes.values() for k in set(h) | set(first) if h.get(k) != first.get(k)})
    revisions = {str(b): _revision(b) for b in args.builds}
    for build, h in hashes.items():
        print(f"{build} (edgekd {revisions[build]}): {len(h)} artifact files")
    print(f"files that differ: {len(differ)}")
    for name in differ:
        print("  " + name + ": " + ", ".join(str(h.get(name, "missing"))[:12] for h in hashes.values()))
    if args.json:
        args.json.write_text(json.dumps({"builds": revisions, "files": len(first), "differ": differ}, indent=1) + "\n")
    sys.exit(1 if differ else 0)


if __name__ == "__main__":
    main()
