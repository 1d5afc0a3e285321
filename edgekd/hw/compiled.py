"""Compiled sample networks kept on disk, so that timing them again (or from another process) compiles nothing.

An ExecuTorch ``.pte`` takes about 30 s to lower here and an int8 ONNX graph 1-3 s, while timing one
takes a second: a latency fit or benchmark over 100+ networks is mostly compiling. With a cache
folder, two processes can compile disjoint shares of the networks on two cores beforehand
(``bench/latency.py --compile-only``), and the timing, which must run alone, only loads them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

KINDS = ("onnx", "pte")  # the file a runtime runs: ONNX (ONNX Runtime, OpenVINO) or an XNNPACK .pte (ExecuTorch)


def file_kind(runtime: str) -> str:
    return "pte" if runtime == "executorch" else "onnx"


def compile_network(kind: str, arch: dict, shape: tuple, precision: str, folder: Path) -> Path:
    """``arch`` with random weights (latency does not depend on them), compiled as its target compiles it."""
    if kind == "pte":
        from edgekd.hw.fit_whole import compile_pte  # heavy SDKs: imported on first use

        return compile_pte(arch, shape, precision, folder)
    from edgekd.hw.fit import compile_onnx

    return compile_onnx(arch, shape, precision, folder)[1]


def cached_compile(kind: str, arch: dict, shape: tuple, precision: str, cache: Path | None,
                   scratch: Path | None = None) -> Path:
    """The compiled file of ``arch`` at ``shape``: from ``cache`` (a folder per network, named by its
    hash) when there, else compiled into it; without a cache, compiled into ``scratch``."""
    if kind not in KINDS:
        raise ValueError(f"unknown compiled kind {kind!r}; one of {KINDS}")
    if cache is None:
        if scratch is None:
            raise ValueError("cached_compile: give a cache or a scratch folder")
        folder = Path(tempfile.mkdtemp(dir=scratch))
        return compile_network(kind, arch, tuple(shape), precision, folder)
    key = hashlib.sha256(json.dumps([kind, arch, list(shape), precision], sort_keys=True).encode()).hexdigest()[:20]
    folder = Path(cache) / f"{kind}-{precision}-{key}"
    done = folder / "compiled.json"
    if done.exists():
        return folder / json.loads(done.read_text())["file"]
    Path(cache).mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=cache, prefix=".staging-"))
    path = compile_network(kind, arch, tuple(shape), precision, staging)
    (staging / "compiled.json").write_text(json.dumps({"file": path.name, "arch": arch, "input_shape": list(shape),
                                                       "precision": precision}))
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(staging, folder)  # a killed compile leaves a staging folder, never a half-written entry
    return folder / path.name
