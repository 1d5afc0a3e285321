"""The search: determinism for a seed, constraints respected and counted, records, build integration."""

from __future__ import annotations

import json

import pytest
import torch

import edgekd
from edgekd.models import DEFAULT_STUDENT, TeacherCNN
from edgekd.schema.student import card_of
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
    assert card_of(model).arch == res.arch and count_flops(model, (1, 8, 8)) == res.flops


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
    assert srch["proposals"] >= 18 and 1 <= srch["scored"] <= 18  # population 6, 12 iterations
    # the teacher (TeacherCNN width 8) is small: a found student has fewer parameters; where its finalists'
    # artifacts were timed here and none beat the compiled teacher, the default is distilled and it says why
    if srch["outcome"] == "found":
        assert searched.report["student"]["params"] < searched.report["teacher"]["params"]
    else:
        assert srch["why"] and srch["fallback"] == "default-student"
        assert all(f["faster_than_teacher"] is False for f in srch["finalists"])
    assert (tmp_path / "a" / "_search" / "x86-cpu-onnxruntime" / "search.jsonl").exists()
    plain = edgekd.build(teacher, (train.x.numpy(), train.y.numpy()), (val.x.numpy(), val.y.numpy()),
                         out_dir=tmp_path / "b", search=False, **common)
    assert plain.report["search"] is None
    assert plain.report["student"]["arch"]["widths"] == DEFAULT_STUDENT["widths"]


def _teacher_record(ms, kind="predicted"):  # "measured" makes search_student time its finalists' artifacts
    return {"latency_p50_ms": ms, "latency_kind": kind}


def test_search_proposes_the_included_default_family_first_and_never_scores_below_it(teacher, digits):
    from edgekd.search.build import default_family

    family = default_family()
    res = _run(teacher, digits, include=family)
    first = res.history[: len(family)]
    assert [r["phase"] for r in first] == ["include"] * len(family)
    assert [r["arch"]["widths"] for r in first] == [a["widths"] for a in family]
    accepted = [r["score"] for r in first if r["rejected"] is None]
    assert accepted and res.score >= max(accepted)


def test_search_student_keeps_students_smaller_and_faster_than_the_teacher(teacher, digits, tmp_path):
    from edgekd.search.build import search_student
    from edgekd.targets import load_target

    train, _, _ = digits
    big = TeacherCNN((1, 8, 8), 10, width=32)
    limit = 0.05
    model = search_student(big, train, load_target("x86-cpu-onnxruntime"), out_dir=tmp_path,
                           teacher_latency=_teacher_record(limit))
    srch = card_of(model).search
    params = sum(p.numel() for p in big.parameters())
    assert srch["outcome"] == "found" and srch["constraints"]["latency_limit_ms"] == limit
    assert srch["constraints"]["max_params"] == params - 1
    log = [json.loads(line) for line in (tmp_path / "search.jsonl").read_text().splitlines()]
    accepted = [r for r in log if r["accepted"]]
    assert accepted and all(r["params"] < params and r["latency_ms"] <= limit for r in accepted)
    assert any(r["rejected"] and r["rejected"].startswith("params") for r in log)
    assert srch["finalists"][0]["arch"] == srch["arch"] and len(srch["finalists"]) <= 4
    assert [f["score"] for f in srch["finalists"]] == sorted((f["score"] for f in srch["finalists"]), reverse=True)


def test_search_student_says_why_when_no_student_beats_the_teacher(teacher, digits):
    from edgekd.search.build import search_student
    from edgekd.targets import load_target

    train, _, _ = digits
    model = search_student(teacher, train, load_target("x86-cpu-onnxruntime"), teacher_latency=_teacher_record(1e-6))
    srch = card_of(model).search
    assert srch["outcome"] == "none-fits" and srch["fallback"] == "default-student" and srch["why"]
    assert card_of(model).arch["widths"] == DEFAULT_STUDENT["widths"]
    assert srch["constraints"]["latency_limit_ms"] == 1e-6


