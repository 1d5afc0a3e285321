"""Block-level features of a registry student, and attribution of runtime kernels to blocks.

A network is cut into the blocks the latency model sums over: ``stem``, each residual block
(``basic`` for ResNet, ``inverted`` for MobileNetV2), ``head`` (MobileNetV2's 1×1 conv),
``classifier`` (pool + flatten + linear) and ``io`` (what the runtime adds at the network's
boundary: input quantization, layout transposes, output dequantization).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from edgekd.errors import ConfigError
from edgekd.models import create_student
from edgekd.models.mobilenet import InvertedResidual, MobileNetV2Student, SqueezeExcite
from edgekd.models.resnet import BasicBlock, ResNetStudent

KINDS = ("stem", "basic", "inverted", "head", "classifier", "io")
DW_KERNELS = (3, 5, 7)
LINEAR_FEATURES = (*(f"dense_mmac_{k}" for k in KINDS), *(f"dw_mmac_k{k}" for k in DW_KERNELS), "dw_mmac_other",
                   *(f"act_melems_{k}" for k in KINDS), *(f"count_{k}" for k in KINDS))
FEATURES = (*(f"is_{k}" for k in KINDS), "cin", "cout", "hidden", "h", "w", "h_out", "w_out", "kernel", "stride",
            "expansion", "residual", "shortcut", "log_macs", "log_params", "log_in", "log_out", "log_hidden_act",
            "log_dense_macs", "log_dw_macs")


@dataclass(frozen=True)
class Block:
    """One unit of the latency model: its type, shapes and hyper-parameters."""

    kind: str
    cin: int
    cout: int
    h: int
    w: int
    h_out: int
    w_out: int
    kernel: int = 1
    stride: int = 1
    expansion: int = 1
    hidden: int = 0
    residual: bool = False
    shortcut: bool = False
    macs: int = 0
    params: int = 0
    precision: str = "fp32"
    path: str = ""  # module path, e.g. "stages.1.0"; not part of the key
    dw_macs: int = 0  # the depthwise share of ``macs`` (memory-bound, runs at another speed)
    variant: str = ""  # "se", "hs" or "se+hs": squeeze-excite / hard-swish (MobileNetV3-style); "" plain

    @property
    def key(self) -> str:
        """Lookup-table key: everything that determines the block's kernels, not where it sits."""
        return (f"{self.kind}|{self.cin}>{self.cout}|h{self.hidden}|k{self.kernel}|s{self.stride}|"
                f"{self.h}x{self.w}|r{int(self.residual)}{int(self.shortcut)}|{self.precision}"
                + (f"|{self.variant}" if self.variant else ""))  # plain blocks keep the keys profiles were fitted with

    @property
    def signature(self) -> str:
        """What decides how many kernels the block becomes after the runtime's fusion."""
        return f"{self.kind}|r{int(self.residual)}|sc{int(self.shortcut)}|x{int(self.expansion != 1)}"

    def vector(self) -> list[float]:
        hidden_act = self.hidden * self.h_out * self.w_out
        return [*(float(self.kind == k) for k in KINDS), self.cin, self.cout, self.hidden, self.h, self.w,
                self.h_out, self.w_out, self.kernel, self.stride, self.expansion, float(self.residual),
                float(self.shortcut), np.log1p(self.macs), np.log1p(self.params),
                np.log1p(self.cin * self.h * self.w), np.log1p(self.cout * self.h_out * self.w_out),
                np.log1p(hidden_act), np.log1p(self.macs - self.dw_macs), np.log1p(self.dw_macs)]

    def linear_vector(self) -> np.ndarray:
        """:data:`LINEAR_FEATURES`: work a runtime pays for linearly (MACs by kind, depthwise MACs by
        kernel size, activation elements moved, one call per block)."""
        v = dict.fromkeys(LINEAR_FEATURES, 0.0)
        v[f"dense_mmac_{self.kind}"] = (self.macs - self.dw_macs) / 1e6
        if self.dw_macs:
            v[f"dw_mmac_k{self.kernel}" if self.kernel in DW_KERNELS else "dw_mmac_other"] = self.dw_macs / 1e6
        out_hw = self.h_out * self.w_out
        v[f"act_melems_{self.kind}"] = (self.cin * self.h * self.w + (self.cout + 2 * self.hidden) * out_hw) / 1e6
        v[f"count_{self.kind}"] = 1.0
        return np.array(list(v.values()))

    def to_json(self) -> dict:
        return asdict(self)


