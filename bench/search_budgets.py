"""Searched vs default student at three latency budgets, in ONNX Runtime int8 measured here (issue 12).

    python bench/search_budgets.py --plan                  # the searches (timing here: run it alone)
    OMP_NUM_THREADS=1 taskset -c 0 python bench/search_budgets.py --shards 2 --shard 0 &
    OMP_NUM_THREADS=1 taskset -c 1 python bench/search_budgets.py --shards 2 --shard 1   # the distillations
    python bench/search_budgets.py --report                # table + JSON once every run is in

1. Budgets: members of the build's default family (the default student's widths × ``--scales``:
   0.5, 0.75, 1), each the default at its own measured int8 latency here (+ 2 %, the timing's noise).
2. Per budget and score in ``--scores``: the build's own search
   (``edgekd.search.build.BUILD_SEARCH``: space, population, iterations, the default family proposed
   first, at most 2× the default's FLOPs, fewer parameters than the teacher) with each candidate's
   int8 artifact timed here instead of the latency model (the profile on main came from another CPU).
3. Every distinct student distilled with the ground truth's recipe (bench/search_groundtruth.py: its
   teacher at 93.4 %, Hinton KD, 10 epochs on 20 k Fashion-MNIST images, channels-last) for every seed
   in ``--seeds``; runs appended to bench/results/search_budgets.jsonl (resumable).
4. The picks, the default and the teacher's own int8 artifact timed interleaved (5 rounds).

Report: per budget and score, searched − default (mean ± std over seeds, points), the measured
latencies, and the student's speed-up over the compiled teacher with its accuracy gap to the teacher.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_groundtruth as gt

from edgekd.data import load_dataset
from edgekd.hw.environment import environment
from edgekd.hw.features import arch_key
from edgekd.hw.fit import compile_onnx
from edgekd.hw.interleave import profile_many
from edgekd.models import DEFAULT_STUDENT, create_student
from edgekd.onnx_export import export_onnx
from edgekd.quant.qdq import QDQConfig, quantize_onnx
from edgekd.search import search
from edgekd.search.build import BUILD_SEARCH, DEFAULT_FAMILY_SCALES, default_family
from edgekd.search.scores import count_flops, count_params

PLAN = gt.RESULTS / "search_budgets_plan.json"
RUNS = gt.RESULTS / "search_budgets.jsonl"
TARGET = "x86-cpu-onnxruntime"


class MeasuredInt8:
    """``fn(arch) -> ms``: the arch's int8 QDQ artifact timed here in ONNX Runtime (1 thread), memoized."""

    kind = "measured here"

    def __init__(self, folder: Path):
        self.folder, self.cache = folder, {}

    def __call__(self, arch: dict) -> float:
        key = arch_key(arch)
        if key not in self.cache:
            sub = self.folder / str(len(self.cache))
            sub.mkdir()
            model_file = compile_onnx(arch, gt.SHAPE, "int8", sub)[1]
            self.cache[key] = profile_many({key: (model_file, gt.SHAPE)}, rounds=3, runs=20)[key].median_ms
        return self.cache[key]


def teacher_int8(teacher, folder: Path) -> Path:
    fp32 = export_onnx(teacher.eval(), gt.SHAPE, folder / "teacher.onnx")
    calib = np.random.default_rng(0).standard_normal((16, *gt.SHAPE)).astype(np.float32)
    return quantize_onnx(fp32, folder / "teacher_int8.onnx", calib, QDQConfig())


def plan(args, teacher, x, y) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        measure = MeasuredInt8(Path(tmp))
        # completed as the search completes them, so a member is timed once
        family = {scale: {**a, "act": a.get("act", "relu")} for scale, a in zip(DEFAULT_FAMILY_SCALES,
                                                                                default_family())}
        family_ms = {scale: measure(a) for scale, a in family.items()}
        default_flops = count_flops(create_student(DEFAULT_STUDENT["name"], gt.SHAPE, 10,
                                                   **{k: v for k, v in DEFAULT_STUDENT.items() if k != "name"}),
                                    gt.SHAPE)
        settings = {k: v for k, v in BUILD_SEARCH.items() if k != "flops_factor"}
        budgets = []
        for scale in args.scales:
            budget = family_ms[scale] * 1.02
            row = {"default_scale": scale, "budget_ms": budget, "default": family[scale], "searched": {}}
            for score in args.scores:
                started = time.perf_counter()
                res = search(teacher, (x, y), TARGET, budget_ms=budget, latency=measure, progress=False,
                             max_flops=int(BUILD_SEARCH["flops_factor"] * default_flops),
                             max_params=count_params(teacher) - 1, include=default_family(), seed=0,
                             **{**settings, "score": score})
                row["searched"][score] = {"arch": res.arch, "ms": res.predicted_latency_ms,
                                          "search_seconds": time.perf_counter() - started}
                print(f"budget {budget:.4f} ms, {score}: {res.arch} ({res.predicted_latency_ms:.4f} ms)", flush=True)
            budgets.append(row)
        out = {"family_ms": {str(k): v for k, v in family_ms.items()}, "budgets": budgets,
               "measured": dict(measure.cache)}
    PLAN.write_text(json.dumps(out, indent=1, default=list) + "\n")
    return out


