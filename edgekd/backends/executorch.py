"""ExecuTorch with the XNNPACK delegate (Android/iOS CPU): ``.pte`` in fp32 and int8 (PT2E).

Shapes are static, one ``.pte`` per batch size: with a dynamic batch, XNNPACK lowering can
narrow the batch bound silently (ExecuTorch 1.5.1: batch ≥ 16 then fails at run time), so the
artifact records its batch and the runner feeds it in chunks of that size.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from edgekd.backends.base import Artifact, check_batch, run_in_static_batches
from edgekd.errors import CompileError, require

log = logging.getLogger(__name__)


def _observer_class():
    """A PT2E activation observer whose range comes from an edgekd calibrator (built lazily: torchao)."""
    from torchao.quantization.pt2e import MinMaxObserver

    from edgekd.calibrate.methods import BINS, TensorStats

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
                from edgekd.calibrate.collect import _accumulate

                _accumulate(stats, values)
                lo, hi = self.calibrator.range(stats, symmetric=False)
                self.min_val.fill_(lo)
                self.max_val.fill_(hi)
                self.kept = []
            return super().calculate_qparams()

    return EdgeKDObserver


def _quantizer(per_channel: bool, calibrator=None):
    """XNNPACK's symmetric int8 config; activation ranges from ``calibrator`` (an edgekd calibrator)."""
    import dataclasses

    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)

    config = get_symmetric_quantization_config(is_per_channel=per_channel)
    if calibrator is not None:
        act = dataclasses.replace(config.input_activation, observer_or_fake_quant_ctr=_observer_class().with_args(
            eps=2**-12, calibrator=calibrator))
        config = config._replace(input_activation=act, output_activation=act) if hasattr(config, "_replace") \
            else dataclasses.replace(config, input_activation=act, output_activation=act)
    return XNNPACKQuantizer().set_global(config)


def quantize_pt2e(model: torch.nn.Module, example: tuple, calib: np.ndarray, per_channel: bool = True,
                  batch: int = 1, calibrator=None) -> torch.nn.Module:
    """PT2E int8 (XNNPACK's symmetric config): prepare, observe the calibration set, convert."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(torch.export.export(model, example).module(), _quantizer(per_channel, calibrator))
    with torch.no_grad():
        for i in range(0, len(calib) - batch + 1, batch):
            prepared(torch.from_numpy(calib[i : i + batch]))
    return convert_pt2e(prepared)


def lower(model: torch.nn.Module, example: tuple, path: Path) -> dict:
    """Export, lower to XNNPACK and write the ``.pte``; returns which ops XNNPACK took."""
    from executorch.backends.xnnpack.partition.xnnpack_partitioner import XnnpackPartitioner
    from executorch.exir import to_edge_transform_and_lower

    from edgekd._io import write_bytes

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


class ExecuTorchRunner:
    backend = "executorch"

    def __init__(self, artifact: Artifact, threads: int = 1):
        from executorch.runtime import Runtime

        self.artifact = artifact
        self.method = Runtime.get().load_program(str(artifact.path)).load_method("forward")

    def _run(self, x: np.ndarray) -> np.ndarray:
        return self.method.execute([torch.from_numpy(x)])[0].numpy()

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = check_batch(x, self.artifact)
        return run_in_static_batches(self._run, x, self.artifact.static_batch or 1)


class ExecuTorchBackend:
    name = "executorch"

    def is_available(self) -> tuple[bool, str]:
        try:
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
            if keep_float:
                raise CompileError("executorch xnnpack: keeping named layers in float is not supported yet")
            from edgekd.calibrate import calibrator_for

            calibrator = calibrator_for(recipe.method if recipe else "minmax", recipe.percentile if recipe else 99.99)
            quantized = quantize_pt2e(model, example, np.ascontiguousarray(calib, np.float32),
                                      fmt.weight_granularity == "per_channel", batch, calibrator)
            main = out_dir / f"model.int8.b{batch}.pte"
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


BACKEND = ExecuTorchBackend()
