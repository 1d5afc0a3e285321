"""Core ML (iOS/macOS): ``.mlpackage`` ML programs in fp16 and with int8 weights.

Conversion and weight compression run on Linux with coremltools; predictions need macOS, so
here the artifact is checked by its operator list and sizes and the report says "not run here:
needs macOS" (coremltools: "Model prediction is only supported on macOS").

Reproducibility: each saved ``.mlpackage`` is made bit-identical across builds from the same
model, data and tool versions (checked with coremltools 9.0); ``details["reproducible"]`` says so
or why not. coremltools leaves three things that differ: ``Manifest.json`` keys its items by
random UUIDs (libmodelpackage's ``uuid_generate``), so they are replaced by UUID5s of each item's
path and bytes; ``model.mlmodel`` writes its protobuf maps (e.g. ``userDefined`` metadata) in an
order that changes from process to process, so it is re-serialized with sorted map entries (the
same message); and its ``conversion_date`` metadata is today's date, so it is dropped, or set
from ``SOURCE_DATE_EPOCH`` when that is set. The weights file was already identical.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
import os
import platform
import shutil
import uuid
import warnings
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import torch

from edgekd._io import write_bytes
from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.errors import CompileError, NotRunHere, require

log = logging.getLogger(__name__)
NOT_MACOS = "not run here: Core ML predictions need macOS (coremltools predicts only on macOS 10.13+)"
DATE_KEY = "com.github.apple.coremltools.conversion_date"
ITEM_ID_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "edgekd:coreml:mlpackage-item")
REPRODUCIBLE_HOW = ("Manifest.json item ids are UUID5s of each item's path and bytes; model.mlmodel is "
                    "re-serialized with sorted map entries and without conversion_date (or with "
                    "SOURCE_DATE_EPOCH's date)")


def _tree_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file())


def _tree_digest(path: Path) -> str:
    """sha256 of a file, or of a folder's relative file names and file bytes."""
    digest = hashlib.sha256()
    for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f.relative_to(path).as_posix().encode() + b"\0" + hashlib.sha256(f.read_bytes()).digest())
    return digest.hexdigest()


def _rewrite(path: Path, data: bytes) -> None:
    """Replace a package file atomically, keeping its mode (the atomic write would leave 0600)."""
    mode = path.stat().st_mode & 0o777
    write_bytes(path, data)
    path.chmod(mode)


def _stable_spec(model_file: Path) -> None:
    """Re-serialize the model protobuf with sorted map entries; drop or pin ``conversion_date``."""
    # heavy SDK: imported on first use
    from coremltools.proto import Model_pb2

    spec = Model_pb2.Model()
    spec.ParseFromString(model_file.read_bytes())
    meta = spec.description.metadata.userDefined
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    if epoch:
        try:
            meta[DATE_KEY] = datetime.fromtimestamp(int(epoch), timezone.utc).date().isoformat()
        except ValueError as exc:
            raise CompileError(f"coreml: SOURCE_DATE_EPOCH={epoch!r} is not a Unix time in seconds") from exc
    elif DATE_KEY in meta:
        del meta[DATE_KEY]
    _rewrite(model_file, spec.SerializeToString(deterministic=True))


def make_reproducible(package: Path) -> dict:
    """Rewrite a saved ``.mlpackage`` so that the same model gives the same bytes; says if it could."""
    manifest_file = Path(package) / "Manifest.json"
    manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
    entries, root = manifest.get("itemInfoEntries", {}), manifest.get("rootModelIdentifier")
    if root not in entries:
        return {"bit_identical": False, "why": f"{Path(package).name}/Manifest.json names no root model item"}
    _stable_spec(Path(package) / "Data" / entries[root]["path"])
    ids = {old: str(uuid.uuid5(ITEM_ID_NAMESPACE, "\0".join(
        (info["author"], info["name"], info["path"], _tree_digest(Path(package) / "Data" / info["path"])))))
        for old, info in entries.items()}
    rewritten = {**manifest, "itemInfoEntries": {ids[old]: info for old, info in entries.items()},
                 "rootModelIdentifier": ids[root]}
    elsewhere = json.dumps([{k: v for k, v in manifest.items() if k not in ("itemInfoEntries", "rootModelIdentifier")},
                            list(entries.values())])
    if len(set(ids.values())) != len(ids) or any(old in elsewhere for old in ids):
        return {"bit_identical": False, "why": f"{Path(package).name}/Manifest.json refers to its random item ids "
                                               "outside itemInfoEntries keys and rootModelIdentifier; left as written"}
    text = json.dumps(rewritten, indent=4, sort_keys=True, ensure_ascii=False) + "\n"  # libmodelpackage's layout
    _rewrite(manifest_file, text.encode("utf-8"))
    return {"bit_identical": True}


def mil_ops(ml) -> dict[str, int]:
    """Operator counts of the ML program's main function (what Core ML will schedule)."""
    counts: dict[str, int] = {}

    def walk(block):
        for op in block.operations:
            counts[op.op_type] = counts.get(op.op_type, 0) + 1
            for inner in getattr(op, "blocks", []):
                walk(inner)

    walk(ml._mil_program.functions["main"])
    return dict(sorted(counts.items()))


