"""A small version of bench/apps_load.py: a subprocess server under concurrent load, no errors, flat RSS."""

from __future__ import annotations

import importlib.util

import pytest

from apps_helpers import ROOT

pytest.importorskip("httpx", reason="the apps extra is not installed: pip install 'edgekd[apps]'")
pytest.importorskip("uvicorn", reason="the apps extra is not installed: pip install 'edgekd[apps]'")


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("apps_load", ROOT / "bench" / "apps_load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_edge_server_load_has_no_errors_and_no_memory_growth(bench, digits_artifact, digit_pngs):
    payloads = [p.read_bytes() for p in digit_pngs[0]]
    proc, url = bench.start_server(digits_artifact.artifact_path.parent, max_batch=8)
    try:
        bench.run_load(url, payloads, 100, 8)  # warm-up: allocator pools, thread pool, ORT arenas
        rss = [bench.rss_kib(proc.pid)]
        runs = []
        for _ in range(2):
            runs.append(bench.run_load(url, payloads, 300, 8))
            rss.append(bench.rss_kib(proc.pid))
    finally:
        bench.stop_server(proc)
    for run in runs:
        assert run["errors"] == 0 and run["throughput_rps"] > 0
        assert 0 < run["latency_ms"]["p50"] <= run["latency_ms"]["p99"]
    assert rss[2] - rss[1] < 16 * 1024, f"server RSS grew between passes: {rss} KiB"
