"""Bias correction of int8 QDQ graphs: each layer's mean weight-rounding error leaves its bias."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from edgekd.onnx_export import export_onnx
from edgekd.ort_session import ort_session
from edgekd.quant.qdq import QDQConfig, qdq_summary, quantize_onnx


def rounding_biased(weight: torch.Tensor) -> torch.Tensor:
    """Weights that per-channel int8 rounds all the same way (k + 0.45 steps -> k, k small, so the error is
    a large share of each weight), one tap at full scale."""
    out = torch.empty_like(weight)
    rng = np.random.default_rng(0)
    for o in range(weight.shape[0]):
        steps = torch.from_numpy(rng.integers(1, 4, size=weight[o].numel()).astype(np.float32) + 0.45)
        steps[0] = 127.0  # fixes the channel's scale at 1/127 of its max
        out[o] = (steps / 127.0).reshape(weight[o].shape)
    return out


class Net(nn.Module):
    """A conv, a depthwise conv and a linear layer, each with weights that int8 rounds with a bias."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.depthwise = nn.Conv2d(8, 8, 3, padding=1, groups=8)
        self.fc = nn.Linear(8, 5)
        with torch.no_grad():
            for layer in (self.conv, self.depthwise, self.fc):
                layer.weight.copy_(rounding_biased(layer.weight))
                layer.bias.zero_()

    def forward(self, x):
        x = torch.relu(self.depthwise(torch.relu(self.conv(x))))
        return self.fc(x.mean((2, 3)))


def run(path, x):
    session = ort_session(path, quiet=True)
    return session.run(None, {session.get_inputs()[0].name: x})[0]


@pytest.fixture(scope="module")
def graphs(tmp_path_factory):
    work = tmp_path_factory.mktemp("bias_correction")
    torch.manual_seed(0)
    fp32 = export_onnx(Net().eval(), (3, 12, 12), work / "fp32.onnx")
    x = np.random.default_rng(1).uniform(0, 1, (96, 3, 12, 12)).astype(np.float32)  # positive means: E[x] != 0
    plain = quantize_onnx(fp32, work / "plain.onnx", x[:64], QDQConfig(bias_correction=False))
    corrected = quantize_onnx(fp32, work / "corrected.onnx", x[:64], QDQConfig(bias_correction=True))
    return fp32, plain, corrected, x[64:]


def test_bias_correction_removes_most_of_the_mean_output_error_on_held_out_inputs(graphs):
    fp32, plain, corrected, held_out = graphs
    reference = run(fp32, held_out)
    before = np.abs((run(plain, held_out) - reference).mean(0))
    after = np.abs((run(corrected, held_out) - reference).mean(0))
    assert before.mean() > 0.02 * np.abs(reference).mean()  # the weights were built to round with a bias: the error is there to remove
    assert after.mean() < 0.25 * before.mean()


def test_the_correction_is_recorded_and_only_biases_change(graphs):
    import onnx

    _, plain, corrected, _ = graphs
    assert qdq_summary(corrected)["bias_correction"]["layers"] == 3  # conv, depthwise, fc
    assert "bias_correction" not in qdq_summary(plain)
    a, b = (onnx.load(str(p)) for p in (plain, corrected))
    changed = [x.name for x, y in zip(a.graph.initializer, b.graph.initializer)
               if onnx.numpy_helper.to_array(x).tobytes() != onnx.numpy_helper.to_array(y).tobytes()]
    assert changed and all(name.endswith("_quantized") for name in changed)  # the int32 biases, nothing else
    assert [n.op_type for n in a.graph.node] == [n.op_type for n in b.graph.node]


def test_targets_calibration_recipes_turn_it_on_and_a_recipe_can_turn_it_off():
    from edgekd.targets import CalibrationRecipe, load_target

    target = load_target("x86-cpu-onnxruntime")
    assert QDQConfig.from_target(target).bias_correction
    off = CalibrationRecipe(name="no-bc", bias_correction=False)
    assert not QDQConfig.from_target(target, off).bias_correction


def test_pt2e_bias_correction_for_executorch_removes_most_of_the_mean_output_error(tmp_path):
    pytest.importorskip("executorch")
    from edgekd.backends.executorch import lower, quantize_pt2e
    from edgekd.calibrate import calibrator_for

    torch.manual_seed(0)
    model = Net().eval()
    x = np.random.default_rng(1).uniform(0, 1, (80, 3, 12, 12)).astype(np.float32)
    example = (torch.zeros(1, 3, 12, 12),)
    held_out = torch.from_numpy(x[64:])
    with torch.no_grad():
        reference = model(held_out).numpy()
    errors = {}
    for corrected in (False, True):
        q = quantize_pt2e(model, example, x[:64], True, 1, calibrator_for("minmax"), bias_correction=corrected)
        assert hasattr(q, "edgekd_bias_correction") == corrected
        lower(q, example, tmp_path / f"{corrected}.pte")  # what ships: the corrected float bias, lowered
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(tmp_path / f"{corrected}.pte")).load_method("forward")
        out = np.concatenate([method.execute([held_out[i:i + 1]])[0].numpy() for i in range(len(held_out))])
        errors[corrected] = np.abs((out - reference).mean(0)).mean()
    assert errors[False] > 0.02 * np.abs(reference).mean()
    assert errors[True] < 0.25 * errors[False]
