"""Per backend here: latency at batch 1 and 32 of fp32 and int8 vs torch eager, and agreement.

All latencies come from one run of this script (ratios are what to read; the machine is shared).
Writes bench/results/backends.json. Scale: one ResNet student trained 2 epochs on mnist5k
(28×28), 256 calibration samples, 1000 validation samples, 1 thread; each backend and torch eager
are timed in 3 alternating rounds of --runs calls (b32: --runs/5), medians.

    nice -n 10 python bench/backends.py [--runs 50] [--epochs 2]
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
from edgekd.backends.base import get_backend
from edgekd.targets import load_target
from edgekd.validate.conformance import check_onnx_in_onnxruntime, reference_logits, with_precision
from edgekd.validate.latency import time_calls
from edgekd.validate.metrics import accuracy, agreement

TARGETS = ["x86-cpu-onnxruntime", "x86-cpu-openvino", "snapdragon-htp-qnn", "android-executorch-xnnpack",
           "jetson-orin-tensorrt"]
INT8_ONLY = {"snapdragon-htp-qnn"}
EMULATED = {"snapdragon-htp-qnn": "QNN HTP emulated on x86-64: right numbers, not device speed"}


def variant(name: str, precision: str, batch: int):
    """The target at a precision; static-shape backends get one artifact per batch size."""
    t = with_precision(name, precision)
    if t.shapes.batch == "static":
        t = t.model_copy(update={"shapes": t.shapes.model_copy(update={"static_batch": batch}),
                                 "name": f"{t.name}-b{batch}"})
    return t


def measure(name, precision, model, calib, xv, yv, ref, runs, out) -> dict:
    row = {"target": name, "precision": precision}
    base = load_target(name)
    ok, why = get_backend(base.backend).is_available()
    static = base.shapes.batch == "static"
    started = time.perf_counter()
    artifact = edgekd.compile(model, variant(name, precision, 1), calib, out)
    row["compile_s"] = time.perf_counter() - started
    row["size_kib"] = size_kib(artifact)
    if not ok:
        row["status"] = f"not run here: {why}"
        if "qdq_onnx" in artifact.files and precision != "fp32":
            check = check_onnx_in_onnxruntime(artifact, ref, xv)
            row["onnxruntime_check"] = {"agreement_fp32_torch": check.agreement, "note": check.reason}
        return row
    runner = edgekd.load(artifact.path, threads=1)
    logits = runner(xv)
    row.update(accuracy=accuracy(logits, yv), agreement_torch=agreement(logits, ref),
               max_abs_diff=float(np.abs(logits - ref).max()))
    row.update(paired(runner, model, xv[:1], runs, "b1"))
    if static:
        artifact = edgekd.compile(model, variant(name, precision, 32), calib, out)
        runner = edgekd.load(artifact.path, threads=1)
    row.update(paired(runner, model, xv[:32], max(5, runs // 5), "b32"))
    if name in EMULATED:
        row["note"] = EMULATED[name]
    return row


def paired(runner, model, x, runs: int, tag: str, rounds: int = 3) -> dict:
    """Backend and torch eager timed in alternating rounds, so load on the shared machine hits both."""
    ours, theirs = [], []
    with torch.inference_mode():
        tensor = torch.from_numpy(x)
        for _ in range(rounds):
            ours.append(time_calls(runner, x, warmup=3, runs=runs)["p50"])
            theirs.append(time_calls(model, tensor, warmup=3, runs=runs)["p50"])
    ms, torch_ms = float(np.median(ours)), float(np.median(theirs))
    return {f"{tag}_ms": ms, f"{tag}_torch_ms": torch_ms, f"{tag}_speedup_vs_torch": torch_ms / ms}


def size_kib(artifact) -> float:
    """The model file plus an OpenVINO IR's weights file."""
    size = artifact.size_bytes
    if artifact.path.suffix == ".xml":
        size += artifact.path.with_suffix(".bin").stat().st_size
    return size / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--targets", nargs="*", default=TARGETS)
    args = parser.parse_args()
    from edgekd.data import load_dataset, split
    from edgekd.distill import TrainConfig, fit
    from edgekd.distill.losses import CE
    from edgekd.models import create_student

    torch.manual_seed(0)
    bundle = load_dataset("mnist5k")
    val, train = split(bundle.train, 1000, seed=0)
    model = create_student("resnet", train.input_shape, 10)
    fit(model, train, None, CE(), None, TrainConfig(epochs=args.epochs, lr=3e-3, progress=False))
    model.eval()
    xv, yv = val.numpy()
    ref = reference_logits(model, xv)
    calib = (train.x.numpy(), train.y.numpy())
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.targets:
            for precision in ("fp32", "int8"):
                if precision == "fp32" and name in INT8_ONLY:
                    continue
                row = measure(name, precision, model, calib, xv, yv, ref, args.runs, Path(tmp))
                rows.append(row)
                print(json.dumps(row))
    result = {"model": "resnet (edgekd default student)", "dataset": "mnist5k", "val": len(yv),
              "torch_eager": {"accuracy": accuracy(ref, yv), "runtime": f"torch {torch.__version__} eager"},
              "threads": 1, "runs": args.runs,
              "machine": "2 vCPU shared with other jobs; read ratios, not absolute ms", "rows": rows}
    out = Path(__file__).parent / "results" / "backends.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"torch eager top-1 {result['torch_eager']['accuracy']:.4f}; speedup = torch eager p50 / backend p50, "
          "timed in alternating rounds")
    for r in rows:
        print(f"{r['target']:28s} {r['precision']:5s} b1 {r.get('b1_ms', float('nan')):8.3f} ms "
              f"({r.get('b1_speedup_vs_torch', float('nan')):.2f}x)  b32 {r.get('b32_ms', float('nan')):8.3f} ms "
              f"({r.get('b32_speedup_vs_torch', float('nan')):.2f}x)  agree {r.get('agreement_torch', float('nan')):.4f}"
              f"  acc {r.get('accuracy', float('nan')):.4f}  {r.get('status', '')}")


if __name__ == "__main__":
    main()
