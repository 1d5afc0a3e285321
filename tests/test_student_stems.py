"""Students downsample early on large inputs (ImageNet-style stems), and stay exactly as they were on small ones."""

from __future__ import annotations

import pytest
import torch

from edgekd.hw.features import blocks_of
from edgekd.models import create_student
from edgekd.search.scores.cost import count_flops


@pytest.mark.parametrize("family", ["resnet", "mobilenetv2"])
def test_small_inputs_keep_the_stride_1_stem_weight_for_weight(family):
    torch.manual_seed(0)
    auto = create_student(family, (1, 28, 28), 10)
    torch.manual_seed(0)
    explicit = create_student(family, (1, 28, 28), 10, stem_stride=1)
    a, b = auto.state_dict(), explicit.state_dict()
    assert list(a) == list(b) and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("family", ["resnet", "mobilenetv2"])
def test_at_224_pixels_the_stem_downsamples_4x_and_cuts_the_work_over_8x(family):
    shape = (3, 224, 224)
    auto = create_student(family, shape, 10).eval()
    full = create_student(family, shape, 10, stem_stride=1).eval()
    with torch.no_grad():
        stem_out = auto.stem(torch.zeros(1, *shape))
        assert tuple(stem_out.shape[2:]) == (56, 56)
        assert tuple(auto(torch.zeros(2, *shape)).shape) == (2, 10)
    assert count_flops(auto, shape) * 8 < count_flops(full, shape)  # 16x fewer pixels, less the stem's own cost
    stem = next(b for b in blocks_of({"name": family}, shape, 10) if b.kind == "stem")
    assert (stem.h_out, stem.w_out) == (56, 56)  # the latency model sees the same early downsampling


def test_middle_sizes_downsample_2x_and_a_bad_stride_is_refused():
    with torch.no_grad():
        assert create_student("resnet", (3, 96, 96), 5).stem(torch.zeros(1, 3, 96, 96)).shape[2:] == (48, 48)
    with pytest.raises(ValueError, match="stem_stride"):
        create_student("resnet", (3, 96, 96), 5, stem_stride=3)


def test_a_strided_shortcut_trains_without_the_strided_1x1_kernel_and_computes_the_same():
    import torch

    from edgekd.models.resnet import StridedPointwise

    torch.manual_seed(0)
    conv = StridedPointwise(4, 8, 1, 2, 0, bias=False)
    x = torch.randn(6, 4, 33, 31).to(memory_format=torch.channels_last)  # the layout oneDNN #6035 breaks
    reference = torch.nn.functional.conv2d(x.double(), conv.weight.double(), stride=2)
    conv.train()
    out = conv(x)
    out.square().sum().backward()
    w = conv.weight.detach().double().requires_grad_()
    torch.nn.functional.conv2d(x.double(), w, stride=2).square().sum().backward()
    assert out.shape == reference.shape == (6, 8, 17, 16)
    assert torch.allclose(out.double(), reference, atol=1e-5)
    assert torch.allclose(conv.weight.grad.double(), w.grad, rtol=1e-4, atol=1e-4)
    conv.eval()
    assert torch.allclose(conv(x).double(), reference, atol=1e-5)  # eval/export: the plain strided conv


def test_quantization_aware_training_folds_and_quantizes_the_strided_shortcut_too():
    import torch

    from edgekd.models import create_student
    from edgekd.quant import prepare_qat
    from edgekd.quant.qat import QConv2d
    from edgekd.targets import load_target

    model = create_student("resnet", (1, 28, 28), 10, depths=(1, 1, 1), widths=(8, 16, 32))
    convs = sum(isinstance(m, torch.nn.Conv2d) for m in model.modules())
    qat = prepare_qat(model, load_target("x86-cpu-onnxruntime").format, torch.zeros(1, 1, 28, 28))
    assert sum(isinstance(m, QConv2d) for m in qat.modules()) == convs
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in qat.modules())
