"""Every registered loss: shapes, gradients, zero at student == teacher, TopKLD → KD identity."""

from __future__ import annotations

import copy

import pytest
import torch

from edgekd.distill.hooks import capture_features
from edgekd.distill.losses import (UNLABELED, ModelOutput, create_loss, kd_kl, list_losses, topkld)
from edgekd.distill.losses.dkd import dkd_terms
from edgekd.models import TeacherCNN, create_student

# Terms that vanish when the student is the teacher (the CE term never does).
ZERO_AT_IDENTITY = {"kd", "topkld", "tckd", "nckd", "inter", "intra", "hint", "at", "sp", "rkd_distance",
                    "rkd_angle"}


def _models():
    torch.manual_seed(0)
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 32))
    teacher = TeacherCNN((1, 8, 8), 10, width=8).eval()
    return student, teacher


def _outputs(loss, student, teacher, x):
    with torch.no_grad(), capture_features(teacher, [t for _, t in loss.feature_pairs]) as tf:
        t_out = ModelOutput(teacher(x), dict(tf))
    with capture_features(student, [s for s, _ in loss.feature_pairs]) as sf:
        s_out = ModelOutput(student(x), dict(sf))
    return s_out, t_out


@pytest.mark.parametrize("name", list_losses())
def test_loss_terms_are_finite_scalars_and_gradients_flow(name):
    student, teacher = _models()
    loss = create_loss(name)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    loss.bind(student, teacher if loss.needs_teacher else None, x[:2])
    s_out, t_out = _outputs(loss, student, teacher, x)
    terms = loss(s_out, t_out if loss.needs_teacher else None, (x, y))
    assert terms and all(v.ndim == 0 and torch.isfinite(v) for v in terms.values())
    sum(terms.values()).backward()
    grads = [p.grad for p in student.parameters() if p.requires_grad]
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0
    assert all(p.grad is None for p in teacher.parameters())


@pytest.mark.parametrize("name", [n for n in list_losses() if n != "ce"])
def test_loss_distillation_terms_vanish_when_student_is_teacher(name):
    _, teacher = _models()
    student = copy.deepcopy(teacher)
    loss = create_loss(name)
    x, y = torch.randn(16, 1, 8, 8), torch.randint(0, 10, (16,))
    loss.bind(student, teacher, x[:2])
    s_out, t_out = _outputs(loss, student.eval(), teacher, x)
    terms = loss(s_out, t_out, (x, y))
    checked = [k for k in terms if k in ZERO_AT_IDENTITY]
    assert checked, f"{name}: no distillation term returned ({sorted(terms)})"
    for key in checked:
        assert abs(terms[key].item()) < 1e-5, f"{name}.{key} = {terms[key].item()}"


def test_loss_ce_ignores_unlabelled_samples_and_is_zero_without_labels():
    loss = create_loss("ce")
    logits = torch.randn(4, 10, requires_grad=True)
    y = torch.tensor([3, UNLABELED, 1, UNLABELED])
    value = loss(ModelOutput(logits), None, (None, y))["ce"]
    ref = torch.nn.functional.cross_entropy(logits[[0, 2]], y[[0, 2]])
    assert torch.allclose(value, ref)
    none = loss(ModelOutput(logits), None, (None, torch.full((4,), UNLABELED)))["ce"]
    assert none.item() == 0.0
    none.backward()  # still a graph


@pytest.mark.parametrize("temperature", [1.0, 4.0])
def test_topkld_equals_kd_when_k_is_all_classes_and_beta_zero(temperature):
    torch.manual_seed(1)
    s, t = torch.randn(32, 10) * 3, torch.randn(32, 10) * 3
    value = topkld(s, t, k=10, temperature=temperature, alpha=1.0, beta=0.0)
    assert torch.allclose(value, kd_kl(s, t, temperature), rtol=1e-5, atol=1e-6)


def test_topkld_equals_kd_under_chain_rule_weights_for_any_k():
    """KL = binary + P·KL_K + (1−P)·KL_¬K: with per-sample mass weights every k gives KD (checks the parts)."""
    torch.manual_seed(2)
    s, t = torch.randn(8, 10), torch.randn(8, 10)
    for k in (1, 3, 9):
        per_sample = [topkld(s[i:i + 1], t[i:i + 1], k, 1.0, alpha=0.0, beta=0.0) for i in range(8)]
        mass = torch.softmax(t, 1).topk(k, 1).values.sum(1)
        kl_in = [topkld(s[i:i + 1], t[i:i + 1], k, 1.0, 1.0, 0.0) - per_sample[i] for i in range(8)]
        kl_out = [topkld(s[i:i + 1], t[i:i + 1], k, 1.0, 0.0, 1.0) - per_sample[i] for i in range(8)]
        total = torch.stack([per_sample[i] + mass[i] * kl_in[i] + (1 - mass[i]) * kl_out[i] for i in range(8)])
        assert torch.allclose(total.mean(), kd_kl(s, t, 1.0), atol=1e-5)


@pytest.mark.parametrize("k", [1, 3, 9, 10])
def test_topkld_equals_kd_for_any_k_with_mass_weighting(k):
    torch.manual_seed(4)
    s, t = torch.randn(16, 10) * 2, torch.randn(16, 10) * 2
    value = topkld(s, t, k, 2.0, alpha=1.0, beta=1.0, mass_weight=1.0, weighting="mass")
    assert torch.allclose(value, kd_kl(s, t, 2.0), rtol=1e-5, atol=1e-6)


def test_topkld_knobs_move_the_loss_as_documented():
    """β scales only the tail term, γ only the mass split; constant weights give the tail more than its mass."""
    torch.manual_seed(5)
    s, t = torch.randn(16, 10), torch.randn(16, 10) * 3
    base = topkld(s, t, 2, 1.0, alpha=0.0, beta=0.0, mass_weight=0.0)
    assert torch.allclose(base, torch.zeros(()))
    tail = topkld(s, t, 2, 1.0, alpha=0.0, beta=1.0, mass_weight=0.0)
    assert torch.allclose(topkld(s, t, 2, 1.0, alpha=0.0, beta=2.5, mass_weight=0.0), 2.5 * tail, rtol=1e-5)
    split = topkld(s, t, 2, 1.0, alpha=0.0, beta=0.0, mass_weight=1.0)
    assert torch.allclose(topkld(s, t, 2, 1.0, alpha=0.0, beta=0.0, mass_weight=3.0), 3.0 * split, rtol=1e-5)
    mass_tail = topkld(s, t, 2, 1.0, alpha=0.0, beta=1.0, mass_weight=0.0, weighting="mass")
    assert 0 < mass_tail < tail  # the tail's mass (< 1) no longer scales it down under constant weights


@pytest.mark.parametrize("kwargs", [{"weighting": "nope"}, {"k": 0}, {"beta": -1.0}])
def test_topkld_refuses_bad_knobs(kwargs):
    from edgekd.errors import ConfigError

    with pytest.raises(ConfigError):
        create_loss("topkld", **kwargs)


def test_dkd_terms_sum_to_kd_with_target_mass_weighting():
    """DKD's identity: KD = TCKD + (1 − p_t^target) · NCKD per sample (Zhao et al., eq. 3)."""
    torch.manual_seed(3)
    s, t, y = torch.randn(1, 10), torch.randn(1, 10), torch.tensor([4])
    tckd, nckd = dkd_terms(s, t, y, 1.0)
    p_target = torch.softmax(t, 1)[0, 4]
    assert torch.allclose(tckd + (1 - p_target) * nckd, kd_kl(s, t, 1.0), atol=1e-5)
