"""Distillation benchmark on Fashion-MNIST: every loss vs CE, QAT losses at int8 and W4A8, loop speed.

    nice -n 10 python bench/distill.py            # writes bench/results/distill.json and distill.png
    python bench/distill.py --full                # the full-size benchmark of bench/distill_full.py

Scale (chosen for 2 shared CPU cores, stated in the JSON): images average-pooled 28→14 px, a
student transfer set of ``--train-size`` training images, a disjoint ``--teacher-size`` set for
the teacher (trained once, full labels: the "given" teacher), ``--test-size`` test images, a few
epochs. Seeds run until ``--budget-min`` would be exceeded; the JSON says how many ran.

1. label-scarce (10% of the transfer set labelled, all of it used for teacher outputs) and
   full-label: every registered loss vs CE-only, float.
2. QAT: from the seed's full-label CE float student, ``--qat-epochs`` of QAT with CE, KD, DKD,
   TopKLD k∈{1,2,5}, at the ONNX Runtime target's int8 format and at W4A8; torch fake-quant
   accuracy, and (int8/W4A8 alike) the exported QDQ model's accuracy in ONNX Runtime.
3. throughput: edgekd's ``fit`` (teacher cache on and off) vs a plain hand-written KD loop.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from edgekd.data import load_dataset
from edgekd.data.sources import ArrayData
from edgekd.distill import TrainConfig, evaluate, fit
from edgekd.distill.cache import TeacherCache
from edgekd.distill.losses import UNLABELED, create_loss, kd_kl, list_losses
from edgekd.distill.losses.features import default_pairs
from edgekd.errors import DataError
from edgekd.models import TeacherCNN, create_student
from edgekd.quant import format_from, prepare_qat
from edgekd.targets import load_target

STUDENT = {"name": "resnet", "widths": (8, 16, 16), "depths": (1, 1, 1)}
QAT_LOSSES = {"ce-qat": ("ce", {}), "kd": ("kd", {}), "dkd": ("dkd", {}), "topkld-k1": ("topkld", {"k": 1}),
              "topkld-k2": ("topkld", {"k": 2}), "topkld-k5": ("topkld", {"k": 5})}


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=5000)
    p.add_argument("--teacher-size", type=int, default=5000)
    p.add_argument("--test-size", type=int, default=2000)
    p.add_argument("--pool", type=int, default=2, help="average-pool factor (28 px / pool)")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--qat-epochs", type=int, default=1)
    p.add_argument("--teacher-epochs", type=int, default=4)
    p.add_argument("--label-fraction", type=float, default=0.1)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--budget-min", type=float, default=19.0)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--out", default="bench/results")
    p.add_argument("--only-throughput", action="store_true", help="re-measure throughput into an existing JSON")
    return p.parse_args(argv)


def load_data(args):
    try:
        bundle = load_dataset("fashion-mnist")
    except DataError as exc:
        sys.exit(f"{exc}\n(run: apt-get install -y dataset-fashion-mnist)")
    perm = torch.randperm(len(bundle.train), generator=torch.Generator().manual_seed(0))

    def prep(data, index):
        x = data.x[index]
        return ArrayData(F.avg_pool2d(x, args.pool) if args.pool > 1 else x, data.y[index])

    student = prep(bundle.train, perm[: args.train_size])
    teacher = prep(bundle.train, perm[args.train_size : args.train_size + args.teacher_size])
    test = prep(bundle.test, torch.arange(args.test_size))
    return student, teacher, test


def label_scarce(data: ArrayData, fraction: float, seed: int) -> ArrayData:
    """Keep labels on a random ``fraction`` of samples; the rest become UNLABELED (same x tensor)."""
    keep = torch.randperm(len(data), generator=torch.Generator().manual_seed(1000 + seed))[: int(len(data) * fraction)]
    y = torch.full_like(data.y, UNLABELED)
    y[keep] = data.y[keep]
    return ArrayData(data.x, y)


def new_student(shape, seed: int):
    torch.manual_seed(seed)
    kw = {k: v for k, v in STUDENT.items() if k != "name"}
    return create_student(STUDENT["name"], shape, 10, **kw)


def train_teacher(data: ArrayData, test: ArrayData, args):
    torch.manual_seed(0)
    teacher = TeacherCNN(data.input_shape, 10, width=16)
    fit(teacher, data, None, create_loss("ce"), None,
        TrainConfig(epochs=args.teacher_epochs, batch_size=args.batch_size, lr=args.lr, progress=False))
    return teacher.eval(), evaluate(teacher, test)


def setting_float(name, train, test, teacher, cache, args, seed):
    """Every loss vs CE on one transfer set; returns {loss: accuracy} and the CE student."""
    out, ce_student = {}, None
    for loss_name in list_losses():
        student = new_student(train.input_shape, seed)
        config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=seed, progress=False)
        started = time.perf_counter()
        model = fit(student, train, None, create_loss(loss_name), teacher, config, teacher_cache=cache).model
        out[loss_name] = evaluate(model, test)
        print(f"  [{name}] seed {seed} {loss_name:7s} {100 * out[loss_name]:.2f}%  "
              f"({time.perf_counter() - started:.0f} s)", flush=True)
        if loss_name == "ce":
            ce_student = model
    return out, ce_student


def ort_accuracy(model, test: ArrayData) -> float:
    import onnxruntime as ort

    from edgekd.quant import export_qdq

    with tempfile.TemporaryDirectory() as tmp:
        path = export_qdq(model, test.input_shape, Path(tmp) / "m.onnx")
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        logits = sess.run(None, {"input": test.x.numpy()})[0]
    return float((logits.argmax(1) == test.y.numpy()).mean())


def setting_qat(float_student, train, test, teacher, cache, args, seed):
    formats = {"int8": load_target("x86-cpu-onnxruntime").format, "w4a8": format_from("int4", "int8")}
    calib = train.x[torch.randperm(len(train), generator=torch.Generator().manual_seed(seed))[:256]]
    out = {}
    for fname, fmt in formats.items():
        ptq = prepare_qat(float_student, fmt, calib)
        out[fname] = {"ptq": {"torch": evaluate(ptq, test)}}
        for label, (loss_name, kw) in QAT_LOSSES.items():
            q = prepare_qat(float_student, fmt, calib)
            config = TrainConfig(epochs=args.qat_epochs, batch_size=args.batch_size, lr=args.lr / 10, seed=seed,
                                 progress=False)
            q = fit(q, train, None, create_loss(loss_name, **kw), teacher, config, teacher_cache=cache).model
            out[fname][label] = {"torch": evaluate(q, test), "onnxruntime": ort_accuracy(q, test)}
            r = out[fname][label]
            print(f"  [qat {fname}] seed {seed} {label:10s} torch {100 * r['torch']:.2f}%  "
                  f"ORT {100 * r['onnxruntime']:.2f}%", flush=True)
    return out


def plain_kd_epoch(student, teacher, data: ArrayData, batch: int, lr: float, seed: int) -> None:
    """The hand-written reference: the loop a user would write, teacher forward every step."""
    opt = torch.optim.AdamW(student.parameters(), lr=lr, weight_decay=1e-4)
    order = torch.randperm(len(data), generator=torch.Generator().manual_seed(seed))
    student.train()
    for i in range(0, len(data), batch):
        idx = order[i : i + batch]
        x, y = data.x[idx], data.y[idx]
        with torch.no_grad():
            t = teacher(x)
        s = student(x)
        loss = 0.9 * kd_kl(s, t, 4.0) + 0.1 * F.cross_entropy(s, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()


def throughput(train, teacher, args, repeats: int = 5) -> dict:
    """Samples/s of one KD epoch; variants interleaved after a discarded warm-up round, so machine
    load hits all alike. ``edgekd_cached`` builds its teacher cache inside the timed epoch."""
    timings = {"plain_torch": [], "edgekd_cached": [], "edgekd_live": []}
    for r in range(repeats + 1):
        for key in timings:
            student = new_student(train.input_shape, r)
            started = time.perf_counter()
            if key == "plain_torch":
                plain_kd_epoch(student, teacher, train, args.batch_size, args.lr, r)
            else:
                mb = 1024.0 if key == "edgekd_cached" else 0.0
                fit(student, train, None, create_loss("kd"), teacher,
                    TrainConfig(epochs=1, batch_size=args.batch_size, lr=args.lr, seed=r, progress=False,
                                cache_teacher_mb=mb))
            if r:  # round 0 warms up allocator and kernels
                timings[key].append(len(train) / (time.perf_counter() - started))
    med = {k: statistics.median(v) for k, v in timings.items()}
    best = {k: max(v) for k, v in timings.items()}
    return {"samples_per_s": med, "best_samples_per_s": best, "all_runs": timings,
            "ratio_cached": med["edgekd_cached"] / med["plain_torch"],
            "ratio_live": med["edgekd_live"] / med["plain_torch"],
            "ratio_live_best": best["edgekd_live"] / best["plain_torch"]}


def only_throughput(args) -> None:
    """Re-measure throughput alone and update an existing results JSON (the rest is untouched)."""
    path = Path(args.out) / "distill.json"
    result = json.loads(path.read_text())
    student_data, _, _ = load_data(args)
    torch.manual_seed(0)
    teacher = TeacherCNN(student_data.input_shape, 10, width=16).eval()  # same compute as the trained one
    speed = throughput(student_data, teacher, args)
    speed["note"] = "re-measured alone (--only-throughput), untrained teacher of the same architecture"
    result["throughput"] = speed
    result["goals"].update(throughput_ratio_cached=speed["ratio_cached"], throughput_ratio_live=speed["ratio_live"],
                           throughput_ratio_live_best=speed["ratio_live_best"])
    path.write_text(json.dumps(result, indent=2))
    print(json.dumps(speed, indent=2))


def mean_std(values):
    return {"mean": 100 * statistics.fmean(values), "std": 100 * statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": [100 * v for v in values]}


def aggregate(per_seed: list[dict]) -> dict:
    out = {"label_scarce": {}, "full_label": {}, "qat": {}}
    for setting in ("label_scarce", "full_label"):
        for loss in per_seed[0][setting]:
            out[setting][loss] = mean_std([s[setting][loss] for s in per_seed])
    for fmt, runs in per_seed[0]["qat"].items():
        out["qat"][fmt] = {label: {rt: mean_std([s["qat"][fmt][label][rt] for s in per_seed])
                                   for rt in runs[label]} for label in runs}
    return out


def run_seed(seed, student_data, test, teacher, cache, args) -> dict:
    scarce, _ = setting_float("label-scarce", label_scarce(student_data, args.label_fraction, seed), test,
                              teacher, cache, args, seed)
    full, ce_student = setting_float("full-label", student_data, test, teacher, cache, args, seed)
    qat = setting_qat(ce_student, student_data, test, teacher, cache, args, seed)
    return {"label_scarce": scarce, "full_label": full, "qat": qat}


def main(argv=None) -> dict:
    args = parse_args(argv)
    torch.set_num_threads(2)
    if args.only_throughput:
        return only_throughput(args)
    started = time.perf_counter()
    student_data, teacher_data, test = load_data(args)
    teacher, teacher_acc = train_teacher(teacher_data, test, args)
    print(f"teacher {100 * teacher_acc:.2f}% ({time.perf_counter() - started:.0f} s)", flush=True)
    pairs = default_pairs(new_student(student_data.input_shape, 0), teacher, student_data.x[:2])
    cache = TeacherCache(teacher, student_data, [t for _, t in pairs])
    speed = throughput(student_data, teacher, args)
    print(f"throughput {speed['samples_per_s']}", flush=True)
    per_seed, seed_seconds = [], []
    for seed in range(args.seeds):
        t0 = time.perf_counter()
        per_seed.append(run_seed(seed, student_data, test, teacher, cache, args))
        seed_seconds.append(time.perf_counter() - t0)
        left = args.budget_min * 60 - (time.perf_counter() - started)
        if seed + 1 < args.seeds and left < max(seed_seconds) * 1.1:
            print(f"stopping after {seed + 1} seed(s): {left:.0f} s left of the budget", flush=True)
            break
    result = build_result(args, per_seed, teacher_acc, speed, seed_seconds, time.perf_counter() - started)
    write_outputs(result, Path(args.out))
    return result


def build_result(args, per_seed, teacher_acc, speed, seed_seconds, seconds) -> dict:
    agg = aggregate(per_seed)
    scarce = agg["label_scarce"]
    best = max((k for k in scarce if k != "ce"), key=lambda k: scarce[k]["mean"])
    w4 = agg["qat"]["w4a8"]
    best_top = max((k for k in w4 if k.startswith("topkld")), key=lambda k: w4[k]["torch"]["mean"])
    goals = {
        "label_scarce_best_minus_ce_points": scarce[best]["mean"] - scarce["ce"]["mean"], "label_scarce_best": best,
        "w4a8_best_topkld_minus_kd_points": w4[best_top]["torch"]["mean"] - w4["kd"]["torch"]["mean"],
        "w4a8_best_topkld": best_top, "throughput_ratio_cached": speed["ratio_cached"],
        "throughput_ratio_live": speed["ratio_live"],
    }
    return {"benchmark": "distill", "dataset": "fashion-mnist", "seeds_run": len(per_seed),
            "seeds_requested": args.seeds, "scale": vars(args) | {"image_px": 28 // args.pool, "student": STUDENT,
                                                                  "teacher": "TeacherCNN width 16"},
            "teacher_accuracy": 100 * teacher_acc, "results": agg, "per_seed": per_seed, "throughput": speed,
            "goals": goals, "seconds": seconds, "seconds_per_seed": seed_seconds, "torch": torch.__version__,
            "threads": torch.get_num_threads()}


def write_outputs(result: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (out / "distill.json").write_text(json.dumps(result, indent=2))
    try:
        plot(result, out / "distill.png")
    except ImportError:
        print("matplotlib missing: no plot", flush=True)
    print(json.dumps(result["goals"], indent=2))


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    agg = result["results"]
    fig, axes = plt.subplots(1, 3, figsize=(16, 4.5))
    for ax, setting in zip(axes[:2], ("label_scarce", "full_label")):
        names = list(agg[setting])
        ax.bar(names, [agg[setting][n]["mean"] for n in names], yerr=[agg[setting][n]["std"] for n in names])
        ax.axhline(agg[setting]["ce"]["mean"], color="k", lw=0.8, ls="--")
        ax.set_title(f"{setting.replace('_', '-')} (float)"), ax.set_ylabel("test top-1 %")
        ax.tick_params(axis="x", rotation=45)
        lo = min(agg[setting][n]["mean"] for n in names)
        ax.set_ylim(lo - 5, None)
    ax = axes[2]
    labels = list(agg["qat"]["int8"])
    xs = np.arange(len(labels))
    for i, fmt in enumerate(("int8", "w4a8")):
        vals = [agg["qat"][fmt][k]["torch"]["mean"] for k in labels]
        errs = [agg["qat"][fmt][k]["torch"]["std"] for k in labels]
        ax.bar(xs + 0.4 * i, vals, 0.4, yerr=errs, label=fmt)
    ax.set_xticks(xs + 0.2, labels, rotation=45), ax.legend(), ax.set_title("QAT (torch fake-quant)")
    ax.set_ylim(min(agg["qat"][f][k]["torch"]["mean"] for f in ("int8", "w4a8") for k in labels) - 5, None)
    fig.suptitle(f"Fashion-MNIST {result['scale']['image_px']} px, {result['seeds_run']} seed(s)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    if "--full" in sys.argv[1:]:  # issue 13's full-size benchmark: bench/distill_full.py
        import distill_full

        distill_full.main()
    else:
        main()
