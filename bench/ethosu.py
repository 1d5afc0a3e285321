"""Ethos-U route: accuracy of edgekd's int8 TFLite vs torch and vs ONNX Runtime's int8, Vela estimates.

Per student (trained --epochs on mnist5k, 28×28): torch fp32 top-1; the int8 TFLite written by
edgekd (minmax, 256 calibration samples) run in LiteRT's reference kernels; the int8 QDQ ONNX of
the x86 target (same calibrator, ONNX Runtime's quantizer) in ONNX Runtime; Vela's operator
placement and latency estimate per accelerator config; and the search's Vela latency model
(seeded weights) vs the estimate of the trained artifact. Nothing here runs on an NPU.
Writes bench/results/ethosu.json.

    nice -n 10 python bench/ethosu.py [--epochs 2]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import edgekd
from edgekd.backends.ethosu import run_vela
from edgekd.backends.tflite_runtime import LiteRTRunner
from edgekd.hw.vela import VelaLatencyModel
from edgekd.schema.student import card_of
from edgekd.targets import load_target
from edgekd.validate.metrics import accuracy, agreement

STUDENTS = {
    "resnet (1,1,1)/(16,32,64)": {"name": "resnet"},
    "resnet (2,2,2)/(16,32,64)": {"name": "resnet", "depths": (2, 2, 2)},
    "resnet (1,1,1)/(8,16,32)": {"name": "resnet", "widths": (8, 16, 32)},
    "mobilenetv2 default": {"name": "mobilenetv2"},
}
ACCELERATORS = ["ethos-u55-64", "ethos-u55-128", "ethos-u55-256", "ethos-u65-256"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    from edgekd.data import load_dataset, split
    from edgekd.distill import TrainConfig, fit
    from edgekd.distill.losses import CE
    from edgekd.models import create_student

    bundle = load_dataset("mnist5k")
    val, train = split(bundle.train, 1000, seed=0)
    xv, yv = val.numpy()
    calib = (train.x.numpy(), train.y.numpy())
    target = load_target("ethos-u55")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, arch in STUDENTS.items():
            torch.manual_seed(0)
            kwargs = {k: v for k, v in arch.items() if k != "name"}
            model = create_student(arch["name"], train.input_shape, 10, **kwargs)
            fit(model, train, None, CE(), None, TrainConfig(epochs=args.epochs, lr=3e-3, progress=False))
            model.eval()
            with torch.no_grad():
                ref = model(torch.from_numpy(xv)).numpy()
            out = Path(tmp) / label.replace(" ", "_").replace("/", "-")
            started = time.perf_counter()
            artifact = edgekd.compile(model, target, calib, out)
            compile_s = time.perf_counter() - started
            tflite = artifact.folder / artifact.files["tflite"]
            logits = LiteRTRunner(tflite)(xv)
            ort = edgekd.compile(model, "x86-cpu-onnxruntime", calib, out)
            ort_logits = edgekd.load(ort.path)(xv)
            estimates = {}
            for acc in ACCELERATORS:
                vela = run_vela(tflite, Path(tmp), acc)
                estimates[acc] = {"ms": float(vela["summary"]["inference_time"]) * 1000.0,
                                  "npu_ops": vela["operators"].get("npu"), "cpu_ops": vela["operators"].get("cpu"),
                                  "sram_kib": float(vela["summary"].get("sram_memory_used", "nan")),
                                  "flash_kib": float(vela["summary"].get("off_chip_flash_memory_used", "nan"))}
            model_ms = VelaLatencyModel(target).predict_ms(card_of(model).arch, train.input_shape)
            built_ms = artifact.details["predicted_latency_ms"]["ms"]
            row = {"student": label, "arch": card_of(model).arch, "torch_fp32_top1": accuracy(ref, yv),
                   "tflite_int8_top1": accuracy(logits, yv), "tflite_agreement_torch": agreement(logits, ref),
                   "tflite_max_abs_diff": float(np.abs(logits - ref).max()),
                   "ort_int8_top1": accuracy(ort_logits, yv), "ort_agreement_torch": agreement(ort_logits, ref),
                   "tflite_kib": tflite.stat().st_size / 1024, "vela_kib": artifact.size_bytes / 1024,
                   "compile_s": compile_s, "vela": estimates,
                   "latency_model_ms": model_ms, "latency_model_error_pct": 100 * (model_ms - built_ms) / built_ms}
            rows.append(row)
            print(json.dumps(row, default=str))
    result = {"dataset": "mnist5k", "val": len(yv), "calibration": "minmax-256", "epochs": args.epochs,
              "tflite_runtime": "ai-edge-litert reference kernels (BUILTIN_REF), CPU", "rows": rows,
              "note": "Vela estimates, not device measurements; accuracy of the int8 graph, not of an NPU run"}
    path = Path(__file__).parent / "results" / "ethosu.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(result, indent=2, default=str))
    for r in rows:
        u55 = r["vela"]["ethos-u55-128"]
        print(f"{r['student']:28s} torch {r['torch_fp32_top1']:.4f}  tflite int8 {r['tflite_int8_top1']:.4f} "
              f"(agree {r['tflite_agreement_torch']:.4f})  ORT int8 {r['ort_int8_top1']:.4f}  "
              f"U55-128 {u55['ms']:.3f} ms ({u55['npu_ops']} NPU / {u55['cpu_ops']} CPU ops)  "
              f"model err {r['latency_model_error_pct']:+.1f}%")


if __name__ == "__main__":
    main()
