"""Edge server faults: absurd JSON is a 4xx, every 500 is logged, idle/slow connections close, a connection cap."""

from __future__ import annotations

import json
import logging
import socket
import sys
import threading
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "apps" / "edge-server"))


@pytest.fixture()
def client(compiled):
    from edge_server import ServerConfig, create_app
    from fastapi.testclient import TestClient

    with TestClient(create_app(compiled[0].folder, ServerConfig()), raise_server_exceptions=False) as c:
        yield c


def _post_json(client, body: str | bytes):
    return client.post("/predict", content=body, headers={"content-type": "application/json"})


ABSURD_JSON = {
    "nested-100k-list": "[" * 100_000 + "]" * 100_000,
    "nested-100k-object": '{"a":' * 100_000 + "1" + "}" * 100_000,
    "tensor-nested-100k": '{"tensor": ' + "[" * 100_000 + "]" * 100_000 + "}",
    "int-10e400": '{"tensor": ' + str(10**400) + "}",
    "int-10e400-in-array": '{"tensor": [[[' + ",".join([str(10**400)] * 36) + "]]]}",
    "int-5000-digits": '{"tensor": ' + "9" * 5000 + "}",
    "float-1e400": '{"tensor": [[[' + ",".join(["1e400"] * 36) + "]]]}",
    "nan-literal": '{"tensor": [[[' + ",".join(["NaN"] * 36) + "]]]}",
    "strings": '{"tensor": [[["a","b","c","d","e","f"]]]}',
    "complex-object": '{"tensor": [[[{"re": 1, "im": 2}]]]}',
    "ragged": '{"tensor": [[[1, 2], [3]]]}',
    "bool": '{"tensor": true}',
    "null": "null",
    "extra-key": '{"tensor": [], "x": 1}',
    "empty-object": "{}",
    "huge-batch": '{"tensor": ' + json.dumps([[[[0.0] * 6] * 6]] * 65) + "}",
    "wrong-shape": '{"tensor": [[[0.0]]]}',
}


@pytest.mark.parametrize("case", sorted(ABSURD_JSON))
def test_server_answers_absurd_json_with_4xx_not_500(client, case):
    response = _post_json(client, ABSURD_JSON[case])
    assert 400 <= response.status_code < 500, response.text[:300]
    assert response.json()["error"]["status"] == response.status_code


@pytest.mark.parametrize("body", [b"\xff\xfe", b"{", b"", b"[1,", b"\x00" * 100])
def test_server_answers_invalid_json_with_400(client, body):
    assert _post_json(client, body).status_code == 400


def test_server_logs_every_500_with_traceback(compiled, caplog):
    from edge_server import ServerConfig, create_app
    from fastapi.testclient import TestClient

    app = create_app(compiled[0].folder, ServerConfig())

    def broken(*a, **k):
        raise RuntimeError("injected fault in top_k")

    app.state.service.top_k = broken
    body = json.dumps({"tensor": [[[0.0] * 6] * 6]})
    with caplog.at_level(logging.ERROR), TestClient(app, raise_server_exceptions=False) as c:
        response = _post_json(c, body)
        assert c.get("/health").status_code == 200  # and keeps serving
    assert response.status_code == 500
    logged = [r for r in caplog.records if r.levelno >= logging.ERROR and r.exc_info]
    assert logged and logged[0].exc_info[0] is RuntimeError


# live server: connection limits -----------------------------------------------------------------------------------

class _Live:
    def __init__(self, app, **limits):
        import uvicorn
        from edge_server.connections import uvicorn_limits

        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on", **uvicorn_limits(**limits))
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True)

    def __enter__(self):
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            assert time.monotonic() < deadline and self.thread.is_alive()
            time.sleep(0.02)
        return self

    def __exit__(self, *exc):
        self.server.should_exit = True
        self.thread.join(timeout=10)
        self.sock.close()

    def connect(self) -> socket.socket:
        s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return s

    def health(self) -> int:
        with self.connect() as s:
            s.sendall(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            data = b""
            while chunk := s.recv(65536):
                data += chunk
        return int(data.split(b" ", 2)[1]) if data else 0


def _closed_within(s: socket.socket, seconds: float) -> bool:
    s.settimeout(seconds)
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


@pytest.fixture()
def live(compiled):
    from edge_server import ServerConfig, create_app

    with _Live(create_app(compiled[0].folder, ServerConfig()), request_timeout=0.5, max_connections=20) as server:
        yield server


@pytest.mark.fault("hang")
@pytest.mark.parametrize("sent", [b"", b"GET /hea", b"GET /health HTTP/1.1\r\nhost: x\r\n",
                                  b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                                  b"content-length: 1000\r\n\r\n{\"tensor\": ["])
def test_server_closes_idle_or_slow_connection(live, sent):
    s = live.connect()
    s.sendall(sent)
    assert _closed_within(s, 3.0)
    s.close()


@pytest.mark.fault("hang")
def test_server_refuses_connections_beyond_cap_and_recovers(live):
    held = [live.connect() for _ in range(30)]
    time.sleep(0.2)
    refused = sum(_closed_within(s, 0.2) for s in held)
    assert refused >= 10  # 30 opened, cap 20
    time.sleep(1.0)  # the idle ones time out
    assert live.health() == 200
    for s in held:
        s.close()


@pytest.mark.fault("hang")
def test_server_health_answers_after_many_idle_sockets(live):
    held = [live.connect() for _ in range(100)]
    time.sleep(1.2)
    assert live.health() == 200
    for s in held:
        s.close()
