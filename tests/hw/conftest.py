"""Fixtures for the latency tests."""

from __future__ import annotations

from pathlib import Path

import pytest
from hw_helpers import TINY


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny ResNet student exported to fp32 ONNX at 1×16×16."""
    from edgekd.hw.fit import compile_onnx

    _, path = compile_onnx(TINY, (1, 16, 16), "fp32", tmp_path_factory.mktemp("tiny"))
    return path
