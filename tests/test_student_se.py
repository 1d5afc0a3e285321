"""MobileNetV3-style students: hard-swish and squeeze-excite in the mobilenetv2 family, opt-in, not searched."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import edgekd
from edgekd.hw.features import blocks_of
from edgekd.hw.model import latency_model
from edgekd.models import create_student
from edgekd.models.mobilenet import SqueezeExcite
from edgekd.search.spaces import make_space
from edgekd.targets import load_target
from edgekd.validate.conformance import with_precision

V3 = {"name": "mobilenetv2", "widths": (16, 24, 32), "depths": (1, 2, 2), "expansions": (1, 4, 4),
      "kernels": (3, 3, 3), "act": "hardswish", "se": (0, 1, 1)}


def test_squeeze_excite_sits_in_the_chosen_stages_and_the_card_rebuilds_it():
    model = create_student(**V3, input_shape=(1, 28, 28), num_classes=10)
    per_stage = [sum(isinstance(m, SqueezeExcite) for m in stage.modules()) for stage in model.stages]
    assert per_stage == [0, 2, 2]  # one per block of stages 2 and 3
    assert any(isinstance(m, torch.nn.Hardswish) for m in model.modules())
    again = create_student(**edgekd.schema.student.card_of(model).arch, input_shape=(1, 28, 28), num_classes=10)
    assert sum(p.numel() for p in again.parameters()) == sum(p.numel() for p in model.parameters())
    with pytest.raises(ValueError, match="se needs one 0 or 1 per stage"):
        create_student("mobilenetv2", (1, 28, 28), 10, se=(1, 1))


def test_the_search_does_not_propose_them_even_where_the_target_runs_hardswish():
    target = load_target("android-executorch-xnnpack")
    assert "hardswish" in target.ops
    space = make_space("mobilenetv2", target.ops)
    genes = dict(space.genes)
    assert "hardswish" not in genes["act"] and not any(g.startswith("se") for g in genes)
    assert {"mul", "hardsigmoid", "hardswish"} <= space.ops({**V3})  # what such a student would need


def test_the_latency_model_keys_them_apart_and_warns_that_it_never_measured_them():
    blocks = blocks_of(V3, (1, 28, 28))
    plain = blocks_of({**V3, "act": "relu6", "se": (0, 0, 0)}, (1, 28, 28))
    inverted = [b for b in blocks if b.kind == "inverted"]
    assert [b.variant for b in inverted] == ["hs", "se+hs", "se+hs", "se+hs", "se+hs"]
    assert all(b.variant == "" for b in plain) and {b.key for b in plain}.isdisjoint(b.key for b in inverted)
    model = latency_model("x86-cpu-onnxruntime", "fp32")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict_ms({**V3, "act": "relu6", "se": (0, 0, 0)}, (1, 28, 28))
        assert not [w for w in caught if "squeeze-excite" in str(w.message)]
        model.predict_ms(V3, (1, 28, 28))
    assert [w for w in caught if "squeeze-excite" in str(w.message)]


# ExecuTorch's lowering of this net takes half a minute; tests/backends/test_executorch_int8.py covers SE and
# hard-swish there in the default suite
@pytest.mark.parametrize("target", ["x86-cpu-onnxruntime",
                                    pytest.param("android-executorch-xnnpack", marks=pytest.mark.slow)])
def test_a_v3_style_student_compiles_and_agrees_with_torch(target, digits, tmp_path):
    if target.startswith("android"):
        pytest.importorskip("executorch.exir")
    train, val, _ = digits
    torch.manual_seed(0)
    model = create_student(**V3, input_shape=(1, 8, 8), num_classes=10).eval()
    x = val.x.numpy()[:64]
    with torch.no_grad():
        reference = model(torch.from_numpy(x)).numpy()
    calib = (train.x.numpy()[:128], train.y.numpy()[:128])  # few: ExecuTorch calibrates at batch 1
    if target == "x86-cpu-onnxruntime":  # ExecuTorch's XNNPACK lowering takes half a minute per .pte here
        fp32 = edgekd.compile(model, with_precision(target, "fp32"), calib, tmp_path / "f", calib_size=128)
        assert np.abs(edgekd.load(fp32.path)(x) - reference).max() < 1e-3  # HardSwish, HardSigmoid, Mul exported
    int8 = edgekd.compile(model, target, calib, tmp_path / "q", calib_size=128)
    out = edgekd.load(int8.path)(x)
    assert out.shape == reference.shape and np.isfinite(out).all()
    assert np.corrcoef(out.ravel(), reference.ravel())[0, 1] > 0.9  # int8 follows the float logits
