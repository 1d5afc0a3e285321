"""Arm Ethos-U NPU: an int8 TFLite model compiled by Arm's Vela, with Vela's cycle/memory estimate.

Route: PT2E int8 (symmetric, per-channel) → LiteRT ``.tflite`` with litert-torch → ``vela``.
Nothing runs here (no Ethos-U board or FVP); the artifact is Vela's optimised ``.tflite`` and the
report carries Vela's estimate as a predicted latency. litert-torch pulls jax and downgrades
typing_extensions (which breaks coremltools), so it lives in its own environment
(``pip install 'edgekd[ethosu]'``); without it the target is "not built here".
"""

from __future__ import annotations

import csv
import logging
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import torch

from edgekd.backends.base import Artifact
from edgekd.errors import CompileError, MissingExtraError, NotRunHere

log = logging.getLogger(__name__)
NO_DEVICE = "not run here: needs an Ethos-U board or Arm's Corstone FVP"
NEEDS_CONVERTER = ("needs litert-torch to write the int8 TFLite that Vela compiles (own environment: it pulls "
                   "jax and downgrades typing_extensions); pip install 'edgekd[ethosu]'")


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def int8_tflite(model: torch.nn.Module, input_shape, calib: np.ndarray, path: Path) -> Path:
    """PT2E symmetric int8 in channel-last layout, written by litert-torch as a ``.tflite``."""
    import litert_torch
    from litert_torch.quantize.pt2e_quantizer import PT2EQuantizer, get_symmetric_quantization_config
    from litert_torch.quantize.quant_config import QuantConfig
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e

    c, h, w = input_shape
    nhwc = litert_torch.to_channel_last_io(model.eval(), args=[0]).eval()
    example = (torch.zeros(1, h, w, c),)
    quantizer = PT2EQuantizer().set_global(get_symmetric_quantization_config(is_per_channel=True, is_dynamic=False))
    prepared = prepare_pt2e(torch.export.export(nhwc, example).module(), quantizer)
    with torch.no_grad():
        for x in calib:
            prepared(torch.from_numpy(np.ascontiguousarray(x.transpose(1, 2, 0)[None], np.float32)))
    converted = convert_pt2e(prepared, fold_quantize=False)
    litert_torch.convert(converted, example, quant_config=QuantConfig(pt2e_quantizer=quantizer)).export(str(path))
    return path


def run_vela(tflite: Path, out_dir: Path, accelerator: str) -> dict:
    """Compile with Vela; returns its summary (cycles, inference time, SRAM) and the output file."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = ["vela", str(tflite), "--accelerator-config", accelerator, "--output-dir", tmp]
        done = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise CompileError(f"ethosu: vela failed ({accelerator}): {(done.stderr or done.stdout)[-600:]}")
        optimised = next(Path(tmp).glob("*_vela.tflite"))
        shutil.copy(optimised, out_dir / "model_vela.tflite")
        summary = next(Path(tmp).glob("*_summary_*.csv"), None)
        row = next(csv.DictReader(summary.open())) if summary else {}
    keep = ("inference_time", "cycles_total", "cycles_npu", "nn_macs", "sram_memory_used",
            "off_chip_flash_memory_used")
    placement = dict(re.findall(r"(CPU|NPU) operators = (\d+)", done.stdout))
    return {"accelerator": accelerator, "summary": {k: row[k] for k in keep if k in row},
            "operators": {k.lower(): int(v) for k, v in placement.items()},
            "vela_version": subprocess.run(["vela", "--version"], capture_output=True, text=True).stdout.strip()}


def tflite_check(model: torch.nn.Module, tflite: Path, x: np.ndarray) -> dict:
    """The int8 TFLite (before Vela) run in LiteRT on the CPU vs torch: the numeric check done here."""
    from ai_edge_litert.interpreter import Interpreter

    it = Interpreter(model_path=str(tflite), num_threads=1)
    it.allocate_tensors()
    i, o = it.get_input_details()[0], it.get_output_details()[0]
    (s_in, z_in), (s_out, z_out) = i["quantization"], o["quantization"]
    outs = []
    for sample in x:
        nhwc = sample.transpose(1, 2, 0)[None]
        it.set_tensor(i["index"], np.clip(np.round(nhwc / s_in) + z_in, -128, 127).astype(np.int8))
        it.invoke()
        outs.append((it.get_tensor(o["index"]).astype(np.float32) - z_out) * s_out)
    logits = np.concatenate(outs).reshape(len(x), -1)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(np.ascontiguousarray(x, np.float32))).numpy()
    return {"runtime": "ai-edge-litert CPU, int8 TFLite before Vela, on the calibration samples", "samples": len(x),
            "top1_agreement_torch": float((logits.argmax(1) == ref.argmax(1)).mean()),
            "max_abs_diff_torch": float(np.abs(logits - ref).max())}


class EthosUBackend:
    name = "ethosu"

    def can_compile(self) -> tuple[bool, str]:
        if shutil.which("vela") is None:
            return False, "needs Arm's Vela compiler; pip install 'edgekd[ethosu]'"
        if not _has("litert_torch"):
            return False, NEEDS_CONVERTER
        return True, ""

    def is_available(self) -> tuple[bool, str]:
        return False, NO_DEVICE

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        ok, why = self.can_compile()
        if not ok:
            raise MissingExtraError("litert-torch (the int8 TFLite converter Vela needs; own environment)", "ethosu")
        fmt, out_dir = target.format, Path(out_dir)
        if fmt.weights != "int8" or fmt.activations != "int8":
            raise CompileError("ethosu: the NPU runs int8 only (weights and activations)")
        input_shape = tuple(spec.input_shape)
        tflite = int8_tflite(model, input_shape, np.asarray(calib, np.float32), out_dir / "model.int8.tflite")
        accelerator = str(target.backend_options.get("accelerator_config", "ethos-u55-128"))
        vela = run_vela(tflite, out_dir, accelerator)
        seconds = float(vela["summary"].get("inference_time", "nan"))
        details = {"vela": vela, "run": NO_DEVICE, "tflite_check": tflite_check(model, tflite, calib[:256]),
                   "predicted_latency_ms": {"ms": seconds * 1000.0, "source": f"Vela estimate, {accelerator}"}}
        return Artifact(path=out_dir / "model_vela.tflite", backend=self.name, target=target.name, precision="int8",
                        input_shape=input_shape, static_batch=1,
                        files={"tflite": tflite.name, "model": "model_vela.tflite"}, details=details)

    def load(self, artifact: Artifact, threads: int = 1):
        raise NotRunHere(f"ethosu: {NO_DEVICE}")


BACKEND = EthosUBackend()
