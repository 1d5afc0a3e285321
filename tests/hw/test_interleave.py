"""Interleaved profiling: models alternate round by round, each reports its repeatability."""

from __future__ import annotations

import itertools
import os

import numpy as np
import pytest

from edgekd.errors import ConfigError
from edgekd.hw.interleave import machine_factors, pinned_cpu, profile_many, time_interleaved


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


class FakeMachine:
    """A clock that only the models advance: each call costs its model's base time × the machine's state."""

    def __init__(self, calls_per_round: int, slowdown_per_round: float):
        self.now, self.calls = 0.0, 0
        self.calls_per_round, self.slowdown = calls_per_round, slowdown_per_round
        self.order: list[str] = []

    def model(self, name: str, base_ms: float, own_noise=None):
        def run():
            k = self.calls // self.calls_per_round  # the round this call falls in
            factor = (1 + self.slowdown * k) * (own_noise(k) if own_noise else 1.0)
            self.now += base_ms * factor / 1000.0
            self.calls += 1
            self.order.append(name)
        return run


def test_drift_that_hits_every_model_alike_is_divided_out(monkeypatch):
    import edgekd.hw.interleave as mod

    machine = FakeMachine(calls_per_round=4 * 4, slowdown_per_round=0.1)  # 4 models × 4 runs per round
    monkeypatch.setattr(mod.time, "perf_counter", lambda: machine.now)
    fns = {"A": machine.model("A", 1.0), "B": machine.model("B", 2.0), "C": machine.model("C", 3.0),
           "D": machine.model("D", 4.0, own_noise=lambda k: 1.3 if k == 2 else 1.0)}  # D alone slows in round 3
    results = time_interleaved(fns, rounds=5, runs=4, warmup=0)
    for name in "ABC":
        assert results[name].spread > 0.3 and not results[name].stable  # the machine drifted 40 %
        assert results[name].spread_net_of_drift == pytest.approx(0.0, abs=1e-9)  # none of it their own
    assert results["D"].spread_net_of_drift == pytest.approx(0.3, rel=1e-6)
    factors = machine_factors(results)
    assert factors[-1] / factors[0] == pytest.approx(1.4)


def test_spread_net_of_drift_needs_three_models_to_tell_drift_from_noise():
    results = time_interleaved({"A": lambda: None, "B": lambda: None}, rounds=3, runs=2, warmup=0)
    assert all(r.spread_net_of_drift is None for r in results.values())


def test_fast_models_get_longer_blocks_and_shuffled_rounds_keep_every_model_once(monkeypatch):
    import edgekd.hw.interleave as mod

    machine = FakeMachine(calls_per_round=10**9, slowdown_per_round=0.0)
    monkeypatch.setattr(mod.time, "perf_counter", lambda: machine.now)
    fns = {name: machine.model(name, 0.5 if name == "fast" else 5.0) for name in ("fast", "slow", "mid")}
    results = time_interleaved(fns, rounds=6, runs=4, warmup=2, min_block_ms=10.0, shuffle_seed=3)
    assert results["fast"].runs == 6 * 20  # 10 ms / 0.5 ms per call
    assert results["slow"].runs == results["mid"].runs == 6 * 4  # already longer than 10 ms
    timed = machine.order[3 * 2:]  # after the warmups
    blocks, i = [], 0
    while i < len(timed):
        blocks.append(timed[i])
        i += 20 if timed[i] == "fast" else 4
    rounds = [blocks[k:k + 3] for k in range(0, len(blocks), 3)]
    assert all(sorted(r) == ["fast", "mid", "slow"] for r in rounds) and len(rounds) == 6
    assert len({tuple(r) for r in rounds}) > 1  # the order changed between rounds


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