def students(planned: dict) -> list[dict]:
    archs = {}
    for b in planned["budgets"]:
        for arch in [b["default"], *(s["arch"] for s in b["searched"].values())]:
            if arch is not None:
                archs.setdefault(arch_key(arch), {k: tuple(v) if isinstance(v, list) else v for k, v in arch.items()})
    return list(archs.values())


def done() -> dict:
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()] if RUNS.exists() else []
    return {(r["key"], r["seed"]): r for r in rows}


def distill(args, planned, teacher, x, y, xte, yte) -> None:
    with torch.no_grad():
        t_logits = torch.cat([teacher(x[i:i + 1024]) for i in range(0, len(x), 1024)])
    # seed-major: every student's first seed before any student's second
    runs = [(arch, seed) for seed in args.seeds for arch in students(planned) if (arch_key(arch), seed) not in done()]
    for arch, seed in runs[args.shard::args.shards]:
        kwargs = dict(arch)
        torch.manual_seed(seed)
        model = create_student(kwargs.pop("name"), gt.SHAPE, 10, **kwargs).to(memory_format=torch.channels_last)
        seconds = gt.train(model, x.contiguous(memory_format=torch.channels_last), y, t_logits, 10, seed)
        row = {"key": arch_key(arch), "arch": arch, "seed": seed, "accuracy": gt.accuracy(model, xte, yte),
               "train_seconds": seconds}
        with RUNS.open("a") as f:
            f.write(json.dumps(row, default=list) + "\n")
        print(f"seed {seed}: {row['accuracy']:.4f} in {seconds:.0f} s {arch}", flush=True)


def report(args, planned, teacher, teacher_acc) -> dict:
    runs = done()
    with tempfile.TemporaryDirectory() as tmp:
        files = {"teacher": (teacher_int8(teacher, Path(tmp)), gt.SHAPE)}
        for i, arch in enumerate(students(planned)):
            (Path(tmp) / str(i)).mkdir()
            files[arch_key(arch)] = (compile_onnx(arch, gt.SHAPE, "int8", Path(tmp) / str(i))[1], gt.SHAPE)
        timed = {k: r.median_ms for k, r in profile_many(files, rounds=5, runs=50).items()}

    def accs(arch):
        return [runs[(arch_key(arch), s)]["accuracy"] for s in args.seeds]

    rows = []
    for b in planned["budgets"]:
        d = b["default"]
        for score, s in b["searched"].items():
            diff = 100 * (np.array(accs(s["arch"])) - np.array(accs(d)))
            rows.append({"budget_ms": b["budget_ms"], "score": score, "searched": s["arch"], "default": d,
                         "searched_is_default": arch_key(s["arch"]) == arch_key(d),
                         "searched_acc": float(np.mean(accs(s["arch"]))), "default_acc": float(np.mean(accs(d))),
                         "diff_pts_mean": float(diff.mean()), "diff_pts_std": float(diff.std()),
                         "searched_ms": timed[arch_key(s["arch"])], "default_ms": timed[arch_key(d)],
                         "speedup_vs_teacher": timed["teacher"] / timed[arch_key(s["arch"])],
                         "gap_to_teacher_pts": 100 * (teacher_acc - float(np.mean(accs(s["arch"])))),
                         "search_seconds": s["search_seconds"]})
    print(f"{'budget':>8} {'score':8} {'searched':>8} {'default':>8} {'diff (pts)':>12} {'ms s/d':>13} "
          f"{'x teacher':>9} {'gap':>5}")
    for r in rows:
        print(f"{r['budget_ms']:8.4f} {r['score']:8} {100 * r['searched_acc']:8.2f} {100 * r['default_acc']:8.2f} "
              f"{r['diff_pts_mean']:+6.2f}±{r['diff_pts_std']:.2f} {r['searched_ms']:6.4f}/{r['default_ms']:.4f} "
              f"{r['speedup_vs_teacher']:9.2f} {r['gap_to_teacher_pts']:5.2f}")
    return {"teacher_accuracy": teacher_acc, "teacher_int8_ms": timed["teacher"], "seeds": args.seeds,
            "plan": planned, "rows": rows, "machine": environment()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scales", type=float, nargs="+", default=[0.5, 0.75, 1.0])
    parser.add_argument("--scores", nargs="+", default=["diswot", "flops", "params"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--plan", action="store_true", help="run the searches only")
    parser.add_argument("--report", action="store_true", help="time the picks and write the table")
    parser.add_argument("--shard", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    bundle = load_dataset("fashion-mnist")
    teacher, teacher_acc = gt.teacher_for(bundle.train.x, bundle.train.y, bundle.test.x, bundle.test.y, 12)
    x, y = gt.subset(bundle.train, 20000, 0)
    if args.plan or not PLAN.exists():
        plan(args, teacher, x, y)
        if args.plan:
            return
    planned = json.loads(PLAN.read_text())
    if args.report:
        result = report(args, planned, teacher, teacher_acc)
        (gt.RESULTS / "search_budgets.json").write_text(json.dumps(result, indent=1, default=list) + "\n")
        return
    distill(args, planned, teacher, x, y, bundle.test.x, bundle.test.y)


if __name__ == "__main__":
    main()