def arch_key(arch: dict) -> str:
    """A canonical string for a ``card_of(model).arch`` dict (tuples and lists compare equal)."""
    return repr(sorted((k, tuple(v) if isinstance(v, (list, tuple)) else v) for k, v in arch.items()))


def blocks_of(arch: dict, input_shape, num_classes: int = 10, precision: str = "fp32") -> list[Block]:
    """The blocks of a registry student, with shapes from one forward pass of the built model.

    Args:
        arch: a ``card_of(model).arch`` dict, e.g. ``{"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}``.
        input_shape: (C, H, W).
        precision: recorded on every block (``fp32`` or ``int8``).
    """
    frozen = tuple(sorted((k, tuple(v) if isinstance(v, list) else v) for k, v in arch.items()))
    return list(_blocks_cached(frozen, tuple(input_shape), int(num_classes), precision))


@lru_cache(maxsize=4096)
def _blocks_cached(frozen: tuple, input_shape: tuple, num_classes: int, precision: str) -> tuple[Block, ...]:
    kwargs = dict(frozen)
    name = kwargs.pop("name", None)
    if name is None:
        raise ConfigError(f"arch {kwargs} has no 'name'; expected a student registry name")
    with torch.device("meta"):  # shapes only: no weights allocated, no arithmetic done
        model = create_student(name, input_shape, num_classes, **kwargs).eval()
    units = _units(model)
    shapes, macs = _trace(model, input_shape, [m for _, m in units])
    blocks = [_block(path, module, shapes[id(module)], macs, precision) for path, module in units]
    c, h, w = input_shape
    blocks.append(Block("io", c, num_classes, h, w, 1, 1, precision=precision, path=""))
    return tuple(with_classifier_shape(blocks))


def _units(model: nn.Module) -> list[tuple[str, nn.Module]]:
    if not isinstance(model, (ResNetStudent, MobileNetV2Student)):
        raise ConfigError(f"no block decomposition for {type(model).__name__}; the latency model knows the "
                          "registry families 'resnet' and 'mobilenetv2'")
    units = [("stem", model.stem)]
    units += [(name, m) for name, m in model.named_modules() if isinstance(m, (BasicBlock, InvertedResidual))]
    if isinstance(model, MobileNetV2Student):
        units.append(("head", model.head))
    units.append(("fc", model.fc))
    return units


def _trace(model: nn.Module, input_shape, units) -> tuple[dict, dict]:
    """Input/output shapes of every unit, and the multiply-accumulates of every conv/linear."""
    shapes, macs, handles = {}, {}, []

    def unit_hook(mod, inp, out):
        shapes[id(mod)] = (tuple(inp[0].shape), tuple(out.shape))

    def mac_hook(mod, inp, out):
        if isinstance(mod, nn.Conv2d):
            k = mod.kernel_size[0] * mod.kernel_size[1]
            macs[id(mod)] = out.numel() * (mod.in_channels // mod.groups) * k
        else:
            macs[id(mod)] = mod.in_features * mod.out_features

    for m in units:
        handles.append(m.register_forward_hook(unit_hook))
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            handles.append(m.register_forward_hook(mac_hook))
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape, device="meta"))
    finally:
        for h in handles:
            h.remove()
    return shapes, macs


def _variant(module: nn.Module) -> str:
    parts = [name for name, kind in (("se", SqueezeExcite), ("hs", nn.Hardswish))
             if any(isinstance(m, kind) for m in module.modules())]
    return "+".join(parts)


