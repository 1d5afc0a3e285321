"""Trainer behaviour: resume after a kill, NaN stop, teacher-output caching."""

from __future__ import annotations

import contextlib

import pytest
import torch

from edgekd.distill import TrainConfig, evaluate, fit
from edgekd.distill import trainer as trainer_module
from edgekd.distill.losses import KD, FitNet
from edgekd.errors import EdgeKDError
from edgekd.models import create_student


def _student():
    torch.manual_seed(0)
    return create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 16))


def _small(data, n=480):
    return data.subset(range(n))


class _Killed(Exception):
    pass


def test_fit_resume_after_kill_matches_uninterrupted_run(digits, digits_teacher, tmp_path, monkeypatch):
    train, val, _ = digits
    train = _small(train)
    config = TrainConfig(epochs=3, batch_size=64, checkpoint=str(tmp_path / "run.ckpt"), progress=False)
    reference = fit(_student(), train, val, KD(), digits_teacher, TrainConfig(epochs=3, batch_size=64, progress=False))

    real_save = trainer_module.save_checkpoint
    calls = []

    def save_then_die(path, **kw):
        real_save(path, **kw)
        calls.append(kw["epoch"])
        if kw["epoch"] == 2:
            raise _Killed  # the process dies right after epoch 2 was written

    monkeypatch.setattr(trainer_module, "save_checkpoint", save_then_die)
    with pytest.raises(_Killed):
        fit(_student(), train, val, KD(), digits_teacher, config)
    monkeypatch.setattr(trainer_module, "save_checkpoint", real_save)
    import dataclasses

    resumed = fit(_student(), train, val, KD(), digits_teacher, dataclasses.replace(config, resume=True))
    assert resumed.resumed_from_epoch == 2 and len(resumed.history) == 3
    for a, b in zip(reference.model.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5)


def test_fit_stops_with_epoch_and_step_when_loss_diverges(digits, digits_teacher):
    train, val, _ = digits
    with pytest.raises(EdgeKDError, match=r"epoch 1, step \d+"):
        fit(_student(), _small(train), val, KD(), digits_teacher,
            TrainConfig(epochs=1, batch_size=64, lr=1e6, progress=False))


@contextlib.contextmanager
def _count_forwards(model):
    """Counts forwards of the shared session teacher, and removes the hook after (it must stay picklable)."""
    calls = []
    handle = model.register_forward_hook(lambda *_: calls.append(1))
    try:
        yield calls
    finally:
        handle.remove()


@pytest.mark.parametrize("loss_cls", [KD, FitNet])
def test_fit_teacher_cache_avoids_repeated_teacher_forwards_and_keeps_accuracy(digits, digits_teacher, loss_cls):
    train, val, _ = digits
    train = _small(train)
    config = TrainConfig(epochs=2, batch_size=64, progress=False)
    with _count_forwards(digits_teacher) as calls:
        cached = fit(_student(), train, val, loss_cls(), digits_teacher, config)
        n_cached = len(calls)
        calls.clear()
        live = fit(_student(), train, val, loss_cls(), digits_teacher,
                   TrainConfig(epochs=2, batch_size=64, progress=False, cache_teacher_mb=0))
    assert n_cached < 8 < len(calls)  # one pass over 480 samples (+ probes) vs 2 epochs × 8 steps
    assert abs(evaluate(cached.model, val) - evaluate(live.model, val)) <= 0.03


def test_fit_does_not_cache_teacher_when_augmenting(digits, digits_teacher):
    train, val, _ = digits
    with _count_forwards(digits_teacher) as calls:
        fit(_student(), _small(train, 128), None, KD(), digits_teacher,
            TrainConfig(epochs=2, batch_size=64, augment=True, progress=False))
    assert len(calls) >= 4


class _InputSpyKD(KD):
    """KD that keeps every batch the student saw (private attribute: not in config())."""

    def loss(self, student, teacher, batch):
        self._seen = [*getattr(self, "_seen", []), batch[0].detach().clone()]
        return super().loss(student, teacher, batch)


def test_fit_teacher_sees_the_same_augmented_images_as_the_student_even_with_a_cache(digits, digits_teacher):
    """The classic bug: augmented student inputs scored against logits of un-augmented images."""
    from edgekd.distill.cache import TeacherCache

    train = _small(digits[0], 128)
    teacher_inputs = []
    hook = digits_teacher.register_forward_pre_hook(lambda m, args: teacher_inputs.append(args[0].clone()))
    try:
        cache = TeacherCache(digits_teacher, train)  # offered, and must be refused under augmentation
        teacher_inputs.clear()
        loss = _InputSpyKD()
        fit(_student(), train, None, loss, digits_teacher,
            TrainConfig(epochs=1, batch_size=64, augment=True, progress=False), teacher_cache=cache)
    finally:
        hook.remove()
    assert len(loss._seen) == 2 and len(teacher_inputs) == 2 + 2  # first, teacher_under_augment's 2 probes
    assert all(torch.equal(t, s) for t, s in zip(teacher_inputs[2:], loss._seen))
    seen = torch.cat(loss._seen).flatten(1)
    unshifted = (torch.cdist(seen, train.x.flatten(1)) == 0).any(1).float().mean()
    assert unshifted < 0.2  # they were augmented: a zero shift is drawn for about 1 image in 25


class _Lookup(torch.nn.Module):
    """A teacher that knows the training images pixel for pixel (1-NN) and nothing else: shift-fragile."""

    def __init__(self, data):
        super().__init__()
        self.x, self.y = data.x.flatten(1), data.y

    def forward(self, x):
        nearest = torch.cdist(x.flatten(1), self.x).argmin(1)
        return torch.nn.functional.one_hot(self.y[nearest], 10).float() * 10


def test_teacher_under_augment_measures_the_drop_and_warns(digits, digits_teacher, caplog):
    from edgekd.distill.trainer import AUGMENT_DROP_WARN, teacher_under_augment

    train = _small(digits[0], 256)
    config = TrainConfig(augment=True, shift=2, progress=False)
    with caplog.at_level("WARNING", logger="edgekd.distill.trainer"):
        fragile = teacher_under_augment(_Lookup(train), train, config)
    assert fragile["clean"] == 1.0 and fragile["clean"] - fragile["augmented"] > AUGMENT_DROP_WARN
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert caplog.records[0].args[:2] == (100 * fragile["clean"], 100 * fragile["augmented"])
