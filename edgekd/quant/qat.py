"""Quantization-aware training: fold BatchNorm, swap Conv2d/Linear for fake-quant twins, calibrate.

``prepare_qat(model, target.format, calib)`` returns a copy of ``model`` that computes exactly
what the target's quantizer will: every Conv2d/Linear quantizes its input activation (per tensor),
its weight (per channel) and its bias (int32 at ``s_in·s_w``, as integer runtimes fuse it),
BatchNorm that directly follows a conv is folded into the conv's weight and bias first (the
runtime folds it too, and so the trained grid is the exported grid). An fp16 format rounds
weights, biases and activations to fp16 instead.
Module names are kept, so feature hooks named before preparation still resolve.
"""

from __future__ import annotations

import copy
import logging

import torch
import torch.nn.functional as F
from torch import nn

from edgekd.errors import ConfigError
from edgekd.quant.fake_quant import FakeQuant, bias_grid, quantize_bias
from edgekd.quant.formats import activation_spec, weight_spec
from edgekd.schema.student import card_of, set_card
from edgekd.targets import NumericFormat

log = logging.getLogger(__name__)


class _Quantized:
    """What a fake-quant layer shares: its bias as the runtime will hold it."""

    def quantized_bias(self) -> torch.Tensor | None:
        """int32 at ``s_in·s_w`` for integer formats (ORT rewrites a float bias so), fp16 for fp16."""
        act, weight = self.act_quant, self.weight_quant
        if self.bias is None:
            return None
        if weight.spec.kind == "fp16":
            return weight(self.bias)
        if act.spec.kind != "int" or weight.spec.kind != "int" or not bool(act.calibrated):
            return self.bias
        _, scale = bias_grid(self.bias, act.export_params()[0], weight.export_params()[0], weight.spec.per_channel)
        return quantize_bias(self.bias, scale)


class QConv2d(_Quantized, nn.Conv2d):
    """Conv2d whose input, weight and bias pass through :class:`FakeQuant` (LSQ) / the bias grid."""

    def forward(self, x):
        return self._conv_forward(self.act_quant(x), self.weight_quant(self.weight), self.quantized_bias())


class QLinear(_Quantized, nn.Linear):
    """Linear whose input, weight and bias pass through :class:`FakeQuant` (LSQ) / the bias grid."""

    def forward(self, x):
        return F.linear(self.act_quant(x), self.weight_quant(self.weight), self.quantized_bias())


_TWINS = {nn.Conv2d: QConv2d, nn.Linear: QLinear}


def is_qat_model(model: nn.Module) -> bool:
    """True when ``model`` was prepared by :func:`prepare_qat`."""
    return any(isinstance(m, (QConv2d, QLinear)) for m in model.modules())


def _plain(module: nn.Module, base: type) -> bool:
    """``module`` is a ``base`` layer (or a subclass that only changes how it trains, like the students'
    strided shortcut), not already quantization-aware."""
    return isinstance(module, base) and not isinstance(module, _Quantized)


