"""Ground truth for the student search: distilled accuracy and measured latency of many architectures.

Any training-free score can then be re-ranked against it without training (``--rescore``):

    nice -n 10 python bench/search_groundtruth.py                     # defaults = the issue's scale (hours)
    OMP_NUM_THREADS=1 taskset -c 0 python bench/search_groundtruth.py --shards 2 --shard 0 --distill-only &
    OMP_NUM_THREADS=1 taskset -c 1 python bench/search_groundtruth.py --shards 2 --shard 1 --distill-only  # one core each
    python bench/search_groundtruth.py --rescore                      # scores and τ from the stored runs

1. A teacher (TeacherCNN, wider) trained on all 60,000 Fashion-MNIST training images to >= 90 %.
2. ``--archs`` architectures from the ResNet and MobileNetV2 spaces, stratified over the predicted
   ONNX Runtime int8 latency so that they span three budgets (the terciles' upper edges).
3. Each distilled (Hinton KD, T=4, 0.9/0.1) with ``--epochs`` on ``--train-size`` images for every
   seed in ``--seeds``, tested on the 10,000 test images; each run is appended to
   bench/results/search_groundtruth.jsonl at once, so an interrupted run resumes where it stopped.
4. Their int8 artifacts timed interleaved in ONNX Runtime (batch 1, 1 thread) with their repeatability.
5. ``--rescore``: every registered score over ``--score-draws`` initialization draws, Kendall τ with
   the seed-mean accuracy (mean ± std over draws), beside the seed-to-seed τ ceiling (τ between the
   two seeds' own rankings), FLOPs and parameters; then each score averaged over the draws, and pairs
   of them as rank combinations, judged by τ and by what they would pick under three latency budgets
   (bench/search_gt_analysis.py). Every arch's scores are stored, so a new combination needs no
   rescoring. JSON in bench/results/search_groundtruth.json.
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
from scipy import stats

from edgekd.data import load_dataset
from edgekd.distill.device import resolve_device
from edgekd.hw.fit import compile_onnx
from edgekd.hw.environment import environment
from edgekd.hw.features import arch_key
from edgekd.hw.interleave import profile_many
from edgekd.hw.model import latency_model
from edgekd.hw.sampling import sample_archs
from edgekd.models import TeacherCNN, create_student
from edgekd.search.scores import ScoreContext, count_flops, count_params, get_score, list_scores

sys.path.insert(0, str(Path(__file__).resolve().parent))
from search import accuracy, subset, train  # noqa: E402  (bench/search.py: the fixed KD recipe)
from search_gt_analysis import judge, with_combinations  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
RUNS = RESULTS / "search_groundtruth.jsonl"  # --results moves both
SHAPE = (1, 28, 28)
COMBINED = ("flops", "params", "snip", "synflow", "gradnorm", "nwot", "diswot")  # rank pairs judged too


def teacher_for(x, y, xte, yte, epochs: int, seed: int = 0):
    path = RESULTS / f"search_groundtruth_teacher_e{epochs}_s{seed}.pt"
    torch.manual_seed(seed)
    model = TeacherCNN(SHAPE, 10, width=48)
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
    else:
        train(model, x, y, None, epochs, seed, lr=3e-3)
        torch.save(model.state_dict(), path)
    acc = accuracy(model, xte, yte)
    print(f"teacher {acc:.4f} ({epochs} epochs, {len(x)} images)", flush=True)
    return model.eval(), acc


def pick_archs(n: int, seed: int) -> list[dict]:
    """``n`` archs from both spaces, an equal number from each third of the predicted int8 latency."""
    pool = sample_archs(8 * n, seed)
    model = latency_model("x86-cpu-onnxruntime", "int8")
    ms = np.array([model.predict_ms(a, SHAPE) for a in pool])
    edges = np.quantile(ms, [1 / 3, 2 / 3])
    bins = np.digitize(ms, edges)
    rng = np.random.default_rng(seed)
    chosen = []
    for b in range(3):
        idx = np.flatnonzero(bins == b)
        chosen += [pool[i] for i in rng.choice(idx, size=min(len(idx), n // 3 + (b < n % 3)), replace=False)]
    return chosen


def chosen_archs(n: int, seed: int) -> list[dict]:
    """The architectures of this ground truth, fixed once in bench/results: picking them again with a
    refitted latency profile would stratify differently and start other architectures."""
    path = RESULTS / "search_groundtruth_archs.json"
    if path.exists():
        archs = json.loads(path.read_text())
        return [{k: tuple(v) if isinstance(v, list) else v for k, v in a.items()} for a in archs]
    archs = pick_archs(n, seed)
    path.write_text(json.dumps(archs, indent=1, default=list) + "\n")
    return archs


def done_runs() -> dict:
    if not RUNS.exists():
        return {}
    rows = [json.loads(line) for line in RUNS.read_text().splitlines() if line.strip()]
    return {(r["key"], r["seed"], r["epochs"], r["train_size"]): r for r in rows}


def step_seconds(arch, x, memory_format) -> float:
    """Seconds of one training step of ``arch``: orders the pending runs cheapest first."""
    kwargs = dict(arch)
    model = create_student(kwargs.pop("name"), SHAPE, 10, **kwargs).to(memory_format=memory_format)
    opt = torch.optim.SGD(model.parameters(), lr=0.0)
    batch = x[:128].contiguous(memory_format=memory_format)
    for i in range(2):
        if i == 1:
            started = time.perf_counter()
        opt.zero_grad()
        model(batch).sum().backward()
    return time.perf_counter() - started


def distill_all(args, archs, data, teacher) -> None:
    """Every pending (arch, seed) run, cheapest first, both seeds of an arch side by side; shard k takes
    every shards-th run of that order, so shards finish architectures, not seeds, together."""
    (x, y), (xte, yte) = data
    with torch.no_grad():
        t_logits = torch.cat([teacher(x[i:i + 1024]) for i in range(0, len(x), 1024)])
    memory_format = torch.channels_last if args.channels_last else torch.contiguous_format
    done = done_runs()
    pending = [(k, arch, seed) for k, arch in enumerate(archs) for seed in args.seeds
               if (arch_key(arch), seed, args.epochs, args.train_size) not in done]
    cost = {k: step_seconds(arch, x, memory_format) for k, arch, _ in pending}
    pending.sort(key=lambda run: (cost[run[0]], run[0], run[2]))
    device = resolve_device(args.device)  # CUDA: same recipe, other kernels; each row records where it ran
    x, y, t_logits, xte, yte = (t.to(device) for t in (x, y, t_logits, xte, yte))
    for k, arch, seed in pending[args.shard::args.shards]:
        if (arch_key(arch), seed, args.epochs, args.train_size) in done_runs():  # a rerun of the same shard
            continue
        kwargs = dict(arch)
        torch.manual_seed(seed)
        model = create_student(kwargs.pop("name"), SHAPE, 10, **kwargs).to(device, memory_format=memory_format)
        # channels-last halves the step time of the depthwise students on CPU; same recipe, other summation order
        seconds = train(model, x.contiguous(memory_format=memory_format), y, t_logits, args.epochs, seed)
        row = {"key": arch_key(arch), "arch": arch, "seed": seed, "epochs": args.epochs, "train_size": args.train_size,
               "accuracy": accuracy(model, xte, yte), "train_seconds": seconds,
               "params": count_params(model.cpu()), "mflops": count_flops(model, SHAPE) / 1e6, "device": device.type,
               "memory_format": "channels_last" if args.channels_last else "contiguous"}
        with RUNS.open("a") as f:
            f.write(json.dumps(row, default=list) + "\n")
        print(f"[{k + 1}/{len(archs)}] seed {seed}: {row['accuracy']:.4f} in {seconds:.0f} s {arch}", flush=True)


def measure_latency(archs) -> dict[str, dict]:
    out = {}
    for start in range(0, len(archs), 6):
        group = archs[start:start + 6]
        with tempfile.TemporaryDirectory() as tmp:
            files = {}
            for i, arch in enumerate(group):
                folder = Path(tmp) / str(i)
                folder.mkdir()
                files[arch_key(arch)] = (compile_onnx(arch, SHAPE, "int8", folder)[1], SHAPE)
            for key, r in profile_many(files, rounds=5, runs=20).items():
                out[key] = {"int8_ms": r.median_ms, "spread": r.spread}
    return out


def rescore(args, archs, data, teacher, latency: dict[str, dict]) -> dict:
    (x, y), _ = data
    rows = [r for r in done_runs().values() if r["epochs"] == args.epochs and r["train_size"] == args.train_size]
    by_arch: dict[str, dict] = {}
    for r in rows:
        by_arch.setdefault(r["key"], {"arch": r["arch"], "acc": {}})["acc"][r["seed"]] = r["accuracy"]
    complete = [v for v in by_arch.values() if all(s in v["acc"] for s in args.seeds)]
    if len(complete) < 8:
        raise SystemExit(f"only {len(complete)} architectures have every seed; distill more first")
    acc = np.array([np.mean(list(v["acc"].values())) for v in complete])
    out = {"architectures": len(complete), "seeds": args.seeds}
    if len(args.seeds) >= 2:
        a, b = ([v["acc"][s] for v in complete] for s in args.seeds[:2])
        out["seed_to_seed_tau"] = float(stats.kendalltau(a, b)[0])
        out["seed_to_seed_abs_diff_pts"] = float(100 * np.mean(np.abs(np.array(a) - np.array(b))))
    taus: dict[str, list[float]] = {}
    draws: dict[str, list[list[float]]] = {}
    for draw in range(args.score_draws):
        g = torch.Generator().manual_seed(draw)
        idx = torch.randperm(len(x), generator=g)[:64]
        ctx = ScoreContext(x[idx], y[idx], teacher=teacher, seed=draw)
        for name in list_scores():
            values = []
            for v in complete:
                kwargs = dict(v["arch"])
                torch.manual_seed(draw)
                values.append(get_score(name)(ctx, create_student(kwargs.pop("name"), SHAPE, 10, **kwargs)))
            taus.setdefault(name, []).append(float(stats.kendalltau(values, acc)[0]))
            draws.setdefault(name, []).append(values)
    out["kendall_tau"] = {n: {"mean": float(np.nanmean(t)), "std": float(np.nanstd(t))} for n, t in taus.items()}
    # the score averaged over the draws (allowed by the issue; it costs score_draws times one draw)
    mean_scores = {n: np.nanmean(np.array(v, float), axis=0) for n, v in draws.items()}
    ms = np.array([latency[arch_key(v["arch"])]["int8_ms"] for v in complete])
    out["per_arch"] = [{"arch": v["arch"], "accuracy": v["acc"], "int8_ms": float(t),
                        "scores": {n: float(s[i]) for n, s in mean_scores.items()}}
                       for i, (v, t) in enumerate(zip(complete, ms))]
    out["judged_on_draw_mean"] = judge(with_combinations(mean_scores, COMBINED), acc, ms)
    return out


def main() -> None:
    global RESULTS, RUNS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=24)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--train-size", type=int, default=20000)
    parser.add_argument("--teacher-epochs", type=int, default=12)
    parser.add_argument("--score-draws", type=int, default=8)
    parser.add_argument("--arch-seed", type=int, default=7)
    parser.add_argument("--rescore", action="store_true", help="score the stored runs; train nothing new")
    parser.add_argument("--shard", type=int, default=0, help="with --shards: distill only archs k with k %% shards == shard")
    parser.add_argument("--shards", type=int, default=1, help="split the distillation over this many processes")
    parser.add_argument("--distill-only", action="store_true", help="stop after distilling (for shards)")
    parser.add_argument("--no-channels-last", dest="channels_last", action="store_false",
                        help="train in NCHW (the first 16 runs did; channels-last trains about 2x faster here)")
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the runs, teacher and JSON")
    parser.add_argument("--device", default="cpu", help="where the distillations train: cpu, cuda, cuda:N")
    args = parser.parse_args()
    RESULTS, RUNS = args.results, args.results / "search_groundtruth.jsonl"
    RESULTS.mkdir(parents=True, exist_ok=True)
    bundle = load_dataset("fashion-mnist")
    xtr, ytr = bundle.train.x, bundle.train.y
    xte, yte = bundle.test.x, bundle.test.y
    teacher, teacher_acc = teacher_for(xtr, ytr, xte, yte, args.teacher_epochs)
    data = (subset(bundle.train, args.train_size, 0), (xte, yte))
    archs = chosen_archs(args.archs, args.arch_seed)
    started = time.perf_counter()
    if not args.rescore:
        distill_all(args, archs, data, teacher)
        if args.distill_only:
            return
    latency = measure_latency(archs)
    result = {"args": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
              "teacher_accuracy": teacher_acc, "rescore": rescore(args, archs, data, teacher, latency),
              "latency": latency, "machine": environment(), "seconds": time.perf_counter() - started}
    (RESULTS / "search_groundtruth.json").write_text(json.dumps(result, indent=1, default=float) + "\n")
    summary = {k: v for k, v in result["rescore"].items() if k not in ("per_arch", "judged_on_draw_mean")}
    print(json.dumps(summary, indent=1, default=float))
    print(f"{'score (draw mean)':22} {'tau':>6} {'regret pts':>10}  picks' accuracy per budget")
    for name, row in result["rescore"]["judged_on_draw_mean"].items():
        picks = " ".join(f"{100 * p['accuracy']:.2f}" for p in row["budget_picks"])
        print(f"{name:22} {row['kendall_tau']:6.2f} {row['mean_regret_pts']:10.2f}  {picks}")


if __name__ == "__main__":
    main()