def convert(model: torch.nn.Module, input_shape, batch: int, precision: str):
    """torch → Core ML ML program (iOS 17), fp16 or fp32 compute."""
    ct = require("coremltools", "coreml")
    example = torch.zeros(batch, *input_shape)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(model.eval().cpu(), example)
        try:
            return ct.convert(traced, inputs=[ct.TensorType(name="input", shape=tuple(example.shape))],
                              convert_to="mlprogram", minimum_deployment_target=ct.target.iOS17,
                              compute_precision=ct.precision.FLOAT16 if precision == "fp16"
                              else ct.precision.FLOAT32)
        except Exception as exc:  # noqa: BLE001 - coremltools names the torch op it cannot convert
            raise CompileError(f"coreml: conversion of {type(model).__name__} failed: {exc}") from exc


def int8_weights(ml):
    """Per-channel symmetric int8 weights (activations stay fp16): ``linear_quantize_weights``."""
    # heavy SDK: imported on first use
    import coremltools.optimize as cto

    config = cto.coreml.OptimizationConfig(global_config=cto.coreml.OpLinearQuantizerConfig(
        mode="linear_symmetric", dtype="int8", granularity="per_channel"))
    return cto.coreml.linear_quantize_weights(ml, config)


def w8a8(model: torch.nn.Module, input_shape, calib: np.ndarray) -> torch.nn.Module:
    """int8 weights and activations with coremltools' torch-side LinearQuantizer, calibrated on ``calib``."""
    # heavy SDK: imported on first use
    from coremltools.optimize.torch.quantization import LinearQuantizer, LinearQuantizerConfig

    config = LinearQuantizerConfig.from_dict({"global_config": {"quantization_scheme": "symmetric"}})
    quantizer = LinearQuantizer(copy.deepcopy(model).eval(), config)
    prepared = quantizer.prepare(example_inputs=(torch.zeros(1, *input_shape),))
    prepared.eval()
    with torch.no_grad():
        for i in range(0, len(calib), 32):
            prepared(torch.from_numpy(np.ascontiguousarray(calib[i : i + 32], np.float32)))
    return quantizer.finalize().eval()


class CoreMLRunner(BaseRunner):
    backend = "coreml"
    batch = 1  # the ML program is converted with a batch of 1: one prediction per sample

    def __init__(self, artifact: Artifact, threads: int = 1):
        if platform.system() != "Darwin":
            raise NotRunHere(f"coreml: {NOT_MACOS}")
        ct = require("coremltools", "coreml")
        super().__init__(artifact)
        self.model = ct.models.MLModel(str(artifact.path))

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(next(iter(self.model.predict({"input": x}).values())), np.float32).reshape(len(x), -1)


class CoreMLBackend(Backend):
    name = "coreml"

    def can_compile(self) -> tuple[bool, str]:
        try:
            # heavy SDK: imported on first use
            import coremltools  # noqa: F401
        except ImportError as exc:
            return False, f"coremltools is not importable ({exc}); pip install 'edgekd[coreml]'"
        return True, ""

    def is_available(self) -> tuple[bool, str]:
        ok, why = self.can_compile()
        if not ok:
            return ok, why
        return (True, "") if platform.system() == "Darwin" else (False, NOT_MACOS)

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights not in ("fp32", "fp16", "int8"):
            raise CompileError(f"coreml: weights {fmt.weights} are not supported here; use fp16, fp32 or int8")
        input_shape = tuple(spec.input_shape)
        base = convert(model, input_shape, 1, "fp32" if fmt.activations == "fp32" else "fp16")
        files, details = {}, {"compute_precision": "fp32" if fmt.activations == "fp32" else "fp16",
                              "minimum_deployment_target": "iOS17", "prediction": NOT_MACOS}
        fp16_path = out_dir / "model.fp16.mlpackage"
        saved = {fp16_path.name: self._save(base, fp16_path)}
        files["fp16"], details["ops"] = fp16_path.name, mil_ops(base)
        details["sizes_bytes"] = {"fp16": _tree_bytes(fp16_path)}
        if fmt.weights == "int8":
            if keep_float:
                raise CompileError("coreml: keeping named layers in float is not supported yet")
            quantized = int8_weights(base)
            main = out_dir / "model.int8w.mlpackage"
            saved[main.name] = self._save(quantized, main)
            details["ops_int8w"] = mil_ops(quantized)
            details["sizes_bytes"]["int8_weights"] = _tree_bytes(main)
            details["quantization"] = "int8 per-channel symmetric weights, fp16 activations (W8A16)"
            if target.backend_options.get("w8a8", False):
                both = convert(w8a8(model, input_shape, calib), input_shape, 1, "fp16")
                saved["model.w8a8.mlpackage"] = self._save(both, out_dir / "model.w8a8.mlpackage")
                files["w8a8"] = "model.w8a8.mlpackage"
                details["ops_w8a8"] = mil_ops(both)
                details["sizes_bytes"]["w8a8"] = _tree_bytes(out_dir / "model.w8a8.mlpackage")
            precision = "int8w"
        else:
            main, precision = fp16_path, details["compute_precision"]
        files["model"] = main.name
        why = [r["why"] for r in saved.values() if not r["bit_identical"]]
        details["reproducible"] = ({"bit_identical": False, "why": "; ".join(why)} if why
                                   else {"bit_identical": True, "how": REPRODUCIBLE_HOW})
        return Artifact(path=main, backend=self.name, target=target.name, precision=precision,
                        input_shape=input_shape, static_batch=1, files=files, details=details)

    @staticmethod
    def _save(ml, path: Path) -> dict:
        if path.exists():
            shutil.rmtree(path)
        ml.save(str(path))
        return make_reproducible(path)

    def load(self, artifact: Artifact, threads: int = 1) -> CoreMLRunner:
        return CoreMLRunner(artifact, threads)


BACKEND = CoreMLBackend()