def _block(path: str, module: nn.Module, shape, macs: dict, precision: str) -> Block:
    return replace(_plain_block(path, module, shape, macs, precision), variant=_variant(module))


def _plain_block(path: str, module: nn.Module, shape, macs: dict, precision: str) -> Block:
    convs = [m for m in module.modules() if isinstance(m, nn.Conv2d)]
    n_macs = sum(macs.get(id(m), 0) for m in module.modules())
    dw = sum(macs.get(id(m), 0) for m in convs if m.groups > 1)
    params = sum(p.numel() for p in module.parameters())
    if isinstance(module, nn.Linear):  # the classifier: its input is the pool's input
        return Block("classifier", module.in_features, module.out_features, 0, 0, 1, 1, macs=n_macs,
                     params=params, precision=precision, path=path)
    (_, cin, h, w), (_, cout, h_out, w_out) = shape
    kind = {"stem": "stem", "head": "head"}.get(path) or ("basic" if hasattr(module, "shortcut") else "inverted")
    if kind == "basic":
        return Block(kind, cin, cout, h, w, h_out, w_out, 3, convs[0].stride[0], 1, cout, True,
                     not isinstance(module.shortcut, nn.Identity), n_macs, params, precision, path)
    if kind == "inverted":
        dwconv = next(m for m in convs if m.groups > 1 or m.kernel_size[0] > 1)  # SE's convs come after it
        hidden = dwconv.in_channels
        return Block(kind, cin, cout, h, w, h_out, w_out, dwconv.kernel_size[0], dwconv.stride[0], hidden // cin,
                     hidden, bool(module.residual), False, n_macs, params, precision, path, dw)
    conv = convs[0]
    return Block(kind, cin, cout, h, w, h_out, w_out, conv.kernel_size[0], conv.stride[0], 1, cout, False, False,
                 n_macs, params, precision, path)


def with_classifier_shape(blocks: list[Block]) -> list[Block]:
    """Give the classifier block the spatial size of the feature map it pools."""
    last = [b for b in blocks if b.kind not in ("classifier", "io")][-1]
    return [replace(b, h=last.h_out, w=last.w_out) if b.kind == "classifier" else b for b in blocks]


def node_prefix(path: str) -> tuple[str, ...]:
    """ONNX node-name prefixes the torch exporter gives a module's nodes (``/stages/stages.1/...``)."""
    if path == "fc":  # OpenVINO names the last FullyConnected after the graph output
        return ("/pool/", "/flatten/", "/fc/", "logits")
    parts = path.split(".")
    return ("/" + "/".join(".".join(parts[: i + 1]) for i in range(len(parts))) + "/",)


def attribute(nodes: dict[str, dict], blocks: list[Block]) -> dict[str, dict]:
    """Group per-node runtime times by block path; unmatched nodes (Q/DQ of I/O, transposes) go to ``io``.

    Returns ``{path: {"ms": total, "ops": [runtime op types]}}``.
    """
    prefixes = sorted(((p, b.path) for b in blocks if b.kind != "io" for p in node_prefix(b.path)),
                      key=lambda t: -len(t[0]))
    out = {b.path: {"ms": 0.0, "ops": []} for b in blocks}
    for name, info in nodes.items():
        owner = next((path for prefix, path in prefixes if name.startswith(prefix)), "")
        out[owner]["ms"] += info["ms"]
        out[owner]["ops"].append(info["op"])
    return out


def exported_ops(onnx_path, blocks: list[Block]) -> dict[str, list[str]]:
    """The operators of the exported (unfused) ONNX graph, grouped by block path."""
    # heavy SDK: imported on first use
    import onnx

    nodes = {n.name: {"op": n.op_type, "ms": 0.0} for n in onnx.load(str(onnx_path)).graph.node}
    return {path: v["ops"] for path, v in attribute(nodes, blocks).items()}
