"""Export a torch model to ONNX (BatchNorm folded, dynamic or static batch)."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import onnx
import torch
from torch import nn

from edgekd._io import write_bytes
from edgekd.errors import CompileError

OPSET = 17
INPUT_NAME, OUTPUT_NAME = "input", "logits"


def export_onnx(model: nn.Module, input_shape, path: Path, static_batch: int | None = None) -> Path:
    """Write ``model`` as ONNX at ``path``; batch axis symbolic unless ``static_batch`` is given.

    Uses the TorchScript-based exporter: fast, and byte-for-byte deterministic for a given model,
    which the reproducibility check of builds relies on.
    """
    data = onnx_bytes(model.eval().cpu(), input_shape, static_batch)
    onnx.checker.check_model(onnx.load_from_string(data))
    return write_bytes(path, data)


def onnx_bytes(model: nn.Module, input_shape, static_batch: int | None = None, *, what: str = "ONNX export",
               constant_folding: bool = True) -> bytes:
    """The serialized ONNX model of ``model`` with our input/output names and batch policy."""
    example = torch.zeros(static_batch or 2, *input_shape)
    dynamic = None if static_batch else {INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}
    buffer = io.BytesIO()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (example,), buffer, dynamo=False, opset_version=OPSET,
                              input_names=[INPUT_NAME], output_names=[OUTPUT_NAME], dynamic_axes=dynamic,
                              do_constant_folding=constant_folding, keep_initializers_as_inputs=False)
    except Exception as exc:  # noqa: BLE001 - the exporter raises many types; name the model
        raise CompileError(f"{what} of {type(model).__name__} failed: {exc}") from exc
    return buffer.getvalue()


def op_inventory(path: Path) -> dict[str, int]:
    """How many nodes of each operator type a model file holds."""
    counts: dict[str, int] = {}
    for node in onnx.load(str(path)).graph.node:
        counts[node.op_type] = counts.get(node.op_type, 0) + 1
    return dict(sorted(counts.items()))
