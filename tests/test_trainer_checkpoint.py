"""Checkpoints: resume continues exactly; a corrupt or foreign checkpoint is an error."""

import inspect

import pytest
import torch

from edgekd.distill import TrainConfig, fit
from edgekd.distill import trainer as trainer_module
from edgekd.distill.losses import KD
from edgekd.errors import CheckpointError, EdgeKDError
from edgekd.models import create_student


def _student():
    torch.manual_seed(0)
    return create_student("resnet", (1, 8, 8), 10, widths=(8, 8, 8))


def _config(path, resume=False, epochs=3):
    return TrainConfig(epochs=epochs, seed=0, checkpoint=str(path), resume=resume, progress=False)


def test_resume_after_interruption_matches_uninterrupted_run(digits, digits_teacher, tmp_path, monkeypatch):
    train, val, _ = digits
    reference = fit(_student(), train, val, KD(), digits_teacher, _config(tmp_path / "a.ckpt")).model

    original = trainer_module._train_epoch
    signature = inspect.signature(original)

    def dies_in_epoch_3(*args, **kwargs):
        if signature.bind(*args, **kwargs).arguments["epoch"] == 2:  # 0-based: the third epoch
            raise KeyboardInterrupt
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "_train_epoch", dies_in_epoch_3)
    with pytest.raises(KeyboardInterrupt):
        fit(_student(), train, val, KD(), digits_teacher, _config(tmp_path / "b.ckpt"))
    monkeypatch.setattr(trainer_module, "_train_epoch", original)

    resumed = fit(_student(), train, val, KD(), digits_teacher, _config(tmp_path / "b.ckpt", resume=True))
    assert resumed.resumed_from_epoch == 2
    assert [h["epoch"] for h in resumed.history] == [1, 2, 3]
    for a, b in zip(reference.state_dict().values(), resumed.model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-6)


def test_resume_from_corrupt_checkpoint_is_an_error_not_a_restart(digits, digits_teacher, tmp_path):
    train, val, _ = digits
    path = tmp_path / "c.ckpt"
    path.write_bytes(b"\x80\x04 definitely not a checkpoint")
    with pytest.raises(CheckpointError, match="corrupt or unreadable"):
        fit(_student(), train, val, KD(), digits_teacher, _config(path, resume=True))


def test_resume_refuses_checkpoint_of_a_different_run(digits, digits_teacher, tmp_path):
    train, val, _ = digits
    path = tmp_path / "d.ckpt"
    fit(_student(), train, val, KD(), digits_teacher, _config(path, epochs=1))
    with pytest.raises(CheckpointError, match="different run"):
        fit(_student(), train, val, KD(temperature=2.0), digits_teacher, _config(path, resume=True, epochs=1))


def test_diverging_loss_stops_naming_epoch_and_step(digits, digits_teacher):
    train, val, _ = digits
    config = TrainConfig(epochs=1, lr=1e6, progress=False)
    with pytest.raises(EdgeKDError, match=r"diverged .* at epoch 1, step \d+"):
        fit(_student(), train, val, KD(), digits_teacher, config)
