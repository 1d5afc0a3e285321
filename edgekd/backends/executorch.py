"""ExecuTorch with the XNNPACK delegate (Android/iOS CPU): ``.pte`` in fp32 and int8 (PT2E).

Shapes are static, one ``.pte`` per batch size: with a dynamic batch, XNNPACK lowering can
narrow the batch bound silently (ExecuTorch 1.5.1: batch ≥ 16 then fails at run time), so the
artifact records its batch and the runner feeds it in chunks of that size.
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch
import torch.fx

from edgekd._io import write_bytes
from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.calibrate import calibrator_for
from edgekd.calibrate.collect import accumulate
from edgekd.calibrate.methods import BINS, TensorStats
from edgekd.errors import CompileError, require
from edgekd.quant.bias_correction_pt2e import correct_biases, float_weights
from edgekd.quant.pt2e_layers import from_layers, quantized_layers

log = logging.getLogger(__name__)
WEIGHT_SCALE_EPS = float(torch.finfo(torch.float32).eps)  # smallest weight scale (XNNPACK's config: 2**-12)


def _observer_class():
    """A PT2E activation observer whose range comes from an edgekd calibrator (built lazily: torchao)."""
    from torchao.quantization.pt2e import MinMaxObserver  # heavy SDK: imported on first use

    class EdgeKDObserver(MinMaxObserver):
        max_kept = 1 << 20  # values kept per tensor for the histogram (strided subsample)

        def __init__(self, *args, calibrator=None, **kwargs):
            super().__init__(*args, **kwargs)
            self.calibrator, self.kept = calibrator, []

        def forward(self, x_orig):
            if self.calibrator is not None and self.calibrator.needs_histogram:
                flat = x_orig.detach().float().reshape(-1)
                stride = max(1, flat.numel() * 64 // self.max_kept)
                self.kept.append(flat[::stride].cpu())
            return super().forward(x_orig)

        def calculate_qparams(self):
            if self.calibrator is not None and self.kept and self.min_val.numel():
                values = torch.cat(self.kept).numpy()
                stats = TensorStats(float(self.min_val), float(self.max_val), np.zeros(BINS, np.int64),
                                    np.zeros(BINS, np.int64))
                accumulate(stats, values)
                lo, hi = self.calibrator.range(stats, symmetric=False)
                self.min_val.fill_(lo)
                self.max_val.fill_(hi)
                self.kept = []
            return super().calculate_qparams()

    return EdgeKDObserver


def _is_clamp_node(node) -> bool:
    """ReLU6 and other non-negative clamps (``aten.hardtanh(x, lo >= 0, hi)``)."""
    if node.op != "call_function" or node.target not in (torch.ops.aten.hardtanh.default,
                                                         torch.ops.aten.hardtanh_.default):
        return False
    lo = node.args[1] if len(node.args) > 1 else node.kwargs.get("min_val", -1.0)
    return isinstance(node.args[0], torch.fx.Node) and lo >= 0


def annotate_fused_clamps(gm, config, skip=None) -> int:
    """Annotate conv/linear → ReLU6 as one fused op: the int8 range is the clamp's output, [0, 6].

    XNNPACK's quantizer fuses only ``relu`` into a preceding conv/linear; a ReLU6 (``hardtanh``)
    shares its input's observer instead, so it is quantized with the pre-clamp range (e.g.
    [-60, 40] on EfficientNet-Lite: ~10 levels left inside [0, 6]). XNNPACK's own lowering fuses
    the clamp into the conv (FuseActivationPass), so annotating the pair as relu pairs are keeps
    every op in the delegate. ``skip``: a node filter for layers kept in float. Returns how many pairs
    were annotated.
    """
    # heavy SDK: imported on first use
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer_utils import (_is_annotated,
                                                                               _mark_nodes_as_annotated)
    from torchao.quantization.pt2e.quantizer import (QuantizationAnnotation, get_bias_qspec, get_input_act_qspec,
                                                     get_output_act_qspec, get_weight_qspec)
    from torchao.quantization.pt2e.quantizer.quantizer import Q_ANNOTATION_KEY
    from torchao.quantization.pt2e.utils import _is_conv_node

    linear = (torch.ops.aten.linear.default,)
    count = 0
    for clamp in gm.graph.nodes:
        if not _is_clamp_node(clamp):
            continue
        op = clamp.args[0]
        if not (_is_conv_node(op) or op.target in linear) or len(op.users) > 1 or (skip and skip(op)):
            continue
        weight = op.args[1]
        bias = op.args[2] if len(op.args) > 2 else None
        qspecs = {op.args[0]: get_input_act_qspec(config), weight: get_weight_qspec(config)}
        partition = [clamp, op, weight]
        if isinstance(bias, torch.fx.Node):
            qspecs[bias] = get_bias_qspec(config)
            partition.append(bias)
        if _is_annotated(partition):
            continue
        op.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(input_qspec_map=qspecs, _annotated=True)
        clamp.meta[Q_ANNOTATION_KEY] = QuantizationAnnotation(output_qspec=get_output_act_qspec(config),
                                                              _annotated=True)
        _mark_nodes_as_annotated(partition)
        count += 1
    return count


def _cache_pattern_exports() -> None:
    """XNNPACK's conv-bn annotators export the same dozen pattern graphs on every prepare (6.5 s of each
    int8 compile here); export each once and hand out copies."""
    # heavy SDK: imported on first use
    from executorch.backends.xnnpack.quantizer import xnnpack_quantizer_utils as utils

    original = getattr(utils, "_get_aten_graph_module_for_pattern", None)
    if original is None or getattr(original, "edgekd_cached", False):
        return
    cache: dict = {}

    def cached(pattern, example_inputs, is_cuda=False, **kwargs):
        fn = getattr(pattern, "fn", None)  # XNNPACK wraps each pattern function in a WrapperModule
        try:
            key = (fn.__code__, tuple(c.cell_contents for c in fn.__closure__ or ()),
                   tuple(tuple(t.shape) for t in example_inputs), is_cuda, tuple(sorted(kwargs.items())))
            hash(key)
        except (AttributeError, TypeError, ValueError):  # not a pattern we know how to key: export it
            return original(pattern, example_inputs, is_cuda, **kwargs)
        if key not in cache:
            cache[key] = original(pattern, example_inputs, is_cuda, **kwargs)
        return copy.deepcopy(cache[key])  # the matcher rewrites its pattern's output node

    cached.edgekd_cached = True
    utils._get_aten_graph_module_for_pattern = cached


def _quantizer(per_channel: bool, calibrator=None, skip=None):
    """XNNPACK's symmetric int8 config; activation ranges from ``calibrator`` (an edgekd calibrator);
    nodes for which ``skip(node)`` is true stay float."""
    # heavy SDK: imported on first use
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)

    _cache_pattern_exports()

    class FusedClampQuantizer(XNNPACKQuantizer):
        """XNNPACK's quantizer, with conv/linear → ReLU6 fused like conv → ReLU (see annotate_fused_clamps)."""

        fused_clamps = 0

        def annotate(self, model):
            if self.global_config is not None:
                self.fused_clamps = annotate_fused_clamps(model, self.global_config, skip)
            return super().annotate(model)

    config = get_symmetric_quantization_config(is_per_channel=per_channel)
    # XNNPACK's config floors every weight scale at 2**-12: a (BatchNorm-folded) channel whose
    # weights stay under 127 * 2**-12 = 0.031 loses most of its levels, or all of them; 7 % of
    # EfficientNet-Lite1's channels do. ONNX Runtime floors at float32 eps; so do we.
    weight = dataclasses.replace(config.weight, observer_or_fake_quant_ctr=config.weight.observer_or_fake_quant_ctr
                                 .p.func.with_args(eps=WEIGHT_SCALE_EPS))
    config = dataclasses.replace(config, weight=weight)
    if calibrator is not None:
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=_observer_class().with_args(
            eps=2**-12, calibrator=calibrator))
        config = config._replace(input_activation=act, output_activation=act) if hasattr(config, "_replace") \
            else dataclasses.replace(config, input_activation=act, output_activation=act)
    quantizer = FusedClampQuantizer().set_global(config)
    return quantizer.set_filter_function(lambda node: not skip(node)) if skip else quantizer


