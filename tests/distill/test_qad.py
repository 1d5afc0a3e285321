"""Who teaches the QAT phase: the frozen float student ("self"), the teacher, or both."""

from __future__ import annotations

import pytest
import torch

import edgekd
from edgekd.distill import qad
from edgekd.distill.losses import KD, FitNet
from edgekd.errors import ConfigError
from edgekd.models import create_student
from edgekd.quant import format_from
from edgekd.schema.student import card_of


class _SpyKD(KD):
    """KD that keeps the last batch's inputs and teacher logits (private: not in config())."""

    def loss(self, student, teacher, batch):
        self._x, self._teacher_logits = batch[0].detach().clone(), teacher.logits.detach().clone()
        return super().loss(student, teacher, batch)


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _run(digits, teacher, choice, monkeypatch, loss=None):
    """Distill with QAT; returns the model, the spy loss and the QAT teacher with its state at QAT start."""
    train, val, _ = digits
    seen = {}
    real = qad.qat_teacher_module

    def capture(choice_, float_student, teacher_, self_weight=qad.DEFAULT_SELF_WEIGHT):
        module = real(choice_, float_student, teacher_, self_weight)
        seen.update(module=module, float_student=float_student,
                    start={k: v.clone() for k, v in module.state_dict().items()})
        return module

    monkeypatch.setattr(qad, "qat_teacher_module", capture)
    torch.manual_seed(0)
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))
    loss = loss or _SpyKD()
    model = edgekd.distill(teacher, student, train, val, loss=loss, target=format_from("int8", "uint8"), qat=True,
                           epochs=2, qat_epochs=1, lr=5e-3, progress=False, qat_teacher=choice)
    return model, loss, seen


def test_qat_teacher_self_is_a_frozen_copy_that_qat_never_changes(digits, digits_teacher, monkeypatch):
    model, _, seen = _run(digits, digits_teacher, "self", monkeypatch)
    twin = seen["module"]
    assert twin is not seen["float_student"] and twin is not digits_teacher
    assert not twin.training and all(not p.requires_grad and p.grad is None for p in twin.parameters())
    after = twin.state_dict()
    assert all(torch.equal(after[k], v) for k, v in seen["start"].items())  # QAT did not move it
    # it is the float student as float distillation left it, not the QAT student
    assert seen["start"].keys() == seen["float_student"].state_dict().keys()
    assert not any(p is q for p in twin.parameters() for q in model.parameters())
    assert card_of(model).qat["teacher"] == "self"


@pytest.mark.parametrize("choice", ["self", "teacher", "both"])
def test_qat_teacher_choice_is_the_teacher_the_loss_sees(digits, digits_teacher, monkeypatch, choice):
    model, loss, seen = _run(digits, digits_teacher, choice, monkeypatch)
    x, logits = loss._x, loss._teacher_logits
    with torch.no_grad():
        expected = {"teacher": digits_teacher(x), "self": seen["float_student"].eval()(x)}
        expected["both"] = 0.5 * expected["self"] + 0.5 * expected["teacher"]
    assert torch.allclose(logits, expected[choice], atol=1e-5)
    others = [k for k in expected if k != choice]
    assert all(not torch.allclose(logits, expected[k], atol=1e-3) for k in others)
    assert card_of(model).qat["teacher"] == choice


def test_logit_blend_is_the_weighted_sum_of_both_teachers():
    torch.manual_seed(0)
    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(4, 3)
    x = torch.randn(5, 4)
    blend = qad.LogitBlend(a, b, self_weight=0.25)
    assert torch.allclose(blend(x), 0.25 * a(x) + 0.75 * b(x))


@pytest.mark.parametrize("kwargs,match", [
    ({"qat_teacher": "student"}, "self, teacher, both"),
    ({"qat_teacher": "self", "loss": FitNet()}, "logit loss"),
    ({"qat_teacher": "both", "qat_self_weight": 1.5}, r"\[0, 1\]"),
    ({"qat_teacher": "self", "qat": False}, "qat=True"),
])
def test_distill_refuses_a_bad_qat_teacher_before_training(digits, digits_teacher, kwargs, match):
    train, val, _ = digits
    student = create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))
    before = {k: v.clone() for k, v in student.state_dict().items()}
    args = {"loss": KD(), "target": "x86-cpu-onnxruntime", "qat": True, "epochs": 2, "progress": False, **kwargs}
    with pytest.raises(ConfigError, match=match):
        edgekd.distill(digits_teacher, student, train, val, **args)
    assert all(torch.equal(student.state_dict()[k], v) for k, v in before.items())


def test_qat_teacher_default_falls_back_to_the_teacher_for_feature_losses(monkeypatch):
    monkeypatch.setattr(qad, "DEFAULT_QAT_TEACHER", "self")
    teacher = torch.nn.Linear(2, 2)
    assert qad.resolve(None, FitNet(), teacher) == "teacher"
    assert qad.resolve(None, KD(), teacher) == "self"
    assert qad.resolve(None, edgekd.losses.CE(), None) == "none"
