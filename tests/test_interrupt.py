"""Where a Ctrl-C stopped training, read from the interrupted trainer loop."""

from __future__ import annotations

import torch

from edgekd.data import ArrayData
from edgekd.distill import TrainConfig, fit
from edgekd.distill.losses import CE
from edgekd.interrupt import Interrupted, interrupted_at


class _CtrlCAt(CE):
    """Cross-entropy that raises KeyboardInterrupt at its ``at``-th batch, as a Ctrl-C would."""

    def __init__(self, at: int):
        super().__init__()
        self.at, self.calls = at, 0

    def loss(self, student, teacher, batch):
        self.calls += 1
        if self.calls == self.at:
            raise KeyboardInterrupt
        return super().loss(student, teacher, batch)


def _interrupt(at: int, desc: str = "distill") -> Interrupted:
    torch.manual_seed(0)
    data = ArrayData(torch.randn(32, 1, 4, 4), torch.arange(32) % 2)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 2))
    try:  # 32 samples, batch 16: two batches an epoch
        fit(model, data, None, _CtrlCAt(at), None, TrainConfig(epochs=7, batch_size=16, progress=False), desc=desc)
    except KeyboardInterrupt as exc:
        return interrupted_at(exc)
    raise AssertionError("the loss did not interrupt")


def test_interrupted_at_reads_the_running_epoch_of_the_trainer():
    assert _interrupt(at=6) == Interrupted("distill", 3, 7)  # the 6th batch is in epoch 3
    assert _interrupt(at=6).resumable
    assert not _interrupt(at=2).resumable  # epoch 1: no checkpoint yet
    assert not _interrupt(at=6, desc="teacher").resumable  # the teacher has no checkpoint


def test_interrupted_at_outside_training_names_no_epoch():
    try:
        raise KeyboardInterrupt
    except KeyboardInterrupt as exc:
        found = interrupted_at(exc)
    assert found == Interrupted() and not found.resumable
