"""DisWOT's score: sign convention, bounds, invariances, the one-class batch it refuses, what it prefers."""

from __future__ import annotations

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.models import TeacherCNN, create_student
from edgekd.search import search
from edgekd.search.scores import ScoreContext, get_score
from edgekd.search.scores.diswot import diswot_parts, relation_distance, semantic_distance

SHAPE = (1, 8, 8)


@pytest.fixture()
def batch(digits):
    train, _, _ = digits
    x, y = train.x[:64], train.y[:64]
    assert y.unique().numel() == 10  # the stratified split is shuffled: every class is in the first rows
    return x, y


@pytest.fixture()
def teacher():
    torch.manual_seed(0)
    return TeacherCNN(SHAPE, 10, width=8)


def test_diswot_distances_are_zero_for_identical_inputs_and_bounded_otherwise():
    torch.manual_seed(0)
    b, k = 32, 10
    f, g = torch.randn(b, 40), torch.randn(k, 16)
    assert relation_distance(f, f) == 0.0 and semantic_distance(g, g, "class") == 0.0
    for _ in range(5):  # any other pair: positive, and within the bounds of a mean over unit rows
        m_r = relation_distance(f, torch.randn(b, 24))
        m_s = semantic_distance(g, torch.randn(k, 24), "class")
        assert 1e-4 < m_r <= 4 / b and 1e-2 < m_s <= 4
    # so score = −(M_s + M_r) ≤ 0, with 0 (the best) only for a teacher-identical probe


def test_diswot_score_is_minus_the_distance_sum_and_never_positive(batch, teacher):
    ctx = ScoreContext(*batch, teacher, seed=0)
    for student in (create_student("resnet", SHAPE, 10), TeacherCNN(SHAPE, 10, width=8)):
        m_s, m_r = diswot_parts(ctx, student)
        assert m_s > 0 and m_r > 0
        score = get_score("diswot")(ctx, student)
        assert score == pytest.approx(-(m_s + m_r)) and score < 0


def test_search_with_diswot_keeps_the_candidate_with_the_smallest_distance(digits, teacher):
    train, _, _ = digits
    res = search(teacher, train, "x86-cpu-onnxruntime", space="resnet-compact", score="diswot", population=4,
                 iterations=4, seed=0, latency=lambda arch: 0.1, budget_ms=1.0, threads=1, progress=False)
    scores = [r["score"] for r in res.history if r["rejected"] is None]
    assert len(set(scores)) > 1 and all(s < 0 for s in scores)
    assert res.score == max(scores)  # higher = smaller teacher-student distance = chosen


@pytest.mark.parametrize("mode", ["class", "channel"])
def test_semantic_distance_is_invariant_to_relabelling_the_classes(mode):
    torch.manual_seed(0)
    g_t, g_s = torch.randn(10, 16), torch.randn(10, 16)
    perm = torch.randperm(10)
    base = semantic_distance(g_t, g_s, mode)
    assert semantic_distance(g_t[perm], g_s[perm], mode) == pytest.approx(base, rel=1e-9)


def test_relation_distance_is_invariant_to_the_order_of_the_batch():
    torch.manual_seed(0)
    f_t, f_s = torch.randn(32, 20), torch.randn(32, 12)
    perm = torch.randperm(32)
    assert relation_distance(f_t[perm], f_s[perm]) == pytest.approx(relation_distance(f_t, f_s), rel=1e-9)


def test_diswot_score_is_invariant_to_the_order_of_the_batch(batch, teacher):
    x, y = batch
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(1))
    student = create_student("resnet", SHAPE, 10)
    base = diswot_parts(ScoreContext(x, y, teacher, seed=0), student)
    shuffled = diswot_parts(ScoreContext(x[perm], y[perm], teacher, seed=0), student)
    assert shuffled == pytest.approx(base, rel=1e-4)


def test_diswot_score_ignores_the_weights_it_is_given_when_gaussian(batch, teacher):
    student = create_student("resnet", SHAPE, 10)
    base = get_score("diswot")(ScoreContext(*batch, teacher, seed=0), student)
    with torch.no_grad():  # both are re-initialized: their current weights must not matter
        for p in [*student.parameters(), *teacher.parameters()]:
            p.mul_(-3.0).add_(0.5)
    assert get_score("diswot")(ScoreContext(*batch, teacher, seed=0), student) == base
    assert get_score("diswot")(ScoreContext(*batch, teacher, seed=1), student) != base  # but the seed does


def test_diswot_refuses_a_batch_of_one_class(batch, teacher):
    x, y = batch
    ctx = ScoreContext(x[y == 3], y[y == 3], teacher, seed=0)
    for name in ("diswot", "diswot_semantic", "diswot_relation"):
        with pytest.raises(ConfigError, match="several classes.*all of class 3"):
            get_score(name)(ctx, create_student("resnet", SHAPE, 10))


def test_diswot_prefers_the_teachers_own_architecture_to_a_much_deeper_student(batch, teacher):
    # The method's premise: a student that resembles the teacher at initialization scores higher.
    # Averaged over seeds, since one seed's inits make M_s noisy (the same architecture re-drawn is
    # not at distance 0).
    same = TeacherCNN(SHAPE, 10, width=8)
    deep = create_student("resnet", SHAPE, 10, depths=(4, 4, 4), widths=(8, 16, 32))
    seeds = range(4)
    mean = {name: sum(get_score("diswot")(ScoreContext(*batch, teacher, seed=s), m) for s in seeds) / len(seeds)
            for name, m in (("same", same), ("deep", deep))}
    assert mean["same"] > mean["deep"] + 0.1
