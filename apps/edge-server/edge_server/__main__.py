"""``python -m edge_server ARTIFACT [--host H] [--port P] [--max-batch N] [--max-wait-ms MS]``."""

from __future__ import annotations

import argparse
import logging

from edgekd.errors import EdgeKDError
from edge_server.app import ServerConfig, create_app
from edge_server.connections import uvicorn_limits
from edge_server.service import ImageLimits


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="edge_server", description="Serve an edgekd artifact over HTTP.")
    p.add_argument("artifact", help="artifact folder (e.g. build/x86-cpu-onnxruntime), artifact.json or model file")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--threads", type=int, default=1, help="runtime threads")
    p.add_argument("--max-batch", type=int, default=1, help="micro-batch size (1: no batching)")
    p.add_argument("--max-wait-ms", type=float, default=2.0, help="longest wait for a batch to fill")
    p.add_argument("--max-body-bytes", type=int, default=ServerConfig.max_body_bytes)
    p.add_argument("--max-image-side", type=int, default=ImageLimits.max_side)
    p.add_argument("--no-verify", action="store_true", help="serve even if the artifact's files do not match "
                   "artifact.json's sha256 (logged; /health says verified: false)")
    p.add_argument("--request-timeout", type=float, default=10.0, help="seconds to receive a whole request; "
                   "idle or slow connections are closed after it")
    p.add_argument("--max-connections", type=int, default=256, help="open connections beyond this are refused")
    p.add_argument("--keep-alive", type=float, default=5.0, help="seconds an idle kept-alive connection stays open")
    p.add_argument("--log-level", default="warning")
    return p.parse_args(argv)


def main(argv=None) -> None:
    import uvicorn

    args = parse_args(argv)
    logging.basicConfig(level=args.log_level.upper())
    config = ServerConfig(max_body_bytes=args.max_body_bytes, max_batch=args.max_batch, max_wait_ms=args.max_wait_ms,
                          threads=args.threads, image=ImageLimits(max_side=args.max_image_side),
                          verify=not args.no_verify)
    try:
        app = create_app(args.artifact, config)
    except EdgeKDError as exc:  # not found, tampered, labels that disagree: one line, exit 2
        raise SystemExit(f"edge_server: error: {exc}") from None
    uvicorn.run(app, host=args.host, port=args.port, log_level=args.log_level, access_log=False,
                **uvicorn_limits(args.request_timeout, args.max_connections, args.keep_alive))


if __name__ == "__main__":
    main()
