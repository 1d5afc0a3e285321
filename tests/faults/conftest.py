"""Fault-suite fixtures: a tiny model and data that compile in about a second, and a compiled artifact."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

# what a failing case of each module would be (bench/faults.py counts failures by it); a test's own
# ``@pytest.mark.fault(...)`` overrides its module's
KINDS = ("crash", "hang", "data loss", "security")
MODULE_KIND = {"test_paths": "data loss", "test_transaction": "data loss", "test_integrity": "security",
               "test_preflight": "crash", "test_inputs": "crash", "test_server": "crash"}


def pytest_configure(config):
    config.addinivalue_line("markers", "fault(kind): what a failure of this fault case would be: " + ", ".join(KINDS))


def fault_kind(item) -> str:
    marker = item.get_closest_marker("fault")
    if marker is not None:
        return marker.args[0]
    return MODULE_KIND.get(item.module.__name__.rsplit(".", 1)[-1], "crash")


def tiny_model(classes: int = 3) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(4, classes)).eval()


def tiny_data(n: int = 48, classes: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 1, 6, 6)).astype(np.float32)
    y = (np.arange(n) % classes).astype(np.int64)
    return x, y


@pytest.fixture()
def tiny():
    return tiny_model(), tiny_data()


@pytest.fixture()
def compiled(tmp_path):
    """A freshly compiled fp32-and-int8 ONNX Runtime artifact in its own output folder."""
    import edgekd

    out = tmp_path / "out"
    artifact = edgekd.compile(tiny_model(), "x86-cpu-onnxruntime", tiny_data(), out)
    return artifact, out
