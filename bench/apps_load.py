"""Load test of the edge server on loopback: throughput, p50/p99 latency, errors, server RSS.

Starts ``python -m edge_server ARTIFACT`` as a subprocess (batching off, then micro-batching up
to 8), sends PNG uploads from ``concurrency`` client threads (one keep-alive connection each),
and reads the server's resident memory (/proc/PID/status VmRSS) after a warm-up, after a first
pass of ``requests`` and after a second pass, so growth between passes shows a leak.

    nice -n 10 python bench/apps_load.py --artifact build/x86-cpu-onnxruntime [--requests 1000]

Writes bench/results/apps_load.json. Client and server share this machine's cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(artifact: str | Path, max_batch: int = 1, max_wait_ms: float = 2.0, timeout: float = 120.0):
    """The edge server in a subprocess on a free loopback port → (process, base URL)."""
    import httpx

    port = free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT / "apps" / "edge-server"),
                                                        os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "edge_server", str(artifact), "--port", str(port),
                             "--max-batch", str(max_batch), "--max-wait-ms", str(max_wait_ms)],
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"edge server exited: {proc.stderr.read().decode()[-2000:]}")
        try:
            if httpx.get(f"{url}/health", timeout=1.0).status_code == 200:
                return proc, url
        except httpx.TransportError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"edge server did not answer /health within {timeout:.0f} s")


def stop_server(proc) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError(f"no VmRSS for pid {pid}")


def sample_pngs(n: int = 64) -> list[bytes]:
    """PNG uploads: real MNIST digits of the embedded default dataset (28×28 gray)."""
    from PIL import Image

    from edgekd.data import load_dataset

    bundle = load_dataset("mnist5k")
    spec = bundle.spec
    x = bundle.train.x.numpy()[:n, 0]
    pixels = np.clip(np.round((x * spec.std[0] + spec.mean[0]) / spec.scale), 0, 255).astype(np.uint8)
    out = []
    for img in pixels:
        buf = io.BytesIO()
        Image.fromarray(img, "L").save(buf, "PNG")
        out.append(buf.getvalue())
    return out


def run_load(url: str, payloads: list[bytes], requests: int, concurrency: int) -> dict:
    """``requests`` POST /predict uploads from ``concurrency`` threads → throughput, latency, errors."""
    import httpx

    latencies = np.zeros(requests)
    statuses = np.zeros(requests, dtype=np.int64)
    counter, lock = iter(range(requests)), threading.Lock()

    def worker():
        with httpx.Client(base_url=url, timeout=60.0) as client:
            while True:
                with lock:
                    i = next(counter, None)
                if i is None:
                    return
                start = time.perf_counter()
                try:
                    r = client.post("/predict", files={"image": ("d.png", payloads[i % len(payloads)], "image/png")})
                    statuses[i] = r.status_code
                except httpx.HTTPError:
                    statuses[i] = -1
                latencies[i] = (time.perf_counter() - start) * 1e3

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    p50, p90, p99 = np.percentile(latencies, [50, 90, 99])
    return {"requests": requests, "concurrency": concurrency, "seconds": round(wall, 3),
            "throughput_rps": round(requests / wall, 1), "latency_ms": {"p50": round(float(p50), 2),
            "p90": round(float(p90), 2), "p99": round(float(p99), 2), "max": round(float(latencies.max()), 2)},
            "errors": int((statuses != 200).sum())}


def measure(artifact, payloads, requests: int, concurrency: int, max_batch: int, warmup: int = 200) -> dict:
    """One server configuration: warm-up, two timed passes, RSS after each."""
    import httpx

    proc, url = start_server(artifact, max_batch=max_batch)
    try:
        run_load(url, payloads, warmup, concurrency)
        rss = [rss_kib(proc.pid)]
        passes = []
        for _ in range(2):
            passes.append(run_load(url, payloads, requests, concurrency))
            rss.append(rss_kib(proc.pid))
        metrics = httpx.get(f"{url}/metrics").json()
        alive = httpx.get(f"{url}/health").status_code == 200
    finally:
        stop_server(proc)
    return {"max_batch": max_batch, "passes": passes, "rss_kib": {"after_warmup": rss[0], "after_pass1": rss[1],
            "after_pass2": rss[2]}, "rss_growth_kib": {"warmup_to_pass2": rss[2] - rss[0], "pass1_to_pass2":
            rss[2] - rss[1]}, "server_batch_sizes": metrics["batch_sizes"], "server_latency_ms": metrics["latency_ms"],
            "server_5xx": metrics["responses_5xx"], "alive_after": alive}


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--artifact", default="build/x86-cpu-onnxruntime", help="an artifact folder from `edgekd build`")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--out", type=Path, default=RESULTS / "apps_load.json")
    args = p.parse_args(argv)
    artifact = Path(args.artifact)
    if not (artifact / "artifact.json").exists():
        raise SystemExit(f"{artifact}: no artifact.json; run `edgekd build` first (it writes build/<target>/)")
    payloads = sample_pngs()
    result = {"artifact": str(artifact), "target": json.loads((artifact / "artifact.json").read_text())["target"],
              "cpus": os.cpu_count(), "load_average_at_start": os.getloadavg(),
              "note": "client and server share the machine's cores; loopback only",
              "runs": [measure(artifact, payloads, args.requests, args.concurrency, b) for b in (1, 8)]}
    for run in result["runs"]:
        for i, ps in enumerate(run["passes"], 1):
            print(f"max_batch={run['max_batch']} pass {i}: {ps['requests']} requests, concurrency "
                  f"{ps['concurrency']}: {ps['throughput_rps']} req/s, p50 {ps['latency_ms']['p50']} ms, "
                  f"p99 {ps['latency_ms']['p99']} ms, errors {ps['errors']}")
        print(f"max_batch={run['max_batch']} server RSS (KiB) {run['rss_kib']}, "
              f"batch sizes {run['server_batch_sizes']}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
