"""Interleaved profiling: models alternate round by round, each reports its repeatability."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.hw.interleave import pinned_cpu, profile_many, time_interleaved


def test_time_interleaved_alternates_models_round_by_round():
    calls: list[str] = []
    fns = {name: (lambda n: (lambda: calls.append(n)))(name) for name in "ABC"}
    time_interleaved(fns, rounds=5, runs=2, warmup=0)
    blocks = [calls[i] for i in range(0, len(calls), 2)]  # first call of each block of 2 runs
    assert blocks == list("ABC") * 5
    assert len(calls) == 3 * 5 * 2


def test_time_interleaved_spread_is_the_spread_of_round_medians(monkeypatch):
    import edgekd.hw.interleave as mod

    ticks = itertools.count(0.0, 5e-4)  # the clock advances 0.5 ms per reading: every call takes 0.5 ms
    monkeypatch.setattr(mod.time, "perf_counter", lambda: next(ticks))
    result = time_interleaved({"A": lambda: None}, rounds=5, runs=4, warmup=0)["A"]
    assert result.median_ms == pytest.approx(0.5)
    assert result.spread == pytest.approx(0.0) and result.stable
    assert len(result.rounds) == 5 and result.runs == 20


def test_time_interleaved_marks_a_drifting_model_unstable():
    state = {"n": 0}

    def drifting():  # each round takes longer: a model timed during rising load
        state["n"] += 1
        end = __import__("time").perf_counter() + 2e-5 * (1 + state["n"] // 10)
        while __import__("time").perf_counter() < end:
            pass

    result = time_interleaved({"A": drifting}, rounds=5, runs=10, warmup=0)["A"]
    assert result.rounds[-1] > result.rounds[0]
    assert result.spread > 0.05 and not result.stable


def test_time_interleaved_refuses_fewer_than_two_rounds():
    with pytest.raises(ConfigError, match="rounds"):
        time_interleaved({"A": lambda: None}, rounds=1)


def test_profile_many_times_real_models_and_records_the_interleaving(tiny_onnx):
    results = profile_many({"a": (tiny_onnx, (1, 16, 16)), "b": (tiny_onnx, (1, 16, 16))}, rounds=5, runs=10)
    assert set(results) == {"a", "b"}
    for r in results.values():
        assert r.median_ms > 0 and len(r.rounds) == 5 and r.runs == 50
        assert r.env["interleaved_with"] == 1 and r.env["runtime"] == "onnxruntime"


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="CPU pinning needs Linux's sched_setaffinity")
def test_pinned_cpu_restores_the_affinity():
    before = os.sched_getaffinity(0)
    cpu = min(before)
    with pinned_cpu(cpu):
        assert os.sched_getaffinity(0) == {cpu}
    assert os.sched_getaffinity(0) == before
    with pytest.raises(ConfigError, match="not available"):
        with pinned_cpu(10_000):
            pass


def test_pinned_cpu_pins_threads_the_runtime_started_before_it():
    import threading

    cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if len(cpus) < 2:
        pytest.skip("needs Linux and two CPUs")
    started, finish = threading.Event(), threading.Event()
    worker = threading.Thread(target=lambda: (started.set(), finish.wait()))  # like OpenVINO's, made at load
    worker.start()
    started.wait()
    try:
        with pinned_cpu(cpus[-1]):
            assert os.sched_getaffinity(worker.native_id) == {cpus[-1]}
        assert os.sched_getaffinity(worker.native_id) == set(cpus)
    finally:
        finish.set()
        worker.join()
