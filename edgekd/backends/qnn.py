"""Qualcomm Hexagon NPU (HTP) through the ``onnxruntime-qnn`` execution-provider plugin.

On x86-64 Linux the plugin runs the HTP backend in emulation: right numbers, not device speed.
The model is a static-shape QDQ ONNX (QNN cannot take a symbolic batch) and the session disables
the CPU fallback, so a node the HTP cannot take fails the session instead of silently running on
the CPU. Optionally a precompiled context binary (``EPContext`` ONNX + ``.bin``) is written.

Reproducibility: every file is bit-identical across builds from the same model, data and tool
versions (checked with onnxruntime-qnn 2.7.0 / QAIRT 2.51). Two things made the context differ,
and both are avoided: ORT names the ``EPContext`` node (also stored inside the ``.bin``) with a
hash of the path the model was loaded from, a random staging folder, so the session is made from
the model's bytes (ORT then hashes the graph's tensor names); and the HTP backend numbers graphs
and tensors with process-wide counters (``PICKLE/256/`` becomes ``257`` for the next context), so
the context is written by a fresh Python process. ``details["reproducible"]`` records this.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from edgekd._io import write_bytes
from edgekd.backends.base import Artifact, Backend, BaseRunner
from edgekd.calibrate.cache import CACHE_FILENAME
from edgekd.errors import CompileError, require
from edgekd.ort_session import ort_session, session_options

log = logging.getLogger(__name__)
_REGISTERED: set[str] = set()
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # so the child process imports this same edgekd
CONTEXT_REPRODUCIBLE = ("context made from the model's bytes (no staging path in its node name) in a fresh "
                        "process (the HTP backend's graph and tensor ids are process-wide counters)")


def _qnn_devices():
    import onnxruntime as ort  # heavy SDK (and its QNN plugin): imported on first use

    oq = require("onnxruntime_qnn", "qnn")
    name = oq.get_ep_name()
    if name not in _REGISTERED:
        ort.register_execution_provider_library(name, oq.get_library_path())
        _REGISTERED.add(name)
    return [d for d in ort.get_ep_devices() if d.ep_name == name]


def htp_session(path: Path, backend_type: str = "htp", threads: int = 1, context_out: Path | None = None):
    """An ONNX Runtime session whose every node must run on QNN's ``backend_type`` (no CPU fallback).

    With ``context_out`` the model is read as bytes: ORT names the ``EPContext`` node with a hash of
    the path it loaded, so a path would make the context depend on the folder it was built in.
    """
    devices = _qnn_devices()
    if not devices:
        raise CompileError("qnn: onnxruntime-qnn registered no QNN device")
    so = session_options(threads, sequential=False, quiet=True)
    so.add_provider_for_devices(devices, {"backend_type": backend_type})
    so.add_session_config_entry("session.disable_cpu_ep_fallback", "1")
    if context_out is not None:
        so.add_session_config_entry("ep.context_enable", "1")
        so.add_session_config_entry("ep.context_file_path", str(context_out))
    try:
        return ort_session(Path(path).read_bytes() if context_out is not None else path, providers=None, options=so)
    except Exception as exc:  # noqa: BLE001 - ORT names the node QNN rejected
        raise CompileError(f"qnn {backend_type}: not every node runs on the HTP (CPU fallback is disabled): "
                           f"{str(exc).strip()[:600]}") from exc


class QnnRunner(BaseRunner):
    backend = "qnn"

    def __init__(self, artifact: Artifact, threads: int = 1):
        super().__init__(artifact)
        self.session = htp_session(Path(artifact.path), artifact.details.get("backend_type", "htp"), threads)
        self.input_name = self.session.get_inputs()[0].name

    @property
    def batch(self) -> int:
        return self.artifact.static_batch or 1  # QNN graphs have static shapes

    def run_batch(self, x: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: x})[0]


class QnnBackend(Backend):
    """int8 QDQ (uint8 or int8 activations, int8 per-channel weights) on the HTP; static batch."""

    name = "qnn"
    # On x86 the HTP backend is an emulator (~4 s per 224×224 image): validation is capped at
    # edgekd.validate.EMULATED_VALIDATE_SAMPLES, with a progress bar and an estimated time.
    emulated = True

    def is_available(self) -> tuple[bool, str]:
        try:
            devices = _qnn_devices()
        except Exception as exc:  # noqa: BLE001 - missing plugin or an ORT without plugin EPs
            return False, str(exc).splitlines()[0]
        return (True, "") if devices else (False, "onnxruntime-qnn found no QNN device")

    def compile(self, model, target, calib, out_dir: Path, spec, recipe=None, keep_float=None) -> Artifact:
        # torch, onnx and the quantizer: not needed by the context child, which imports this module
        from edgekd.onnx_export import export_onnx, op_inventory
        from edgekd.quant.qdq import QDQConfig, qdq_summary, quantize_onnx

        fmt, out_dir = target.format, Path(out_dir)
        if not fmt.is_quantized or fmt.weights != "int8":
            raise CompileError(f"qnn htp: weights {fmt.weights} are not supported here; the HTP target is int8")
        if keep_float:
            raise CompileError("qnn htp: layers cannot stay in float with the CPU fallback disabled")
        static = target.shapes.static_batch  # QNN needs static shapes whatever the target says
        input_shape = tuple(spec.input_shape)
        fp32 = export_onnx(model, input_shape, out_dir / "model.fp32.onnx", static)
        main = quantize_onnx(fp32, out_dir / "model.onnx", calib, QDQConfig.from_target(target, recipe),
                             static_batch=static, cache_path=out_dir / CACHE_FILENAME)
        backend_type = str(target.backend_options.get("backend_type", "htp"))
        details = {"exported_ops": op_inventory(fp32), **qdq_summary(main), "backend_type": backend_type,
                   "cpu_fallback": "disabled"}
        files = {"fp32": fp32.name, "model": main.name, "calibration_cache": CACHE_FILENAME}
        details["reproducible"] = {"bit_identical": True}  # the ONNX files: same export and QDQ bytes
        if target.backend_options.get("context_binary", False):
            files.update(self._context_binary(main, out_dir, backend_type))
            details["reproducible"]["how"] = CONTEXT_REPRODUCIBLE
        else:
            htp_session(main, backend_type)  # proves every node is taken by the HTP, or raises
        details["htp_check"] = "every node accepted by QNN " + backend_type + " (CPU fallback disabled)"
        return Artifact(path=main, backend=self.name, target=target.name, precision="int8",
                        input_shape=input_shape, static_batch=static, files=files, details=details)

    @staticmethod
    def _context_binary(main: Path, out_dir: Path, backend_type: str) -> dict:
        """Precompile the graph for the HTP: an ``EPContext`` ONNX plus the QNN context ``.bin``.

        Written by a fresh Python process: in this one, any earlier QNN graph would shift the HTP
        backend's graph and tensor ids stored in the ``.bin``.
        """
        with tempfile.TemporaryDirectory() as tmp:
            ctx = Path(tmp) / "model_ctx.onnx"
            code = ("import sys; from pathlib import Path; from edgekd.backends.qnn import htp_session; "
                    "htp_session(Path(sys.argv[1]), sys.argv[2], context_out=Path(sys.argv[3]))")
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(
                p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH", "")) if p)}
            done = subprocess.run([sys.executable, "-c", code, str(main), backend_type, str(ctx)], env=env,
                                  capture_output=True, text=True)
            if done.returncode != 0 or not ctx.exists():
                at = done.stderr.rfind("CompileError: ")  # the child's htp_session message, as in-process
                raise CompileError(done.stderr[at + 14:].strip() if at >= 0 else
                                   f"qnn {backend_type}: writing the context binary failed: "
                                   f"{done.stderr.strip()[-600:] or 'no output'}")
            written = {"context": ctx.name}
            for f in sorted(Path(tmp).iterdir()):
                write_bytes(out_dir / f.name, f.read_bytes())
                if f.suffix == ".bin":
                    written["context_binary"] = f.name
        return written

    def load(self, artifact: Artifact, threads: int = 1) -> QnnRunner:
        return QnnRunner(artifact, threads)


BACKEND = QnnBackend()
