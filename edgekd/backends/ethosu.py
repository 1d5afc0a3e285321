"""Arm Ethos-U NPU: an int8 TFLite model compiled by Arm's Vela, with Vela's cycle/memory estimate.

Route: static-batch fp32 ONNX → edgekd's calibrators (the target's recipe) → int8 TFLite written by
:mod:`edgekd.backends.tflite_int8` (TFLite int8 spec: asymmetric activations, symmetric per-channel
weights, int8 NHWC input and output) → ``vela``. Everything installs beside torch
(``pip install 'edgekd[ethosu]'``: ethos-u-vela, ai-edge-litert, tflite-micro), so ``build --all``
builds it.
The artifact folder also holds ``model_vela.h``: the compiled model as a 16-byte-aligned C++ array
with its int8 I/O quantization, labels and preprocessing, what firmware compiles in.

Nothing runs on an Ethos-U here (no board, no Corstone FVP): the target is "not run here" and
Vela's estimate is its predicted latency. As a reference check, the int8 TFLite that Vela compiled
runs in TensorFlow Lite Micro (the runtime on the Cortex-M beside the NPU; ``tflite-micro``), or in
LiteRT's reference kernels where TFLM is not installed; its accuracy and agreement are reported as
such, never as the device's.
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgekd._io import write_bytes, write_text
from edgekd.backends.base import Artifact, Backend
from edgekd.backends.tflite_int8 import onnx_to_int8_tflite
from edgekd.backends.tflite_runtime import LiteRTRunner, reference_runner
from edgekd.calibrate import calibrate, calibrator_for, write_cache
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError, MissingExtraError, NotRunHere
from edgekd.onnx_export import export_onnx, op_inventory

log = logging.getLogger(__name__)
NO_DEVICE = "not run here: needs an Ethos-U board or Arm's Corstone FVP"
REFERENCE = "{} on this CPU, the int8 TFLite before Vela (not the NPU)"
TFLITE = "model.int8.tflite"
VELA_OUT = "model_vela.tflite"
HEADER = "model_vela.h"  # the same bytes as a C++ array, for firmware


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _vela_command() -> list[str] | None:
    """Vela as a command; the ``vela`` script may be off PATH in a venv run without activation."""
    beside = Path(sys.executable).parent / "vela"
    found = shutil.which("vela") or (str(beside) if beside.exists() else None)
    return [found] if found else None


def int8_tflite(fp32_onnx: Path, calib: np.ndarray, out_path: Path, recipe=None, cache_path: Path | None = None):
    """Calibrate ``fp32_onnx`` (static batch 1) with the recipe and write its int8 TFLite."""
    method = recipe.method if recipe else "minmax"
    calibrator = calibrator_for(method, recipe.percentile if recipe else 99.99)
    ranges = calibrate(fp32_onnx, calib, calibrator, symmetric=False, batch=1, static=True)
    if cache_path is not None:
        write_cache(ranges, cache_path)
    return onnx_to_int8_tflite(fp32_onnx, ranges.ranges, out_path)


def run_vela(tflite: Path, out_dir: Path, accelerator: str, system_config: str | None = None,
             memory_mode: str | None = None) -> dict:
    """Compile with Vela; returns its summary (cycles, inference time, SRAM) and operator placement."""
    vela = _vela_command()
    if vela is None:
        raise MissingExtraError("ethos-u-vela (Arm's Vela compiler)", "ethosu")
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [*vela, str(tflite), "--accelerator-config", accelerator, "--output-dir", tmp]
        if system_config:
            cmd += ["--system-config", system_config]
        if memory_mode:
            cmd += ["--memory-mode", memory_mode]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CompileError(f"ethosu: vela failed ({accelerator}): {(done.stderr or done.stdout)[-600:]}")
        optimised = next(Path(tmp).glob("*_vela.tflite"))
        write_bytes(out_dir / VELA_OUT, optimised.read_bytes())
        summary = next(Path(tmp).glob("*_summary_*.csv"), None)
        row = {}
        if summary is not None:
            with summary.open() as f:
                row = next(csv.DictReader(f), {})
    keep = ("inference_time", "cycles_total", "cycles_npu", "nn_macs", "sram_memory_used",
            "off_chip_flash_memory_used", "system_config", "memory_mode")
    placement = {k.lower(): int(v) for k, v in re.findall(r"(CPU|NPU) operators = (\d+)", done.stdout)}
    version = subprocess.run([*vela, "--version"], capture_output=True, text=True).stdout.strip()
    return {"accelerator": accelerator, "summary": {k: row[k] for k in keep if k in row},
            "operators": placement, "vela_version": version}


def tflite_check(model: torch.nn.Module, tflite: Path, x: np.ndarray) -> dict:
    """The int8 TFLite in the reference runtime vs the torch model on the calibration samples (compile-time)."""
    runner, label = reference_runner(tflite)
    logits = runner(x)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
    return {"runtime": REFERENCE.format(label) + ", on the calibration samples", "samples": len(x),
            "top1_agreement_torch": float((logits.argmax(1) == ref.argmax(1)).mean()),
            "max_abs_diff_torch": float(np.abs(logits - ref).max())}


def _io_spec(tflite: Path) -> dict:
    """What firmware feeds and reads: int8 NHWC tensors and their scale/zero point."""
    r = LiteRTRunner(tflite)
    return {"layout": "NHWC", "dtype": "int8", "input_shape": [int(d) for d in r.input_shape],
            "input_scale": r.q_in.scale, "input_zero_point": r.q_in.zero_point,
            "output_scale": r.q_out.scale, "output_zero_point": r.q_out.zero_point}


def c_header(model: bytes, io: dict, spec, target: str, vela_version: str) -> str:
    """The Vela model as a C++ header for firmware (TFLite Micro + the Ethos-U driver): the bytes
    16-byte aligned (TFLM and the NPU read tensors in place), int8 I/O quantization and the
    preprocessing, so the firmware needs no other file."""
    def floats(values) -> str:
        return ", ".join(f"{float(v)!r}f" for v in values)

    labels = ", ".join('"' + str(label).replace("\\", "\\\\").replace('"', '\\"') + '"' for label in spec.labels)
    rows = [", ".join(f"0x{b:02x}" for b in model[i : i + 16]) for i in range(0, len(model), 16)]
    _, h, w, c = io["input_shape"]
    return "\n".join([
        f"// Generated by edgekd for target {target} ({vela_version}); do not edit.",
        "// Input: int8 NHWC, q = round(x / kInputScale) + kInputZeroPoint, where x = (pixel * kPixelScale - mean) / std.",
        "// Output: int8 logits, logit = (q - kOutputZeroPoint) * kOutputScale.",
        "#pragma once",
        "#include <cstdint>",
        "",
        "namespace edgekd_model {",
        f"constexpr int kInputHeight = {h}, kInputWidth = {w}, kInputChannels = {c}, kNumClasses = {len(spec.labels)};",
        f"constexpr float kInputScale = {float(io['input_scale'])!r}f;",
        f"constexpr int kInputZeroPoint = {int(io['input_zero_point'])};",
        f"constexpr float kOutputScale = {float(io['output_scale'])!r}f;",
        f"constexpr int kOutputZeroPoint = {int(io['output_zero_point'])};",
        f"constexpr float kPixelScale = {float(spec.scale)!r}f;",
        f"constexpr float kMean[] = {{{floats(spec.mean)}}};",
        f"constexpr float kStd[] = {{{floats(spec.std)}}};",
        f"constexpr bool kInvert = {'true' if spec.invert else 'false'};",
        f"constexpr const char* kLabels[] = {{{labels}}};",
        f"constexpr unsigned int kModelLength = {len(model)};",
        "alignas(16) const unsigned char kModel[] = {",
        *[f"  {row}," for row in rows],
        "};",
        "}  // namespace edgekd_model",
        "",
    ])


class EthosUBackend(Backend):
    name = "ethosu"

    def can_compile(self) -> tuple[bool, str]:
        if _vela_command() is None:
            return False, "needs Arm's Vela compiler; pip install 'edgekd[ethosu]'"
        if not _has("ai_edge_litert"):
            return False, "needs ai-edge-litert (TFLite schema and reference runtime); pip install 'edgekd[ethosu]'"
        return True, ""

    def is_available(self) -> tuple[bool, str]:
        return False, NO_DEVICE

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        ok, why = self.can_compile()
        if not ok:
            raise MissingExtraError("ethos-u-vela or ai-edge-litert", "ethosu")
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights != "int8" or fmt.activations != "int8":
            raise CompileError("ethosu: the NPU runs int8 only (weights and activations)")
        if keep_float:
            raise CompileError("ethosu: layers kept in float would run on the Cortex-M, not the NPU; not supported")
        input_shape = tuple(spec.input_shape)
        calib = np.asarray(calib, np.float32)
        fp32 = export_onnx(model, input_shape, out_dir / "model.fp32.onnx", static_batch=1)
        tflite = int8_tflite(fp32, calib, out_dir / TFLITE, recipe, out_dir / CACHE_FILENAME)
        options = target.backend_options
        accelerator = str(options.get("accelerator_config", "ethos-u55-128"))
        vela = run_vela(tflite, out_dir, accelerator, options.get("system_config"), options.get("memory_mode"))
        if vela["operators"].get("cpu", 0):
            log.warning("ethosu: %d operators fall back to the Cortex-M (see vela's report)", vela["operators"]["cpu"])
        seconds = float(vela["summary"].get("inference_time", "nan"))
        details = {"vela": vela, "run": NO_DEVICE, "exported_ops": op_inventory(fp32), "io": _io_spec(tflite),
                   "tflite_check": tflite_check(model, tflite, calib[:256]),
                   "predicted_latency_ms": {"ms": seconds * 1000.0, "source": f"Vela estimate, {accelerator}"},
                   "reproducible": {"bit_identical": True}}  # our writer and Vela: same bytes for same inputs
        write_text(out_dir / HEADER, c_header((out_dir / VELA_OUT).read_bytes(), details["io"], spec, target.name,
                                              vela["vela_version"]))
        return Artifact(path=out_dir / VELA_OUT, backend=self.name, target=target.name, precision="int8",
                        input_shape=input_shape, static_batch=1,
                        files={"fp32": fp32.name, "tflite": TFLITE, "model": VELA_OUT, "c_header": HEADER,
                               "calibration_cache": CACHE_FILENAME}, details=details)

    def load(self, artifact: Artifact, threads: int = 1):
        raise NotRunHere(f"ethosu: {NO_DEVICE}")

    def reference(self, artifact: Artifact, threads: int = 1):
        """(runner, label) for the int8 TFLite Vela compiled, in TFLite Micro (or LiteRT) on this CPU."""
        runner, label = reference_runner(Path(artifact.folder) / artifact.files.get("tflite", TFLITE), threads)
        return runner, REFERENCE.format(label)


BACKEND = EthosUBackend()
