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


def _quantizer(per_channel: bool):
    from executorch.backends.xnnpack.quantizer.xnnpack_quantizer import (XNNPACKQuantizer,
                                                                         get_symmetric_quantization_config)

    return XNNPACKQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=per_channel))


def quantize_pt2e(model: torch.nn.Module, example: tuple, calib: np.ndarray, per_channel: bool = True,
                  batch: int = 1) -> torch.nn.Module:
    """PT2E int8 (XNNPACK's symmetric config): prepare, observe the calibration set, convert."""
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    prepared = prepare_pt2e(torch.export.export(model, example).module(), _quantizer(per_channel))
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
        details["fp32_lowering"] = lower(model, example, out_dir / f"model.fp32.b{batch}.pte")
        files["fp32"] = f"model.fp32.b{batch}.pte"
        if fmt.is_quantized:
            if keep_float:
                raise CompileError("executorch xnnpack: keeping named layers in float is not supported yet")
            quantized = quantize_pt2e(model, example, np.ascontiguousarray(calib, np.float32),
                                      fmt.weight_granularity == "per_channel", batch)
            main = out_dir / f"model.int8.b{batch}.pte"
            details["int8_lowering"] = lower(quantized, example, main)
            details["calibration_note"] = ("PT2E observers of XNNPACK's symmetric config on the recipe's samples "
                                           "(ranges are observed on the torch graph, not read from the ONNX cache)")
            precision = "int8"
        else:
            main, precision = out_dir / files["fp32"], "fp32"
        files["model"] = main.name
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=batch, files=files, details=details)

    def load(self, artifact: Artifact, threads: int = 1) -> ExecuTorchRunner:
        return ExecuTorchRunner(artifact, threads)


BACKEND = ExecuTorchBackend()