def test_search_student_is_deterministic_for_a_seed(teacher, digits):
    from edgekd.search.build import search_student
    from edgekd.targets import load_target

    train, _, _ = digits
    big = TeacherCNN((1, 8, 8), 10, width=32)
    target = load_target("x86-cpu-onnxruntime")  # its fitted latency profile: deterministic predictions
    a, b = (card_of(search_student(big, train, target, seed=3, teacher_latency=_teacher_record(0.05))).search
            for _ in range(2))
    assert a["latency_kind"] == "profile"
    assert (a["arch"], a["score"], a["finalists"]) == (b["arch"], b["score"], b["finalists"])


def _finalist_times(monkeypatch, times):
    """Stand-in for compiling and timing each finalist: the i-th one measured gets times[i] ms."""
    calls = []

    def fake(model, target, train, folder, runs=100):
        calls.append(card_of(model).arch)
        return times[len(calls) - 1]

    monkeypatch.setattr("edgekd.search.verify.measure_artifact_ms", fake)
    return calls


def _needs_device_here():
    from edgekd.capability import capability
    from edgekd.targets import load_target

    if not capability(load_target("x86-cpu-onnxruntime")).latency_here:
        pytest.skip("this machine is not the x86 target's device")


def test_search_student_takes_the_best_finalist_measured_faster_than_the_compiled_teacher(teacher, digits,
                                                                                          monkeypatch):
    from edgekd.search.build import search_student
    from edgekd.targets import load_target

    _needs_device_here()
    train, _, _ = digits
    big = TeacherCNN((1, 8, 8), 10, width=32)
    calls = _finalist_times(monkeypatch, [0.2, 0.04, 0.01, 0.3])  # the best-scoring one is slower than 0.05
    model = search_student(big, train, load_target("x86-cpu-onnxruntime"), teacher_latency=_teacher_record(0.05,
                                                                                                    "measured"))
    srch = card_of(model).search
    fin = srch["finalists"]
    assert len(calls) == len(fin) >= 2 and [f["measured_artifact_ms"] for f in fin] == [0.2, 0.04, 0.01, 0.3][:len(fin)]
    assert srch["outcome"] == "found" and srch["arch"] == fin[1]["arch"] == card_of(model).arch
    assert [f["faster_than_teacher"] for f in fin[:2]] == [False, True]


def test_search_student_falls_back_when_no_finalist_is_measured_faster(teacher, digits, monkeypatch):
    from edgekd.search.build import search_student
    from edgekd.targets import load_target

    _needs_device_here()
    train, _, _ = digits
    big = TeacherCNN((1, 8, 8), 10, width=32)
    _finalist_times(monkeypatch, [0.2] * 4)
    model = search_student(big, train, load_target("x86-cpu-onnxruntime"), teacher_latency=_teacher_record(0.05,
                                                                                                    "measured"))
    srch = card_of(model).search
    assert srch["outcome"] == "none-fits" and srch["fallback"] == "default-student"
    assert card_of(model).arch["widths"] == DEFAULT_STUDENT["widths"]
    assert all(f["faster_than_teacher"] is False for f in srch["finalists"])


def test_default_score_takes_the_most_multiply_accumulates_that_meet_the_constraints(teacher, digits):
    train, _, _ = digits
    res = search(teacher, train, "x86-cpu-onnxruntime", space="resnet-compact", population=6, iterations=10, seed=0,
                 latency=_flops_ms, budget_ms=1.0, threads=1, progress=False)
    accepted = [r for r in res.history if r["rejected"] is None]
    assert res.score_name == "flops"
    assert res.flops == max(r["flops"] for r in accepted) and res.predicted_latency_ms <= 1.0


def test_default_score_ranked_the_stored_search_ground_truth_best():
    """The shipped default is the single score with the highest Kendall tau on the committed ground truth
    (bench/search_groundtruth.py --rescore): rerunning it with another winner must move the default."""
    from pathlib import Path

    from edgekd.search.scores import DEFAULT_SCORE

    stored = Path(__file__).resolve().parents[2] / "bench" / "results" / "search_groundtruth.json"
    taus = {k: v["mean"] for k, v in json.loads(stored.read_text())["rescore"]["kendall_tau"].items()}
    assert taus[DEFAULT_SCORE] >= max(taus.values()) - 1e-9
    assert taus[DEFAULT_SCORE] > taus["diswot"]
