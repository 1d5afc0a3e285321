"""Fixtures for the sample apps: a small real artifact, sample images and a live server on loopback.

The apps live in folders with dashes (apps/edge-server); their Python packages (edge_server,
edge_classify) are imported by putting those folders on sys.path, as each app's README says.
"""

from __future__ import annotations

import sys

import numpy as np
import pytest

from apps_helpers import ROOT

for app in ("edge-server", "edge-classify"):
    if str(ROOT / "apps" / app) not in sys.path:
        sys.path.insert(0, str(ROOT / "apps" / app))


@pytest.fixture(scope="session")
def digits_artifact(digits, digits_teacher, tmp_path_factory):
    """An ONNX Runtime artifact from ``edgekd.build``, with report.json (small ResNet, 3 epochs, ~95%): int8, or
    fp32 where the target's speed gate finds it clearly faster on this CPU."""
    import edgekd

    train, val, spec = digits
    out = tmp_path_factory.mktemp("apps-build")
    result = edgekd.build(digits_teacher, train=train, val=val, target="x86-cpu-onnxruntime", out_dir=out,
                          student={"name": "resnet", "depths": (1, 1), "widths": (16, 32)}, spec=spec, epochs=3,
                          lr=1e-2, progress=False, latency_runs=20)
    return result


@pytest.fixture(scope="session")
def digit_pngs(digits, tmp_path_factory):
    """Forty val digits written as 8×8 grayscale PNGs, with their labels."""
    from PIL import Image

    _, val, spec = digits
    folder = tmp_path_factory.mktemp("digit-pngs")
    x = val.x.numpy()[:40, 0]
    pixels = np.clip(np.round((x * spec.std[0] + spec.mean[0]) / spec.scale), 0, 255).astype(np.uint8)
    paths = []
    for i, img in enumerate(pixels):
        path = folder / f"digit_{i:03d}.png"
        Image.fromarray(img, "L").save(path)
        paths.append(path)
    return paths, val.y.numpy()[:40]


@pytest.fixture(scope="module")
def live_server(digits_artifact):
    """The edge server on loopback, micro-batching up to 8 requests for at most 2 ms."""
    from apps_helpers import LiveServer
    from edge_server import ServerConfig, create_app

    config = ServerConfig(max_body_bytes=256 * 1024, max_batch=8, max_wait_ms=2.0)
    with LiveServer(create_app(digits_artifact.artifact_path, config)) as server:
        yield server
