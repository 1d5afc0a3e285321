"""The ASGI app: predict (multipart image, raw image body or tensor JSON), health, metrics, a web page."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse

from edge_server.batching import MicroBatcher
from edge_server.limits import BodyLimitMiddleware
from edge_server.metrics import Metrics
from edge_server.service import ImageLimits, ModelService, RequestError

log = logging.getLogger(__name__)
STATIC = Path(__file__).parent / "static"
IMAGE_TYPES = ("image/png", "image/jpeg", "image/bmp", "image/webp", "image/gif")
PREDICT_ROUTES = ("/predict",)


@dataclass(frozen=True)
class ServerConfig:
    """Limits and batching of one server.

    Attributes:
        max_body_bytes: requests with a larger body get 413 before they are parsed.
        image: largest accepted image, per side and in pixels (422 beyond).
        max_tensor_batch: samples one tensor request may carry.
        max_batch: samples per runtime call when micro-batching (1: off).
        max_wait_ms: how long the first request of a batch waits for others.
        top_k: classes returned per sample.
        threads: runtime threads.
        verify: refuse to start unless the artifact's files match artifact.json's sha256.
    """

    max_body_bytes: int = 4 * 1024 * 1024
    image: ImageLimits = field(default_factory=ImageLimits)
    max_tensor_batch: int = 64
    max_batch: int = 1
    max_wait_ms: float = 2.0
    top_k: int = 5
    threads: int = 1
    verify: bool = True


def create_app(artifact_path: str | Path, config: ServerConfig = ServerConfig()) -> FastAPI:
    """An app serving the artifact at ``artifact_path`` (folder, artifact.json or model file)."""
    service = ModelService(artifact_path, threads=config.threads, limits=config.image, verify=config.verify)
    metrics = Metrics()
    batcher = MicroBatcher(service.predict, config.max_batch, config.max_wait_ms, on_batch=metrics.record_batch)

    @asynccontextmanager
    async def lifespan(_app):
        await batcher.start()
        yield
        await batcher.stop()

    app = FastAPI(title="edgekd edge server", lifespan=lifespan)
    app.state.service, app.state.metrics, app.state.config = service, metrics, config
    _add_middleware(app, metrics, config)
    _add_routes(app, service, metrics, batcher, config)
    return app


def _error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"status": status, "code": code, "message": message}}, status_code=status)


def _add_middleware(app: FastAPI, metrics: Metrics, config: ServerConfig) -> None:
    @app.middleware("http")
    async def count(request: Request, call_next):
        start = time.perf_counter()
        try:
            response = await call_next(request)
        except Exception:  # noqa: BLE001 - count it; the server answers 500 and keeps serving
            log.exception("500 on %s %s", request.method, request.url.path)  # with the traceback
            response = _error(500, "internal", "internal error; see the server log")
        ms = (time.perf_counter() - start) * 1e3
        route = request.url.path if request.url.path in ("/", "/health", "/metrics", *PREDICT_ROUTES) else "other"
        metrics.record_request(route, response.status_code, ms, route in PREDICT_ROUTES)
        return response

    # outermost: oversized bodies are refused before any parsing (and still counted above)
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes, on_reject=metrics.record_request)

    @app.exception_handler(RequestError)
    async def refused(_request: Request, exc: RequestError):
        return _error(exc.status, exc.code, exc.message)


def _add_routes(app: FastAPI, service: ModelService, metrics: Metrics, batcher: MicroBatcher,
                config: ServerConfig) -> None:
    @app.get("/")
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/health")
    async def health():
        return {"status": "ok", "artifact": service.info}

    @app.get("/metrics")
    async def metrics_route():
        return metrics.snapshot()

    @app.post("/predict")
    async def predict(request: Request):
        start = time.perf_counter()
        x = await _read_input(request, service, config)
        logits = await batcher.submit(x)
        results = [service.top_k(row, config.top_k) for row in logits]
        return {"predictions": results, "latency_ms": round((time.perf_counter() - start) * 1e3, 3),
                "target": service.info["target"], "backend": service.info["backend"]}


async def _read_input(request: Request, service: ModelService, config: ServerConfig):
    """The request body → normalized input, or a RequestError (400/413/415/422) saying why."""
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype == "application/json":
        try:
            payload = json.loads(await request.body())
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise RequestError(400, "invalid_json", f"the body is not valid JSON: {exc}") from exc
        except (RecursionError, ValueError) as exc:  # nested too deep; an integer of over 4300 digits
            raise RequestError(422, "json_limits", f"the JSON body is nested too deep or holds too large a "
                               f"number: {type(exc).__name__}") from None
        return await asyncio.to_thread(service.tensor_from_json, payload, config.max_tensor_batch)
    if ctype == "multipart/form-data":
        data = await _multipart_image(request)
    elif ctype in IMAGE_TYPES:
        data = await request.body()
    else:
        raise RequestError(415, "unsupported_media_type",
                           f"content type {ctype or '(none)'} is not accepted; send multipart/form-data with an "
                           f"'image' file, a raw {'/'.join(t.split('/')[1] for t in IMAGE_TYPES)} body, or "
                           "application/json with a 'tensor'")
    return await asyncio.to_thread(service.image_tensor, data)


async def _multipart_image(request: Request) -> bytes:
    try:
        form = await request.form(max_files=1, max_fields=4)
    except Exception as exc:  # noqa: BLE001 - python-multipart and Starlette raise several types
        raise RequestError(400, "invalid_multipart", f"the multipart body cannot be parsed: {exc}") from exc
    upload = form.get("image")
    if upload is None or isinstance(upload, str):
        raise RequestError(400, "missing_image", "the multipart body has no file field named 'image'")
    part_type = (upload.content_type or "").lower()
    if part_type not in (*IMAGE_TYPES, "application/octet-stream", ""):
        raise RequestError(415, "unsupported_media_type", f"the 'image' part is {part_type}; send an image")
    try:
        return await upload.read()
    finally:
        await upload.close()
