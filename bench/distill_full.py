"""Issue 13's benchmark at full size (``python bench/distill.py --full``): one JSON line per run, resumable.

    python bench/distill.py --full                           # every pending run, then the report
    python bench/distill.py --full --shards 6 --shard K --device cuda --no-report   # K = 0..5 side by side
    python bench/distill.py --full --report-only             # aggregate what is done so far

Fashion-MNIST at 28 px: the teacher of bench/search_groundtruth.py (TeacherCNN width 48, all 60,000
training images, 93.4 %), all 60,000 training images as the transfer set (every label, or 10 % of
them), the 10,000 test images. Two students: edgekd's default ResNet and a MobileNetV2 of the search
space. Per student and seed:

1. float, ``--epochs``: CE, KD, DKD, DIST and TopKLD, with full and with 10 % labels;
2. quantized, from that seed's float KD student, for W8A8 (the ONNX Runtime target's format), W4A8,
   W4A4 and W2A8: PTQ (min/max in torch fake-quant; at W8A8 also each calibration recipe compiled by
   ``edgekd.compile`` and run in ONNX Runtime), CE-QAT, KD-QAT from the teacher, and TopKLD-QAD taught
   by the frozen float student, the teacher or both, ``--qat-epochs`` each; accuracy in torch
   fake-quant and of the exported QDQ model in ONNX Runtime, and the wall time of each.

Runs append to ``--results``/distill_full.jsonl as they finish. A shard owns whole (student, seed)
groups, so the float KD student a group's quantized runs start from is trained once, by its owner.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

import distill as bench  # bench/distill.py: label_scarce, ort_accuracy
import distill_full_report as report
from edgekd.data import load_dataset
from edgekd.data.sources import ArrayData
from edgekd.distill import TrainConfig, evaluate, fit, qad
from edgekd.distill.cache import TeacherCache
from edgekd.distill.device import resolve_device
from edgekd.distill.losses import create_loss
from edgekd.models import DEFAULT_STUDENT, create_student
from edgekd.quant import format_from, prepare_qat
from edgekd.targets import CalibrationRef, load_target

RESULTS = Path(__file__).resolve().parent / "results"
SHAPE = (1, 28, 28)
STUDENTS = {"resnet-default": dict(DEFAULT_STUDENT),
            "mobilenetv2": {"name": "mobilenetv2", "widths": (16, 24, 32), "depths": (1, 2, 2),
                            "expansions": (1, 4, 4), "kernels": (3, 3, 3)}}
FLOAT_LOSSES = {"ce": {}, "kd": {}, "dkd": {}, "dist": {}, "topkld": {"k": 2}}
LABELS = {"full": 1.0, "10%": 0.1}
ORT_TARGET = "x86-cpu-onnxruntime"
FORMATS = {"w8a8": None, "w4a8": ("int4", "int8"), "w4a4": ("int4", "uint4"), "w2a8": ("int2", "int8")}
QAT_VARIANTS = {"ce-qat": ("ce", {}, "none"), "kd-qat teacher": ("kd", {}, "teacher"),
                "topkld-qad self": ("topkld", {"k": 2}, "self"), "topkld-qad teacher": ("topkld", {"k": 2}, "teacher"),
                "topkld-qad both": ("topkld", {"k": 2}, "both")}
PTQ_RECIPES = ("minmax-256", "percentile-256", "entropy-256", "mse-256")  # W8A8, compiled and run in ONNX Runtime


def numeric_format(name: str):
    return load_target(ORT_TARGET).format if FORMATS[name] is None else format_from(*FORMATS[name])


def plan(args) -> list[dict]:
    """Every run of the benchmark, float runs of a group before its quantized ones."""
    runs = []
    for student in args.students:
        for seed in args.seeds:
            group = {"student": student, "seed": seed}
            runs += [{**group, "kind": "float", "labels": lab, "loss": loss} for lab in LABELS for loss in FLOAT_LOSSES]
            for fmt in args.formats:
                runs.append({**group, "kind": "ptq", "format": fmt, "calibration": "minmax-torch"})
                if fmt == "w8a8":
                    runs += [{**group, "kind": "ptq", "format": fmt, "calibration": r} for r in PTQ_RECIPES]
                runs += [{**group, "kind": "qat", "format": fmt, "variant": v} for v in QAT_VARIANTS]
    return runs


def run_key(run: dict, args) -> str:
    scale = {"epochs": args.epochs, "qat_epochs": args.qat_epochs, "train_size": args.train_size}
    return json.dumps({**run, **scale}, sort_keys=True)


def done(path: Path) -> dict[str, dict]:
    if not path.exists():
        return {}
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return {r["key"]: r for r in rows}


class Bench:
    """The data, teacher and teacher cache one process shares across its runs."""

    def __init__(self, args):
        bundle = load_dataset("fashion-mnist")
        index = torch.randperm(len(bundle.train), generator=torch.Generator().manual_seed(0))[: args.train_size]
        self.train = ArrayData(bundle.train.x[index], bundle.train.y[index])
        self.test = ArrayData(bundle.test.x, bundle.test.y)
        from search_groundtruth import teacher_for  # the ground truth's 93.4 % teacher, cached in bench/results

        self.teacher, self.teacher_accuracy = teacher_for(bundle.train.x, bundle.train.y, bundle.test.x,
                                                          bundle.test.y, args.teacher_epochs)
        self.cache = TeacherCache(self.teacher, self.train)
        self.args, self.device = args, resolve_device(args.device)
        self.calib = self.train.x[torch.randperm(len(self.train), generator=torch.Generator().manual_seed(1))[:256]]

    def config(self, seed: int, epochs: int, lr: float) -> TrainConfig:
        return TrainConfig(epochs=epochs, batch_size=self.args.batch_size, lr=lr, seed=seed, progress=False,
                           device=self.args.device)

    def new_student(self, name: str, seed: int):
        torch.manual_seed(seed)
        kwargs = dict(STUDENTS[name])
        return create_student(kwargs.pop("name"), SHAPE, 10, **kwargs)

    def float_run(self, run: dict) -> dict:
        data = self.train if run["labels"] == "full" else bench.label_scarce(self.train, LABELS[run["labels"]],
                                                                              run["seed"])
        started = time.perf_counter()
        model = fit(self.new_student(run["student"], run["seed"]), data, None,
                    create_loss(run["loss"], **FLOAT_LOSSES[run["loss"]]), self.teacher,
                    self.config(run["seed"], self.args.epochs, self.args.lr), teacher_cache=self.cache).model
        seconds = time.perf_counter() - started
        if run["labels"] == "full" and run["loss"] == "kd":
            torch.save(model.state_dict(), self.float_path(run))
        return {"accuracy_torch": evaluate(model, self.test), "train_seconds": seconds}

    def float_path(self, run: dict) -> Path:
        return self.args.results / "distill_full" / f"{run['student']}-s{run['seed']}-e{self.args.epochs}-kd.pt"

    def float_student(self, run: dict):
        path = self.float_path(run)
        if not path.exists():  # its float run belongs to this group, so to this shard: train it now
            self.float_run({**run, "kind": "float", "labels": "full", "loss": "kd"})
        model = self.new_student(run["student"], run["seed"])
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()

    def ptq_run(self, run: dict) -> dict:
        student = self.float_student(run)
        if run["calibration"] == "minmax-torch":
            q = prepare_qat(student, numeric_format(run["format"]), self.calib)
            return {"accuracy_torch": evaluate(q, self.test), "accuracy_onnxruntime": bench.ort_accuracy(q, self.test)}
        import edgekd

        target = load_target(ORT_TARGET).model_copy(update={"calibration": CalibrationRef(recipe=run["calibration"])})
        with tempfile.TemporaryDirectory() as tmp:
            artifact = edgekd.compile(student, target, self.calib.numpy(), tmp, calib_size=len(self.calib))
            logits = edgekd.load(artifact.path)(self.test.x.numpy())
        return {"accuracy_onnxruntime": float((torch.as_tensor(logits).argmax(1) == self.test.y).float().mean())}

    def qat_run(self, run: dict) -> dict:
        student = self.float_student(run)
        loss_name, kwargs, choice = QAT_VARIANTS[run["variant"]]
        q_teacher = qad.qat_teacher_module(choice, student, self.teacher)
        q = prepare_qat(student, numeric_format(run["format"]), self.calib)
        started = time.perf_counter()
        q = fit(q, self.train, None, create_loss(loss_name, **kwargs), q_teacher,
                self.config(run["seed"], self.args.qat_epochs, self.args.lr / 10),
                teacher_cache=self.cache if q_teacher is self.teacher else None).model
        seconds = time.perf_counter() - started
        return {"accuracy_torch": evaluate(q, self.test), "accuracy_onnxruntime": bench.ort_accuracy(q, self.test),
                "train_seconds": seconds}


def run_all(args) -> None:
    path = args.results / "distill_full.jsonl"
    (args.results / "distill_full").mkdir(parents=True, exist_ok=True)
    groups = sorted({(r["student"], r["seed"]) for r in plan(args)}, key=lambda g: (g[1], g[0]))
    mine = {g for i, g in enumerate(groups) if i % args.shards == args.shard}
    pending = [r for r in plan(args) if (r["student"], r["seed"]) in mine and run_key(r, args) not in done(path)]
    print(f"shard {args.shard}/{args.shards}: {len(pending)} runs pending", flush=True)
    if not pending:
        return
    b = Bench(args)
    print(f"teacher {100 * b.teacher_accuracy:.2f} %, {len(b.train)} transfer images, device {b.device}", flush=True)
    for i, run in enumerate(pending):
        started = time.perf_counter()
        result = {"float": b.float_run, "ptq": b.ptq_run, "qat": b.qat_run}[run["kind"]](run)
        row = {"key": run_key(run, args), **run, **result, "seconds": time.perf_counter() - started,
               "device": b.device.type, "teacher_accuracy": b.teacher_accuracy, "epochs": args.epochs,
               "qat_epochs": args.qat_epochs, "train_size": args.train_size}
        with path.open("a") as f:  # one short line per append: shards may share the file
            f.write(json.dumps(row) + "\n")
        shown = {k: f"{100 * v:.2f}" for k, v in result.items() if k.startswith("accuracy")}
        print(f"[{i + 1}/{len(pending)}] {run} {shown} ({row['seconds']:.0f} s)", flush=True)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--full", action="store_true", help="(the flag bench/distill.py dispatches on)")
    p.add_argument("--students", nargs="+", default=list(STUDENTS), choices=list(STUDENTS))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    p.add_argument("--train-size", type=int, default=60000)
    p.add_argument("--epochs", type=int, default=15, help="float epochs")
    p.add_argument("--qat-epochs", type=int, default=3)
    p.add_argument("--teacher-epochs", type=int, default=12, help="picks the ground truth's cached teacher")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N")
    p.add_argument("--shards", type=int, default=1)
    p.add_argument("--shard", type=int, default=0)
    p.add_argument("--results", type=Path, default=RESULTS)
    p.add_argument("--no-report", dest="report", action="store_false", help="train only (for shards)")
    p.add_argument("--report-only", action="store_true", help="aggregate the stored runs; train nothing")
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    torch.set_num_threads(1 if args.shards > 1 else torch.get_num_threads())
    if not args.report_only:
        run_all(args)
    if args.report or args.report_only:
        report.write(args, done(args.results / "distill_full.jsonl"), plan(args), run_key)


if __name__ == "__main__":
    main()