def quantize_pt2e(model: torch.nn.Module, example: tuple, calib: np.ndarray, per_channel: bool = True,
                  batch: int = 1, calibrator=None, bias_correction: bool = False, keep_float=(),
                  only=None) -> torch.nn.Module:
    """PT2E int8 (XNNPACK's symmetric config): prepare, observe the calibration set, convert; with
    ``bias_correction``, take each layer's mean weight-rounding error out of its bias. ``keep_float``:
    module names whose layers stay float; ``only``: quantize just these (a sensitivity probe)."""
    # heavy SDK: imported on first use
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    skip = None
    if only is not None:
        inside = from_layers(only)
        skip = lambda node: not inside(node)  # noqa: E731
    elif keep_float:
        skip = from_layers(keep_float)
    quantizer = _quantizer(per_channel, calibrator, skip)
    prepared = prepare_pt2e(torch.export.export(model, example).module(), quantizer)
    with torch.no_grad():
        for i in range(0, len(calib) - batch + 1, batch):
            prepared(torch.from_numpy(calib[i : i + batch]))
    weights = float_weights(prepared) if bias_correction else {}
    converted = convert_pt2e(prepared)
    converted.edgekd_fused_clamps = quantizer.fused_clamps
    if bias_correction:
        converted.edgekd_bias_correction = correct_biases(converted, weights, calib, batch)
    return converted


