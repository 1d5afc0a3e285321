"""FakeQuant/LSQ: grids, STE gradients, LSQ gradient scale, BN folding, formats from targets."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from edgekd.quant import FakeQuant, activation_spec, fold_batchnorm, format_from, prepare_qat, weight_spec
from edgekd.quant.qat import to_float
from edgekd.schema.student import card_of
from edgekd.targets import load_target


def test_formats_follow_target_declarations():
    ort = load_target("x86-cpu-onnxruntime").format
    w, a = weight_spec(ort), activation_spec(ort)
    assert (w.qmin, w.qmax, w.per_channel, w.symmetric) == (-127, 127, True, True)
    assert (a.qmin, a.qmax, a.symmetric) == (0, 255, False)
    sym = activation_spec(format_from("int8", "int8", symmetric_activations=True))
    assert (sym.qmin, sym.qmax, sym.symmetric) == (-128, 127, True)
    assert weight_spec(format_from("int4", "int8")).qmax == 7
    assert weight_spec(format_from("fp16", "fp16")).kind == "fp16"


def test_fake_quant_values_lie_on_the_integer_grid_with_zero_point():
    fq = FakeQuant(activation_spec(format_from()))
    fq.init_from_range(torch.tensor([-1.0]), torch.tensor([3.0]))
    x = torch.linspace(-2, 4, 101)
    y = fq(x)
    s, z = fq.export_params()
    q = y / s + z
    assert torch.allclose(q, q.round(), atol=1e-3) and q.min() >= 0 and q.max() <= 255
    assert fq(torch.zeros(1)).item() == 0.0  # zero is exactly representable


def test_fake_quant_ste_gradient_passes_in_range_and_stops_outside():
    fq = FakeQuant(activation_spec(format_from("int8", "int8", True)))
    fq.init_from_range(torch.tensor([-1.0]), torch.tensor([1.0]))
    x = torch.tensor([0.3, -0.7, 5.0, -5.0], requires_grad=True)
    fq(x).sum().backward()
    assert x.grad.tolist() == [1.0, 1.0, 0.0, 0.0]


def test_lsq_scale_gradient_is_scaled_by_one_over_sqrt_n_qp():
    torch.manual_seed(0)
    spec = activation_spec(format_from("int8", "int8", True))
    x = torch.randn(4, 3, 5, 5)
    grads = []
    for g_on in (True, False):
        fq = FakeQuant(spec)
        fq.init_from_range(torch.tensor([-1.0]), torch.tensor([1.0]))
        if not g_on:  # reference: the same function without gradient scaling
            s = fq.scale
            v = torch.round(torch.clamp(x / s, -128, 127))
            out = v.detach() + (torch.clamp(x / s, -128, 127) - torch.clamp(x / s, -128, 127).detach())
            (out * s).sum().backward()
        else:
            fq(x).sum().backward()
        grads.append(fq.scale.grad.item())
    assert grads[0] == pytest.approx(grads[1] / math.sqrt(x[0].numel() * 127), rel=1e-4)


def test_fold_batchnorm_preserves_eval_outputs():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU())
    model.train()
    for _ in range(3):
        model(torch.randn(16, 3, 6, 6))  # non-trivial running stats
    model.eval()
    x = torch.randn(4, 3, 6, 6)
    ref = model(x)
    kept = fold_batchnorm(model)
    assert kept == [] and isinstance(model[1], nn.Identity)
    assert torch.allclose(model(x), ref, atol=1e-5)


@pytest.mark.parametrize("fmt", [format_from(), format_from("int8", "int8", True), format_from("int4", "int8"),
                                 format_from("fp16", "fp16")], ids=lambda f: f.key)
def test_prepare_qat_quantizes_every_layer_and_stays_close_to_float(fmt):
    from edgekd.models import create_student

    torch.manual_seed(0)
    model = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 16)).eval()
    x = torch.randn(128, 1, 8, 8)
    q = prepare_qat(model, fmt, x)
    assert len(card_of(q).qat["quantized_layers"]) == sum(isinstance(m, (nn.Conv2d, nn.Linear)) for m in model.modules())
    ref = model(x)
    err = (q(x) - ref).norm() / ref.norm()
    assert err < (0.25 if fmt.weights == "int4" else 0.05)
    assert torch.allclose(to_float(q)(x), ref, atol=1e-4)  # BN folding alone is exact
