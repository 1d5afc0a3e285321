"""The two user cases of issue 12 through ``edgekd.build``: is the student smaller than the teacher and faster
than the teacher compiled for ONNX Runtime, or does the report say the teacher should ship?

1. digits: a user's own small CNN teacher (about 56 k parameters) on scikit-learn digits (8×8).
2. mnist5k: a user's five-conv teacher with pooling on 28×28 digits.

Run: ``nice -n 10 python bench/user_cases.py [--teacher-epochs 8] [--epochs 10]``; writes
bench/results/user_cases.json. Latencies are measured on this machine (batch 1, one thread).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch
from torch import nn

import edgekd
from edgekd.data import load_dataset, split
from edgekd.distill import TrainConfig, fit
from edgekd.distill.losses import CE


class DigitsCNN(nn.Module):
    """~56 k parameters on 1×8×8."""

    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                                 nn.MaxPool2d(2), nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(),
                                 nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


class FiveConvPooled(nn.Module):
    """Five conv layers with pooling on 1×28×28."""

    def __init__(self):
        super().__init__()
        c = [1, 16, 32, 32, 64, 64]
        layers = []
        for i in range(5):
            layers += [nn.Conv2d(c[i], c[i + 1], 3, padding=1), nn.BatchNorm2d(c[i + 1]), nn.ReLU()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10))

    def forward(self, x):
        return self.net(x)


def run_case(name: str, teacher: nn.Module, dataset: str, teacher_epochs: int, epochs: int, out: Path) -> dict:
    bundle = load_dataset(dataset)
    if bundle.test is not None:
        train, val = bundle.train, bundle.test
    else:
        val, train = split(bundle.train, int(len(bundle.train) * 0.2), seed=0)
    torch.manual_seed(0)
    started = time.perf_counter()
    fit(teacher, train, None, CE(), None, TrainConfig(epochs=teacher_epochs, lr=3e-3, progress=False))
    teacher_s = time.perf_counter() - started
    started = time.perf_counter()
    result = edgekd.build(teacher.eval(), train=train.numpy(), val=val.numpy(), spec=bundle.spec,
                          target="x86-cpu-onnxruntime", out_dir=out / name, epochs=epochs, progress=False,
                          latency_runs=200)
    rep = result.report
    t, a, v = rep["teacher_artifact"], rep["artifact"], rep["versus_teacher"]
    return {"case": name, "dataset": dataset, "teacher_params": rep["teacher"]["params"],
            "student_params": rep["student"]["params"], "student_arch": rep["student"]["arch"],
            "search_outcome": (rep.get("search") or {}).get("outcome"), "search_why": (rep.get("search") or {}).get("why"),
            "teacher_torch_accuracy": rep["teacher"]["accuracy"], "teacher_artifact_accuracy": t["accuracy"],
            "teacher_artifact_p50_ms": t["latency_p50_ms"], "student_artifact_accuracy": a["accuracy"],
            "student_artifact_p50_ms": a["latency_ms"]["p50"], "speedup_vs_compiled_teacher":
                v["speedup_vs_compiled_teacher"], "speedup_vs_teacher_torch_eager": v["speedup_vs_teacher_torch_eager"],
            "student_smaller": v["student_smaller"], "student_faster": v["student_faster"],
            "teacher_fits": v["teacher_fits"], "ship": rep["ship"], "gate_passed": rep["gate"]["passed"],
            "teacher_train_s": teacher_s, "build_s": time.perf_counter() - started,
            "epochs": epochs, "teacher_epochs": teacher_epochs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--teacher-epochs", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--out", type=Path, default=Path("bench/results/user_cases.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    with tempfile.TemporaryDirectory(prefix="edgekd-user-cases-") as tmp:
        for name, teacher, dataset in (("own-cnn-digits", DigitsCNN(), "digits"),
                                       ("five-conv-pooled-28x28", FiveConvPooled(), "mnist5k")):
            rows.append(run_case(name, teacher, dataset, args.teacher_epochs, args.epochs, Path(tmp)))
            print(json.dumps(rows[-1], default=str))
    args.out.write_text(json.dumps({"cases": rows, "note": "measured on a shared 2-core CPU under load"},
                                   indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