def lower(model: torch.nn.Module, example: tuple, path: Path) -> dict:
    """Export, lower to XNNPACK and write the ``.pte``; returns which ops XNNPACK took."""
    # heavy SDK: imported on first use
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    try:
        edge = to_edge_transform_and_lower(torch.export.export(model, example), partitioner=[XnnpackPartitioner()])
    except Exception as exc:  # noqa: BLE001 - export/lowering name the operator that failed
        raise CompileError(f"executorch xnnpack: lowering {type(model).__name__} failed: {exc}") from exc
    delegated, left = 0, {}
    for node in edge.exported_program().graph.nodes:
        if node.op != "call_function":
            continue
        name = getattr(node.target, "__name__", str(node.target))
        if "executorch_call_delegate" in name:
            delegated += 1
        elif not name.startswith("getitem"):
            left[name] = left.get(name, 0) + 1
    write_bytes(path, edge.to_executorch().buffer)
    return {"xnnpack_subgraphs": delegated, "ops_outside_xnnpack": left}


def _method(path: Path):
    require("executorch", "executorch")  # heavy SDK, imported on first use: a missing one names the extra
    # heavy SDK: imported on first use
    from executorch.runtime import Runtime

    return Runtime.get().load_program(str(path)).load_method("forward")


class ExecuTorchRunner(BaseRunner):
    backend = "executorch"

    def __init__(self, artifact: Artifact, threads: int = 1):
        super().__init__(artifact)
        self.method = _method(artifact.path)

    @property
    def batch(self) -> int:
        return self.artifact.static_batch or 1  # a .pte has static shapes

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        return self.method.execute([torch.from_numpy(x)])[0].numpy()


class ExecuTorchBackend(Backend):
    name = "executorch"

    def is_available(self) -> tuple[bool, str]:
        try:
            # heavy SDK: imported on first use
            import executorch.runtime  # noqa: F401
            from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner  # noqa: F401
        except ImportError as exc:
            return False, f"executorch is not importable ({exc}); pip install 'edgekd[executorch]'"
        return True, ""

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        require("executorch.exir", "executorch")
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights not in ("fp32", "int8"):
            raise CompileError(f"executorch xnnpack: weights {fmt.weights} are not supported; use fp32 or int8")
        batch = target.shapes.static_batch  # static always: see the module docstring
        input_shape = tuple(spec.input_shape)
        example = (torch.zeros(batch, *input_shape),)
        model = model.eval().cpu()
        files, details = {}, {"static_batch_reason": "XNNPACK lowering narrows a dynamic batch bound"}
        if not fmt.is_quantized or target.gate.speed_gate:  # the speed gate compares int8 with this fp32 build
            details["fp32_lowering"] = lower(model, example, out_dir / f"model.fp32.b{batch}.pte")
            files["fp32"] = f"model.fp32.b{batch}.pte"
        if fmt.is_quantized:
            calibrator = calibrator_for(recipe.method if recipe else "minmax", recipe.percentile if recipe else 99.99)
            quantized = quantize_pt2e(model, example, np.ascontiguousarray(calib, np.float32),
                                      fmt.weight_granularity == "per_channel", batch, calibrator,
                                      bias_correction=recipe is None or recipe.bias_correction,
                                      keep_float=tuple(keep_float or ()))
            details["quantized_layers"] = quantized_layers(quantized)  # read back from the converted graph
            missing = sorted(set(keep_float or ()) - set(details["quantized_layers"]) - _layer_names(model))
            if missing:
                raise CompileError("executorch xnnpack: keep_float names no layer of the model: "
                                   + ", ".join(missing))
            main = out_dir / f"model.int8.b{batch}.pte"
            details["fused_clamps"] = getattr(quantized, "edgekd_fused_clamps", 0)  # conv/linear → ReLU6 pairs
            if hasattr(quantized, "edgekd_bias_correction"):
                details["bias_correction"] = quantized.edgekd_bias_correction
            details["int8_lowering"] = lower(quantized, example, main)
            details["calibration_note"] = (f"edgekd {calibrator.name} calibrator inside PT2E activation observers "
                                           "(ranges observed on the torch graph's tensors)")
            precision = "int8"
        else:
            main, precision = out_dir / files["fp32"], "fp32"
        files["model"] = main.name
        details["reproducible"] = {"bit_identical": True}  # torch.export + XNNPACK lowering: same bytes
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=batch, files=files, details=details)

    def load(self, artifact: Artifact, threads: int = 1) -> ExecuTorchRunner:
        return ExecuTorchRunner(artifact, threads)

    def load_file(self, path: Path, threads: int = 1):  # noqa: ARG002 - the runtime sizes its own thread pool
        method = _method(path)
        return lambda x: method.execute([torch.from_numpy(x)])


BACKEND = ExecuTorchBackend()


def _layer_names(model: torch.nn.Module) -> set[str]:
    return {name for name, module in model.named_modules()
            if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))}
