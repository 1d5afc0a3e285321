"""The edge server over real loopback HTTP: predictions, health, metrics, micro-batching."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the apps extra is not installed: pip install 'edgekd[apps]'")
pytest.importorskip("fastapi", reason="the apps extra is not installed: pip install 'edgekd[apps]'")


@pytest.fixture(scope="module")
def reference(digits_artifact, digit_pngs):
    """The artifact's own top-1 on each PNG, computed in-process with edgekd.load."""
    from PIL import Image

    import edgekd
    from edgekd.data.spec import PreprocessSpec

    runner = edgekd.load(digits_artifact.artifact_path)
    spec = PreprocessSpec.load(digits_artifact.artifact_path.parent / "preprocess.json")
    paths, _ = digit_pngs
    x = np.concatenate([spec.from_image(Image.open(p)) for p in paths])
    return runner(x).argmax(1)


def test_edge_server_health_reports_target_and_validated_accuracy(live_server, digits_artifact):
    body = httpx.get(f"{live_server.url}/health").json()
    art = body["artifact"]
    assert body["status"] == "ok"
    assert art["target"] == "x86-cpu-onnxruntime" and art["backend"] == "onnxruntime"
    shipped = digits_artifact.report["artifact"]["details"]["speed_gate"]["shipped"]  # int8 unless fp32 is faster
    assert art["precision"] == shipped and art["input_shape"] == [1, 8, 8]
    assert art["validated_accuracy"] == pytest.approx(digits_artifact.report["artifact"]["accuracy"])


def test_edge_server_predict_image_matches_the_artifact_run_in_process(live_server, digit_pngs, reference):
    paths, labels = digit_pngs
    top1 = []
    with httpx.Client(base_url=live_server.url) as client:
        for path in paths:
            r = client.post("/predict", files={"image": (path.name, path.read_bytes(), "image/png")})
            assert r.status_code == 200, r.text
            top5 = r.json()["predictions"][0]
            probs = [p["probability"] for p in top5]
            assert len(top5) == 5 and probs == sorted(probs, reverse=True) and sum(probs) <= 1 + 1e-9
            top1.append(top5[0]["index"])
    assert np.array_equal(top1, reference)  # same runtime, same preprocessing: identical answers
    assert (np.asarray(top1) == labels).mean() >= 0.8  # and they are mostly right (3-epoch int8 student)


def test_edge_server_predict_raw_image_body(live_server, digit_pngs, reference):
    path = digit_pngs[0][3]
    r = httpx.post(f"{live_server.url}/predict", content=path.read_bytes(), headers={"content-type": "image/png"})
    assert r.status_code == 200
    assert r.json()["predictions"][0][0]["index"] == reference[3]


def test_edge_server_predict_tensor_json_matches_runtime(live_server, digits, digits_artifact):
    import edgekd

    _, val, _ = digits
    x = val.x.numpy()[:6]
    expected = edgekd.load(digits_artifact.artifact_path)(x).argmax(1)
    r = httpx.post(f"{live_server.url}/predict", json={"tensor": x.tolist()})
    assert r.status_code == 200
    assert [p[0]["index"] for p in r.json()["predictions"]] == expected.tolist()
    single = httpx.post(f"{live_server.url}/predict", json={"tensor": x[0].tolist()}).json()
    assert len(single["predictions"]) == 1 and single["predictions"][0][0]["index"] == expected[0]


def test_edge_server_metrics_count_requests_and_micro_batch(live_server, digit_pngs):
    paths, _ = digit_pngs
    before = httpx.get(f"{live_server.url}/metrics").json()

    def send(path):
        with httpx.Client(base_url=live_server.url) as client:
            return [client.post("/predict", files={"image": ("d.png", path.read_bytes(), "image/png")}).status_code
                    for _ in range(4)]

    with ThreadPoolExecutor(8) as pool:
        statuses = [s for batch in pool.map(send, paths[:16]) for s in batch]
    after = httpx.get(f"{live_server.url}/metrics").json()
    assert statuses == [200] * 64
    predict_200 = after["requests_by_route"]["/predict"]["200"] - before["requests_by_route"].get(
        "/predict", {}).get("200", 0)
    assert predict_200 == 64 and after["responses_5xx"] == 0
    assert after["predictions"] - before["predictions"] == 64
    lat = after["latency_ms"]
    assert lat["count"] >= 64 and 0 < lat["p50"] <= lat["p90"] <= lat["p99"] <= lat["max"]
    assert max(int(k) for k in after["batch_sizes"]) > 1  # 8 concurrent clients shared runtime calls
