"""The search: determinism for a seed, constraints respected and counted, records, build integration."""

from __future__ import annotations

import json

import pytest
import torch

import edgekd
from edgekd.models import DEFAULT_STUDENT, TeacherCNN
from edgekd.search import search
from edgekd.search.scores import count_flops


@pytest.fixture(scope="module")
def teacher():
    torch.manual_seed(0)
    return TeacherCNN((1, 8, 8), 10, width=8).eval()


def _flops_ms(arch):  # a deterministic stand-in latency model: 1 ms per 2 M multiply-accumulates
    return count_flops(edgekd.create_student(arch["name"], (1, 8, 8), 10,
                                             **{k: v for k, v in arch.items() if k != "name"}), (1, 8, 8)) / 2e6


def _run(teacher, digits, **kw):
    train, _, _ = digits
    args = dict(space="resnet-compact", score="diswot", population=6, iterations=10, seed=0, latency=_flops_ms,
                budget_ms=1.0, threads=1, progress=False)
    return search(teacher, train, "x86-cpu-onnxruntime", **{**args, **kw})


def test_search_is_deterministic_for_a_seed(teacher, digits):
    a, b = _run(teacher, digits), _run(teacher, digits)
    assert [r["arch"] for r in a.history] == [r["arch"] for r in b.history]
    assert (a.arch, a.score) == (b.arch, b.score)
    c = _run(teacher, digits, seed=1)
    assert [r["arch"] for r in c.history] != [r["arch"] for r in a.history]


def test_search_respects_and_counts_constraints(teacher, digits, tmp_path):
    max_flops = 1_200_000
    res = _run(teacher, digits, max_flops=max_flops, out_dir=tmp_path)
    accepted = [r for r in res.history if r["rejected"] is None]
    rejected = [r for r in res.history if r["rejected"] is not None]
    assert res.rejected == len(rejected) > 0
    assert all(r["latency_ms"] <= 1.0 and r["flops"] <= max_flops for r in accepted)
    assert all(r["score"] is None for r in rejected)
    assert res.predicted_latency_ms <= 1.0 and res.flops <= max_flops
    assert res.score == max(r["score"] for r in accepted)
    lines = (tmp_path / "search.jsonl").read_text().splitlines()
    assert len(lines) == len(res.history) and json.loads(lines[0])["arch"]["name"] == "resnet"
    assert (tmp_path / "search.png").stat().st_size > 1000
    model = res.build()
    assert model.edgekd_arch == res.arch and count_flops(model, (1, 8, 8)) == res.flops


def test_search_with_measured_latency_keeps_the_chosen_student_in_budget(teacher, digits):
    train, _, _ = digits
    res = edgekd.search(teacher, train, "x86-cpu-onnxruntime", space="resnet-compact", budget_ms=0.5,
                        population=3, iterations=3, threads=1, progress=False)
    assert res.latency_kind == "measured-onnxruntime-fp32" or res.latency_kind == "profile"
    assert 0 < res.predicted_latency_ms <= 0.5


def test_build_uses_search_when_no_student(teacher, digits, tmp_path):
    train, val, spec = digits
    common = dict(target="x86-cpu-onnxruntime", spec=spec, epochs=1, progress=False, latency_runs=5)
    searched = edgekd.build(teacher, (train.x.numpy(), train.y.numpy()), (val.x.numpy(), val.y.numpy()),
                            out_dir=tmp_path / "a", **common)
    srch = searched.report["search"]
    assert srch is not None and srch["space"] == "resnet-compact"
    assert searched.report["student"]["arch"] == srch["arch"]
    assert srch["proposals"] >= 18 and 6 <= srch["scored"] <= 18  # population 6, 12 iterations
    assert (tmp_path / "a" / "_search" / "x86-cpu-onnxruntime" / "search.jsonl").exists()
    plain = edgekd.build(teacher, (train.x.numpy(), train.y.numpy()), (val.x.numpy(), val.y.numpy()),
                         out_dir=tmp_path / "b", search=False, **common)
    assert plain.report["search"] is None
    assert plain.report["student"]["arch"]["widths"] == DEFAULT_STUDENT["widths"]
