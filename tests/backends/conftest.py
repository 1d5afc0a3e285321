"""Three trained students on the digits data: residual, depthwise/inverted-residual, add+concat."""

from __future__ import annotations

import pytest
import torch

from edgekd.distill import TrainConfig, fit
from edgekd.distill.losses import CE
from edgekd.models import create_student
from edgekd.validate.conformance import AddConcatNet


def _train(model, train):
    torch.manual_seed(0)
    fit(model, train, None, CE(), None, TrainConfig(epochs=2, lr=5e-3, progress=False))
    return model.eval()


@pytest.fixture(scope="session")
def students(digits):
    """name -> trained nn.Module (2 epochs on digits: enough for confident, comparable logits)."""
    train, _, spec = digits
    shape = tuple(spec.input_shape)
    torch.manual_seed(0)
    return {"residual": _train(create_student("resnet", shape, 10, width_mult=0.5), train),
            "inverted_residual": _train(create_student("mobilenetv2", shape, 10), train),
            "add_concat": _train(AddConcatNet(shape[0], 10), train)}
