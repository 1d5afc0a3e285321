"""The server serves artifacts of other runtimes too: edgekd.load picks the runtime from artifact.json."""

from __future__ import annotations

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the apps extra is not installed: pip install 'edgekd[apps]'")
pytest.importorskip("fastapi", reason="the apps extra is not installed: pip install 'edgekd[apps]'")

from apps_helpers import LiveServer  # noqa: E402


@pytest.mark.parametrize("target, backend", [
    ("x86-cpu-openvino", "openvino"),
    pytest.param("android-executorch-xnnpack", "executorch", marks=pytest.mark.slow),  # ~100 s to lower here
])
def test_edge_server_serves_the_artifact_of_each_runtime(target, backend, digits, digits_artifact, digit_pngs,
                                                         tmp_path):
    from PIL import Image

    import edgekd
    from edge_server import ServerConfig, create_app
    from edgekd.backends.base import get_backend

    try:
        available, reason = get_backend(backend).is_available()
    except ImportError as exc:
        available, reason = False, str(exc)
    if not available:
        pytest.skip(f"{backend} cannot run here: {reason}")
    train, _, spec = digits
    artifact = edgekd.compile(digits_artifact.student, target, calib=train, out_dir=tmp_path, spec=spec)
    runner = edgekd.load(artifact)
    paths = digit_pngs[0][:8]
    expected = runner(np.concatenate([spec.from_image(Image.open(p)) for p in paths])).argmax(1)
    with LiveServer(create_app(artifact.folder, ServerConfig(max_batch=4))) as server:
        health = httpx.get(f"{server.url}/health").json()["artifact"]
        assert (health["target"], health["backend"]) == (target, backend)
        assert health["validated_accuracy"] is None  # edgekd.compile alone writes no report.json
        got = [httpx.post(f"{server.url}/predict", files={"image": (p.name, p.read_bytes(), "image/png")}
                          ).json()["predictions"][0][0]["index"] for p in paths]
    assert got == expected.tolist()
