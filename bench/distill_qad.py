"""Quantization-aware distillation at low bit widths: who should teach the quantized student?

    nice -n 10 python bench/distill_qad.py --seeds 2     # bench/results/distill_qad.json and .png

Per seed: one float student distilled from the teacher (KD, the default recipe), then from that
same float student, for W4A8 (int4 per-channel weights, int8 activations) and W4A4 (int4 weights,
uint4 activations): PTQ (min/max calibration, no training), CE-QAT, KD-QAT from the teacher, and
TopKLD-QAD taught by the frozen float student ("self"), the teacher, or both
(:mod:`edgekd.distill.qad`). Accuracy in torch fake-quant and of the exported QDQ model in ONNX
Runtime; wall time of each QAT variant (under machine load: compare ratios, not seconds).
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import distill as bench  # bench/distill.py: data split, teacher, student
from edgekd.distill import TrainConfig, evaluate, fit, qad
from edgekd.distill.cache import TeacherCache
from edgekd.distill.losses import create_loss
from edgekd.quant import format_from, prepare_qat

FORMATS = {"w4a8": format_from("int4", "int8"), "w4a4": format_from("int4", "uint4"),
           "w2a8": format_from("int2", "int8")}
VARIANTS = {  # label -> (loss, loss kwargs, QAT teacher)
    "ce-qat": ("ce", {}, "none"),
    "kd-qat teacher": ("kd", {}, "teacher"),
    "topkld-qad self": ("topkld", {"k": 2}, "self"),
    "topkld-qad teacher": ("topkld", {"k": 2}, "teacher"),
    "topkld-qad both": ("topkld", {"k": 2}, "both"),
    "kd-qad self": ("kd", {}, "self"),
}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=3000)
    p.add_argument("--teacher-size", type=int, default=15000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--pool", type=int, default=2)
    p.add_argument("--epochs", type=int, default=8, help="float distillation epochs")
    p.add_argument("--qat-epochs", type=int, default=2)
    p.add_argument("--teacher-epochs", type=int, default=10)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--teacher-cache", default="", help="state_dict path to reuse a trained teacher")
    p.add_argument("--formats", nargs="*", default=["w4a8", "w4a4"], choices=list(FORMATS))
    p.add_argument("--out", default="bench/results")
    p.add_argument("--name", default="distill_qad", help="output file stem")
    return p.parse_args(argv)


def get_teacher(teacher_data, test, args):
    from edgekd.models import TeacherCNN

    path = Path(args.teacher_cache) if args.teacher_cache else None
    if path and path.is_file():
        teacher = TeacherCNN(teacher_data.input_shape, 10, width=16)
        teacher.load_state_dict(torch.load(path, weights_only=True))
        return teacher.eval(), evaluate(teacher.eval(), test)
    teacher, acc = bench.train_teacher(teacher_data, test, args)
    if path:
        torch.save(teacher.state_dict(), path)
    return teacher, acc


def run_seed(seed, train, test, teacher, cache, args) -> dict:
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed, progress=False)
    float_student = fit(bench.new_student(train.input_shape, seed), train, None, create_loss("kd"), teacher,
                        config, teacher_cache=cache).model
    out = {"float": evaluate(float_student, test)}
    print(f"seed {seed} float KD student {100 * out['float']:.2f}%", flush=True)
    calib = train.x[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:256]]
    qconfig = TrainConfig(epochs=args.qat_epochs, batch_size=args.batch_size, lr=args.lr / 10, seed=seed,
                          progress=False)
    for fname in args.formats:
        fmt = FORMATS[fname]
        ptq = prepare_qat(float_student, fmt, calib)
        res = {"ptq-minmax": {"torch": evaluate(ptq, test), "onnxruntime": bench.ort_accuracy(ptq, test),
                              "seconds": 0.0}}
        for label, (loss_name, kw, choice) in VARIANTS.items():
            q_teacher = qad.qat_teacher_module(choice, float_student, teacher)
            started = time.perf_counter()
            q = fit(prepare_qat(float_student, fmt, calib), train, None, create_loss(loss_name, **kw), q_teacher,
                    qconfig, teacher_cache=cache if q_teacher is teacher else None).model
            seconds = time.perf_counter() - started
            res[label] = {"torch": evaluate(q, test), "onnxruntime": bench.ort_accuracy(q, test), "seconds": seconds}
            print(f"  [{fname}] seed {seed} {label:20s} torch {100 * res[label]['torch']:.2f}%  "
                  f"ORT {100 * res[label]['onnxruntime']:.2f}%  ({seconds:.0f} s)", flush=True)
        out[fname] = res
    return out


def aggregate(per_seed: list[dict]) -> dict:
    def stats(values):
        values = [100 * v for v in values]
        return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
                "runs": values}

    agg = {"float": stats([s["float"] for s in per_seed])}
    for fname in [f for f in FORMATS if f in per_seed[0]]:
        agg[fname] = {}
        for label in per_seed[0][fname]:
            rows = [s[fname][label] for s in per_seed]
            agg[fname][label] = {"torch": stats([r["torch"] for r in rows]),
                                 "onnxruntime": stats([r["onnxruntime"] for r in rows]),
                                 "max_ort_gap_points": max(abs(r["torch"] - r["onnxruntime"]) * 100 for r in rows),
                                 "seconds": statistics.fmean(r["seconds"] for r in rows)}
    return agg


def goals(agg: dict) -> dict:
    out = {}
    for fname in [f for f in FORMATS if f in agg]:
        r = agg[fname]
        best = max((k for k in r if k.startswith("topkld")), key=lambda k: r[k]["torch"]["mean"])
        lost = agg["float"]["mean"] - r["ptq-minmax"]["torch"]["mean"]
        out[fname] = {"best_topkld": best,
                      "best_topkld_minus_ce_qat_points": r[best]["torch"]["mean"] - r["ce-qat"]["torch"]["mean"],
                      "ptq_points_lost": lost,
                      "qad_recovered_fraction": (r[best]["torch"]["mean"] - r["ptq-minmax"]["torch"]["mean"]) / lost
                      if lost > 0 else None,
                      "qad_cost_vs_ce_qat": r[best]["seconds"] / max(r["ce-qat"]["seconds"], 1e-9),
                      "max_ort_gap_points": max(v["max_ort_gap_points"] for v in r.values())}
    return out


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    agg = result["results"]
    formats = [f for f in FORMATS if f in agg]
    labels = list(agg[formats[0]])
    xs = np.arange(len(labels))
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, fname in enumerate(formats):
        ax.bar(xs + 0.4 * i, [agg[fname][k]["torch"]["mean"] for k in labels], 0.4,
               yerr=[agg[fname][k]["torch"]["std"] for k in labels], label=fname)
    ax.axhline(agg["float"]["mean"], color="k", lw=0.8, ls="--", label="float student")
    ax.set_xticks(xs + 0.2, labels, rotation=30, ha="right")
    ax.set_ylabel("test top-1 % (torch fake-quant)")
    ax.set_ylim(min(agg[f][k]["torch"]["mean"] for f in formats for k in labels) - 5, None)
    ax.legend()
    ax.set_title(f"QAD on Fashion-MNIST {result['scale']['image_px']} px, {result['seeds_run']} seeds, "
                 f"teacher {result['teacher_accuracy']:.1f}%")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(1)
    started = time.perf_counter()
    train, teacher_data, test = bench.load_data(args)
    teacher, teacher_acc = get_teacher(teacher_data, test, args)
    print(f"teacher {100 * teacher_acc:.2f}%", flush=True)
    cache = TeacherCache(teacher, train)
    per_seed = [run_seed(seed, train, test, teacher, cache, args) for seed in range(args.seeds)]
    agg = aggregate(per_seed)
    result = {"benchmark": "distill_qad", "dataset": "fashion-mnist",
              "scale": vars(args) | {"image_px": 28 // args.pool, "student": bench.STUDENT},
              "teacher_accuracy": 100 * teacher_acc, "seeds_run": len(per_seed), "results": agg,
              "goals": goals(agg), "per_seed": per_seed, "seconds": time.perf_counter() - started,
              "torch": torch.__version__, "threads": torch.get_num_threads(),
              "note": "wall times measured on 2 CPU cores shared with other jobs (load 5-9)"}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{args.name}.json").write_text(json.dumps(result, indent=2))
    plot(result, out / f"{args.name}.png")
    print(json.dumps(result["goals"], indent=2))
    return result


if __name__ == "__main__":
    main()
