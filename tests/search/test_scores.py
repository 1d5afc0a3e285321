"""DisWOT and baseline scores: invariances, determinism, no gradient leaks, registry behaviour."""

from __future__ import annotations

import math

import pytest
import torch

from edgekd.errors import ConfigError
from edgekd.models import TeacherCNN, create_student
from edgekd.search.scores import ScoreContext, get_score, list_scores
from edgekd.search.scores.diswot import diswot_parts, relation_distance, semantic_distance


@pytest.fixture()
def ctx(digits):
    train, _, _ = digits
    torch.manual_seed(0)
    return ScoreContext(train.x[:64], train.y[:64], TeacherCNN((1, 8, 8), 10, width=8), seed=0)


def test_relation_distance_invariant_to_scale_and_channel_permutation():
    torch.manual_seed(0)
    f_t, f_s = torch.randn(32, 20), torch.randn(32, 12)
    base = relation_distance(f_t, f_s)
    assert relation_distance(f_t, f_s * 7.5) == pytest.approx(base, rel=1e-6)  # global scale
    assert relation_distance(f_t, f_s[:, torch.randperm(12)]) == pytest.approx(base, rel=1e-6)
    assert relation_distance(f_t, f_t.clone()) == pytest.approx(0.0, abs=1e-12)
    assert base > 1e-3


def test_semantic_distance_channel_mode_is_zero_for_equal_and_positive_otherwise():
    torch.manual_seed(0)
    g = torch.randn(10, 16)
    assert semantic_distance(g, g * 3.0, "channel") == pytest.approx(0.0, abs=1e-12)  # scale-free
    assert semantic_distance(g, torch.randn(10, 16), "channel") > 0.1


def test_semantic_distance_class_mode_invariant_to_channel_permutation_and_width():
    torch.manual_seed(0)
    g_t, g_s = torch.randn(10, 16), torch.randn(10, 24)
    base = semantic_distance(g_t, g_s)  # auto: widths differ, so class mode
    assert base == pytest.approx(semantic_distance(g_t, g_s, "class"))
    assert semantic_distance(g_t, g_s[:, torch.randperm(24)]) == pytest.approx(base, rel=1e-9)
    q, _ = torch.linalg.qr(torch.randn(24, 24, dtype=torch.float64))  # any rotation of the channel basis
    assert semantic_distance(g_t, (g_s.double() @ q).float()) == pytest.approx(base, rel=1e-4)
    padded = torch.cat([g_t, torch.zeros(10, 8)], 1)  # same class relations, other width
    assert semantic_distance(g_t, padded) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ConfigError, match="equal classifier widths"):
        semantic_distance(g_t, g_s, "channel")


def test_diswot_is_deterministic_and_leaves_no_gradients(ctx):
    student = create_student("resnet", (1, 8, 8), 10)
    first = get_score("diswot")(ctx, student)
    second = get_score("diswot")(ctx, student)  # nothing accumulates between candidates
    assert first == second
    assert all(p.grad is None for p in ctx.teacher.parameters())
    assert all(p.grad is None for p in student.parameters())
    m_s, m_r = diswot_parts(ctx, student)
    assert first == pytest.approx(-(m_s + m_r))
    assert get_score("diswot_semantic")(ctx, student) == pytest.approx(-m_s)
    assert get_score("diswot_relation")(ctx, student) == pytest.approx(-m_r)


def test_diswot_trained_teacher_option_differs_from_gaussian(ctx):
    digits_teacher = ctx.teacher  # "trained" means: probe the teacher's own weights, as they are
    student = create_student("resnet", (1, 8, 8), 10)
    gaussian = ScoreContext(ctx.x, ctx.y, digits_teacher, "gaussian")
    trained = ScoreContext(ctx.x, ctx.y, digits_teacher, "trained")
    assert get_score("diswot")(gaussian, student) != get_score("diswot")(trained, student)
    before = {k: v.clone() for k, v in digits_teacher.state_dict().items()}
    get_score("diswot")(ScoreContext(ctx.x, ctx.y, digits_teacher, "gaussian", seed=3), student)
    assert all(torch.equal(before[k], v) for k, v in digits_teacher.state_dict().items())  # caller's teacher intact


@pytest.mark.parametrize("name", list_scores())
def test_score_is_finite_and_ranks_capacity(name, ctx):
    small = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))
    big = create_student("resnet", (1, 8, 8), 10, depths=(2, 2, 2), widths=(16, 32, 64))
    values = [get_score(name)(ctx, m) for m in (small, big)]
    assert all(math.isfinite(v) for v in values)
    if name in ("flops", "params", "synflow"):
        assert values[1] > values[0]


def test_unknown_score_lists_the_valid_ones():
    with pytest.raises(ConfigError, match="diswot"):
        get_score("nope")


def test_diswot_uses_one_semantic_mode_for_every_width(ctx):
    same_width = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 32))  # teacher: 4 × 8 = 32 channels
    m_class, _ = diswot_parts(ctx, same_width)
    assert ctx.semantic_mode == "class"
    assert m_class == pytest.approx(diswot_parts(ctx, same_width, "class")[0])
    assert m_class != pytest.approx(diswot_parts(ctx, same_width, "channel")[0])
