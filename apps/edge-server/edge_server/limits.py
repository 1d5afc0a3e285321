"""Request-size limit as a pure ASGI middleware: refuse before parsing, never buffer past the limit."""

from __future__ import annotations

import json
import time

DRAIN_CAP = 64 * 1024 * 1024  # an oversized body is read and dropped up to this, so the client sees the 413


class _TooLarge(Exception):
    def __init__(self, pending: bool):
        super().__init__()
        self.pending = pending  # more body is still on its way


class _Disconnected(Exception):
    pass


class BodyLimitMiddleware:
    """Answers 413 when Content-Length, or the bytes actually received, exceed ``max_bytes``.

    The body is read up to the limit and replayed to the app, so a client that lies about (or
    omits) Content-Length cannot make the server hold more than ``max_bytes``.
    """

    def __init__(self, app, max_bytes: int, on_reject=None):
        self.app, self.max_bytes, self.on_reject = app, max_bytes, on_reject

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        try:
            declared = dict(scope["headers"]).get(b"content-length")
            if declared is not None and int(declared) > self.max_bytes:
                raise _TooLarge(pending=True)
            body = await self._read(receive)
        except ValueError:
            return await _send_error(send, 400, "invalid_content_length", "Content-Length is not a number")
        except _Disconnected:
            return None
        except _TooLarge as exc:
            if exc.pending:
                await _drain(receive)
            await _send_error(send, 413, "body_too_large", f"the request body exceeds {self.max_bytes} bytes")
            if self.on_reject is not None:
                route = scope["path"] if scope["path"] == "/predict" else "other"
                self.on_reject(route, 413, (time.perf_counter() - start) * 1e3, False)
            return None
        sent = False

        async def replay():
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # after the body: waits for http.disconnect

        await self.app(scope, replay, send)

    async def _read(self, receive) -> bytes:
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise _Disconnected
            chunk = message.get("body", b"")
            size += len(chunk)
            more = message.get("more_body", False)
            if size > self.max_bytes:
                raise _TooLarge(pending=more)
            chunks.append(chunk)
            if not more:
                return b"".join(chunks)


async def _drain(receive) -> None:
    drained = 0
    while drained < DRAIN_CAP:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        drained += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


async def _send_error(send, status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"status": status, "code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