def fold_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A conv computing ``bn(conv(x))`` in eval mode: w·γ/σ, (b − μ)·γ/σ + β."""
    fused = copy.deepcopy(conv)
    with torch.no_grad():
        factor = bn.weight / torch.sqrt(bn.running_var + bn.eps)
        fused.weight.copy_(conv.weight * factor.reshape(-1, 1, 1, 1))
        bias = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
        fused.bias = nn.Parameter((bias - bn.running_mean) * factor + bn.bias)
    return fused


def fold_batchnorm(model: nn.Module) -> list[str]:
    """Fold every BatchNorm2d that directly follows a Conv2d inside a Sequential; in place.

    Returns the names of BatchNorm layers left unfolded (they stay float in QAT and export).
    """
    folded = set()
    for name, module in model.named_modules():
        if not isinstance(module, nn.Sequential):
            continue
        keys = list(module._modules)
        for a, b in zip(keys, keys[1:]):
            conv, bn = module._modules[a], module._modules[b]
            if _plain(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d) and bn.track_running_stats:
                module._modules[a] = fold_bn(conv, bn)
                module._modules[b] = nn.Identity()
                folded.add(f"{name}.{b}" if name else b)
    return [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d) and n not in folded]


def _swap(model: nn.Module, fmt: NumericFormat) -> list[str]:
    w_spec, a_spec = weight_spec(fmt), activation_spec(fmt)
    swapped = []
    for name, module in list(model.named_modules()):
        twin = next((_TWINS[base] for base in (nn.Conv2d, nn.Linear) if _plain(module, base)), None)
        if twin is None:
            continue
        new = twin.__new__(twin)
        new.__dict__ = module.__dict__.copy()
        new._modules = dict(module._modules)
        new.act_quant = FakeQuant(a_spec)
        new.weight_quant = FakeQuant(w_spec, module.weight.shape[0], weight=True)
        new.weight_quant.init_weights(module.weight) if w_spec.kind == "int" else None
        _set_module(model, name, new)
        swapped.append(name)
    return swapped


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(model.get_submodule(parent) if parent else model, leaf, new)


@torch.no_grad()
def calibrate(model: nn.Module, x: torch.Tensor, batch_size: int = 64) -> list[str]:
    """Run calibration samples so every activation quantizer sets its range; returns the unseen ones."""
    was_training = model.training
    model.eval()
    for i in range(0, len(x), batch_size):
        model(x[i : i + batch_size])
    model.train(was_training)
    return [n for n, m in model.named_modules() if isinstance(m, FakeQuant) and not m.finish_calibration()]


def prepare_qat(model: nn.Module, fmt: NumericFormat, calib: torch.Tensor) -> nn.Module:
    """A copy of ``model`` with BN folded and fake quantizers for ``fmt``, calibrated on ``calib``.

    Args:
        model: a float model (trained or not); it is not modified.
        fmt: the target's numeric format (``target.format``).
        calib: float32 NCHW calibration inputs (a few hundred samples, as the target's recipe).

    Returns:
        The prepared model; its card (``edgekd.schema.student``) says what was quantized and what was not.
    """
    if not fmt.is_quantized and fmt.weights != "fp16":
        raise ConfigError(f"format {fmt.key}: nothing to quantize (fp32); train without qat")
    qmodel = copy.deepcopy(model).eval()
    kept_bn = fold_batchnorm(qmodel)
    swapped = _swap(qmodel, fmt)
    unseen = calibrate(qmodel, calib)
    if unseen:
        raise ConfigError(f"QAT calibration: quantizers {unseen} saw no data (layers unused in forward?)")
    set_card(qmodel, qat={"format": fmt.model_dump(), "quantized_layers": swapped, "bn_kept_float": kept_bn,
                          "calibration_samples": int(len(calib))})
    if card_of(model).arch is not None:
        set_card(qmodel, arch={**card_of(model).arch, "qat": fmt.key})
    log.info("QAT %s: %d layers quantized, %d BatchNorm kept float", fmt.key, len(swapped), len(kept_bn))
    if fmt.weights == "fp16":
        log.info("QAT fp16: weights, biases and layer inputs are rounded to fp16 in the forward pass (no scales "
                 "to learn); the export is the float graph, which the target builds in fp16")
    return qmodel


def to_float(model: nn.Module) -> nn.Module:
    """A copy with plain Conv2d/Linear (float, unquantized weights): the QAT model minus its quantizers."""
    plain = copy.deepcopy(model)
    for name, module in list(plain.named_modules()):
        if isinstance(module, (QConv2d, QLinear)):
            base = nn.Conv2d if isinstance(module, QConv2d) else nn.Linear
            new = base.__new__(base)
            new.__dict__ = module.__dict__.copy()
            new._modules = {k: v for k, v in module._modules.items() if k not in ("act_quant", "weight_quant")}
            _set_module(plain, name, new)
    return plain
