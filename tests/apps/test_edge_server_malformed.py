"""100 malformed requests: each gets the 4xx it deserves with a clear message; the server keeps serving."""

from __future__ import annotations

import json

import numpy as np
import pytest

httpx = pytest.importorskip("httpx", reason="the apps extra is not installed: pip install 'edgekd[apps]'")
pytest.importorskip("fastapi", reason="the apps extra is not installed: pip install 'edgekd[apps]'")

from apps_helpers import png_bytes  # noqa: E402

LIMIT = 256 * 1024  # the live_server fixture's max_body_bytes


def _malformed_cases(good_png: bytes) -> list[tuple[str, dict, int, str]]:
    """(name, httpx request kwargs, expected status, expected error code) — 100 of them."""
    rng = np.random.default_rng(0)
    big = rng.integers(0, 256, LIMIT + 1000, dtype=np.uint8).tobytes()
    wide = png_bytes(np.zeros((2, 4097), np.uint8), "L")  # a few hundred bytes, too many pixels per side
    tiff = png_bytes(np.zeros((8, 8), np.uint8), "L", fmt="TIFF")
    gray = lambda shape: np.zeros(shape, np.float32).tolist()  # noqa: E731

    def chunks():  # no Content-Length: the limit must hold on the bytes actually received
        for i in range(0, len(big), 16384):
            yield big[i : i + 16384]

    base = [
        ("oversized multipart", {"files": {"image": ("x.png", big, "image/png")}}, 413, "body_too_large"),
        ("oversized raw body", {"content": big, "headers": {"content-type": "image/png"}}, 413, "body_too_large"),
        ("oversized chunked", {"content": chunks(), "headers": {"content-type": "image/png"}}, 413, "body_too_large"),
        ("text/plain", {"content": b"hello", "headers": {"content-type": "text/plain"}}, 415,
         "unsupported_media_type"),
        ("xml", {"content": b"<a/>", "headers": {"content-type": "application/xml"}}, 415, "unsupported_media_type"),
        ("no content type", {"content": good_png, "headers": {"content-type": ""}}, 415, "unsupported_media_type"),
        ("text part", {"files": {"image": ("x.txt", b"hi", "text/plain")}}, 415, "unsupported_media_type"),
        ("tiff image", {"content": tiff, "headers": {"content-type": "image/png"}}, 415, "unsupported_image_format"),
        ("truncated png", {"content": good_png[: len(good_png) // 2], "headers": {"content-type": "image/png"}},
         400, "corrupt_image"),
        ("truncated png part", {"files": {"image": ("x.png", good_png[:-20], "image/png")}}, 400, "corrupt_image"),
        ("garbage png", {"content": bytes(rng.integers(0, 256, 500, dtype=np.uint8)),
                         "headers": {"content-type": "image/png"}}, 400, "undecodable_image"),
        ("empty image", {"content": b"", "headers": {"content-type": "image/jpeg"}}, 400, "empty_image"),
        ("image too wide", {"files": {"image": ("w.png", wide, "image/png")}}, 422, "image_dimensions"),
        ("missing image field", {"files": {"photo": ("x.png", good_png, "image/png")}}, 400, "missing_image"),
        ("multipart without boundary", {"content": b"--x\r\n", "headers": {"content-type": "multipart/form-data"}},
         400, "invalid_multipart"),
        ("invalid json", {"content": b"{tensor: [", "headers": {"content-type": "application/json"}}, 400,
         "invalid_json"),
        ("tensor wrong shape", {"json": {"tensor": gray((1, 7, 8))}}, 422, "tensor_shape"),
        ("tensor wrong channels", {"json": {"tensor": gray((2, 3, 8, 8))}}, 422, "tensor_shape"),
        ("tensor flat", {"json": {"tensor": [0.0] * 64}}, 422, "tensor_shape"),
        ("tensor ragged", {"json": {"tensor": [[[0.0] * 8] * 7 + [[0.0] * 5]]}}, 422, "tensor_values"),
        ("tensor strings", {"json": {"tensor": [[["a"] * 8] * 8]}}, 422, "tensor_values"),
        ("tensor NaN", {"content": json.dumps({"tensor": np.full((1, 8, 8), np.nan).tolist()}).encode(),
                        "headers": {"content-type": "application/json"}}, 422, "tensor_values"),
        ("tensor batch too big", {"json": {"tensor": gray((65, 1, 8, 8))}}, 422, "tensor_batch"),
        ("json extra keys", {"json": {"tensor": gray((1, 8, 8)), "extra": 1}}, 422, "tensor_payload"),
        ("json not an object", {"json": [1, 2, 3]}, 422, "tensor_payload"),
    ]
    return [base[i % len(base)] for i in range(100)]


def test_edge_server_malformed_requests_get_clear_4xx_and_server_keeps_serving(live_server, digit_pngs):
    good = digit_pngs[0][0].read_bytes()
    cases = _malformed_cases(good)
    assert len(cases) == 100
    with httpx.Client(base_url=live_server.url, timeout=30) as client:
        before = client.get("/metrics").json()
        for i, (name, kwargs, status, code) in enumerate(cases):
            if name == "oversized chunked":  # a generator is consumed once: make a fresh one each time
                kwargs = _malformed_cases(good)[i][1]
            r = client.post("/predict", **kwargs)
            assert r.status_code == status, f"{name}: {r.status_code} {r.text}"
            error = r.json()["error"]
            assert error["code"] == code and error["status"] == status, name
            assert len(error["message"]) > 10, name  # says what was wrong, not only a status
            if i % 10 == 9:  # still serving good requests in between
                ok = client.post("/predict", files={"image": ("ok.png", good, "image/png")})
                assert ok.status_code == 200, f"after {name}: {ok.text}"
        after = client.get("/metrics").json()
        assert client.get("/health").json()["status"] == "ok"
    assert after["responses_5xx"] == before["responses_5xx"] == 0
    assert after["responses_4xx"] - before["responses_4xx"] == 100  # every refusal was counted
