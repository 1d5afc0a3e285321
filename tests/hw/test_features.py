"""Block features of registry students, and kernels attributed to blocks after the runtime's fusion."""

from __future__ import annotations

from edgekd.hw.features import FEATURES, attribute, blocks_of, exported_ops
from edgekd.hw.profiler import profile_nodes
from hw_helpers import TINY


def test_blocks_of_resnet_shapes_and_macs():
    blocks = blocks_of({"name": "resnet", "depths": (2, 1, 1), "widths": (16, 32, 64)}, (1, 28, 28))
    assert [b.kind for b in blocks] == ["stem", "basic", "basic", "basic", "basic", "classifier", "io"]
    first, down = blocks[1], blocks[3]
    assert (first.cin, first.cout, first.stride, first.shortcut, first.h_out) == (16, 16, 1, False, 28)
    assert (down.cin, down.cout, down.stride, down.shortcut, down.h_out) == (16, 32, 2, True, 14)
    assert first.macs == 2 * 28 * 28 * 16 * 16 * 9  # two 3×3 convs, no shortcut conv
    assert blocks[5].h == 7 and blocks[5].cin == 64  # the classifier pools the last 7×7 map
    assert all(len(b.vector()) == len(FEATURES) for b in blocks)


def test_blocks_of_mobilenet_expansion_kernel_residual():
    arch = {"name": "mobilenetv2", "widths": (16, 24, 32), "depths": (1, 2, 1), "expansions": (1, 6, 4),
            "kernels": (3, 5, 7)}
    blocks = blocks_of(arch, (1, 28, 28), precision="int8")
    inv = [b for b in blocks if b.kind == "inverted"]
    assert [(b.expansion, b.kernel, b.stride, b.residual) for b in inv] == [(1, 3, 1, True), (6, 5, 2, False),
                                                                            (6, 5, 1, True), (4, 7, 2, False)]
    assert inv[1].hidden == 16 * 6 and all(b.precision == "int8" for b in blocks)
    assert blocks[-3].kind == "head" and len({b.key for b in inv}) == 4


def test_attribute_measures_fusion_conv_bn_relu_is_one_kernel(tiny_onnx):
    blocks = blocks_of(TINY, (1, 16, 16))
    nodes = profile_nodes(tiny_onnx, (1, 16, 16), runs=5)
    per_block = attribute(nodes, blocks)
    unfused = exported_ops(tiny_onnx, blocks)
    assert unfused["stem"] == ["Conv", "Relu"]  # BatchNorm already folded by the exporter
    assert per_block["stem"]["ops"] == ["Conv"]  # ... and ONNX Runtime fuses the ReLU into the conv
    assert len(per_block["stages.0.0"]["ops"]) < len([op for op in unfused["stages.0.0"] if op != "Identity"])
    assert abs(sum(v["ms"] for v in per_block.values()) - sum(n["ms"] for n in nodes.values())) < 1e-9
    assert all(v["ms"] > 0 for p, v in per_block.items() if p)
