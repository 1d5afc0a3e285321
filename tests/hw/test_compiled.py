"""Compiled sample networks cached on disk: compiled once, reused by later runs, never half-written."""

from __future__ import annotations

import pytest

from edgekd.hw import compiled
from edgekd.hw.compiled import cached_compile
from edgekd.hw.sampling import sample_archs

ARCH = sample_archs(1, seed=5)[0]


def test_a_cached_network_is_compiled_once_and_runs(tmp_path):
    import onnxruntime as ort

    first = cached_compile("onnx", ARCH, (1, 12, 12), "int8", tmp_path)
    stamp = first.stat().st_mtime_ns
    again = cached_compile("onnx", ARCH, (1, 12, 12), "int8", tmp_path)
    assert again == first and again.stat().st_mtime_ns == stamp  # reused, not rebuilt
    assert cached_compile("onnx", ARCH, (1, 16, 16), "int8", tmp_path) != first  # another shape is another file
    session = ort.InferenceSession(str(first), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[1:] == [1, 12, 12]


def test_a_killed_compile_leaves_no_entry_and_is_compiled_next_time(tmp_path, monkeypatch):
    calls = []

    def failing(kind, arch, shape, precision, folder):
        calls.append(shape)
        (folder / "partial.onnx").write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(compiled, "compile_network", failing)
    with pytest.raises(KeyboardInterrupt):
        cached_compile("onnx", ARCH, (1, 12, 12), "fp32", tmp_path)
    assert not [p for p in tmp_path.iterdir() if not p.name.startswith(".staging-")]

    def working(kind, arch, shape, precision, folder):
        calls.append(shape)
        path = folder / "fp32.onnx"
        path.write_bytes(b"model")
        return path

    monkeypatch.setattr(compiled, "compile_network", working)
    path = cached_compile("onnx", ARCH, (1, 12, 12), "fp32", tmp_path)
    assert path.read_bytes() == b"model" and len(calls) == 2
    cached_compile("onnx", ARCH, (1, 12, 12), "fp32", tmp_path)
    assert len(calls) == 2


def test_without_a_cache_it_compiles_into_the_scratch_folder(tmp_path):
    path = cached_compile("onnx", ARCH, (1, 12, 12), "fp32", None, tmp_path)
    assert path.exists() and tmp_path in path.parents
    with pytest.raises(ValueError, match="kind"):
        cached_compile("tflite", ARCH, (1, 12, 12), "fp32", tmp_path)
