"""Benchmark of the training-free search on Fashion-MNIST: rank correlation, cost, searched vs hand-picked.

    nice -n 10 python bench/search.py            # ~20-25 min on 2 busy cores; JSON + plots in bench/results/

1. Sample ``--archs`` ResNet-space architectures spread over FLOPs (≤ ``--max-mflops``), distill each
   with one short fixed recipe (Hinton KD from a trained teacher, ``--epochs`` on ``--train`` samples),
   score each with every registered score, and report Kendall τ / Spearman ρ of score vs accuracy.
   With ``--plain`` the same archs are also trained without a teacher (CE) to compare the winners.
2. Search cost: the part-3 DisWOT search's wall time vs training every candidate it scored with the
   recipe (per-candidate training time from a FLOPs fit of the times measured in part 1).
3. Under the latency of the default student (fp32 ONNX Runtime, 1 thread, measured here), the
   searched student vs the default hand-picked one, both distilled with the recipe, ``--seeds`` seeds.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import random
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from scipy import stats

import edgekd
from edgekd.data import load_dataset
from edgekd.distill.losses.kd import kd_kl
from edgekd.models import DEFAULT_STUDENT, TeacherCNN, create_student
from edgekd.search.constraints import measure_onnx_ms
from edgekd.search.scores import ScoreContext, count_flops, get_score, list_scores
from edgekd.search.spaces import make_space

RESULTS = Path(__file__).resolve().parent / "results"
SEARCHES: list = []  # the part-3 search, whose cost part 2 reports
SHAPE = (1, 28, 28)


def subset(data, n, seed):
    """A class-balanced random subset of ``n`` samples."""
    g = torch.Generator().manual_seed(seed)
    per = n // 10
    idx = torch.cat([torch.nonzero(data.y == c).flatten()[torch.randperm(int((data.y == c).sum()), generator=g)[:per]]
                     for c in range(10)])
    return data.x[idx], data.y[idx]


def train(model, x, y, teacher_logits, epochs, seed, lr=5e-3, bs=128):
    """The fixed short recipe: AdamW + one-cycle; KD (T=4, 0.9/0.1) with a teacher, CE without. Seconds."""
    torch.manual_seed(seed)
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=1e-4)
    steps = epochs * math.ceil(len(x) / bs)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.15)
    gen = torch.Generator().manual_seed(seed)
    started = time.perf_counter()
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), bs):
            idx = order[i:i + bs]
            out = model(x[idx])
            loss = F.cross_entropy(out, y[idx])
            if teacher_logits is not None:
                loss = 0.1 * loss + 0.9 * kd_kl(out, teacher_logits[idx], 4.0)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return time.perf_counter() - started


@torch.no_grad()
def accuracy(model, x, y):
    model.eval()
    pred = torch.cat([model(x[i:i + 500]).argmax(1) for i in range(0, len(x), 500)])
    return float((pred == y).float().mean())


def build(arch, seed=0):
    torch.manual_seed(seed)
    return create_student(arch["name"], SHAPE, 10, **{k: v for k, v in arch.items() if k != "name"})


def resnet_macs(arch, hw=28, cin=1, classes=10):
    """Multiply-accumulates of a ResNet-space arch, in closed form (building deep candidates is slow)."""
    widths, depths = arch["widths"], arch["depths"]
    total, c = hw * hw * cin * widths[0] * 9, widths[0]
    for i, (w, d) in enumerate(zip(widths, depths)):
        if i > 0:
            hw = (hw + 1) // 2
        total += hw * hw * (c * w * 9 + w * w * 9 + (c * w if (i > 0 or c != w) else 0))
        total += (d - 1) * 2 * hw * hw * w * w * 9
        c = w
    return total + c * classes


def sample_archs(n, max_mflops, seed):
    """``n`` distinct ResNet-space archs spread evenly over FLOPs up to ``max_mflops``."""
    space = make_space("resnet", ["conv", "batchnorm", "relu", "add", "global_avgpool", "linear"])
    rng, pool, seen = random.Random(seed), [], set()
    for _ in range(3000):
        arch = space.sample(rng)
        key = json.dumps(arch, sort_keys=True)
        if key in seen:
            continue
        seen.add(key)
        flops = resnet_macs(arch)
        if flops <= max_mflops * 1e6:
            pool.append((flops, arch))
        if len(pool) >= 12 * n:
            break
    pool.sort(key=lambda p: p[0])
    if len(pool) < n:
        raise SystemExit(f"only {len(pool)} archs under {max_mflops} MMAC; raise --max-mflops")
    picks = np.unique(np.linspace(0, len(pool) - 1, n).round().astype(int))
    archs = [pool[i][1] for i in picks]
    assert all(count_flops(build(a), SHAPE) == resnet_macs(a) for a in archs[:3])  # the closed form is right
    return archs


def rows_from(path):
    """Part-1 rows of an earlier run: its JSON, or the lines it printed (latency 3 decimals, seconds rounded)."""
    text = Path(path).read_text()
    if path.endswith(".json"):
        return json.loads(text)["archs"]
    pattern = re.compile(r"^\[\d+/\d+\]\s+([\d.]+) MMAC ([\d.]+) ms KD ([\d.]+) \((\d+) s\) (\{.*\})$")
    rows = []
    for line in text.splitlines():
        m = pattern.match(line)
        if m:
            arch = ast.literal_eval(m.group(5))
            rows.append({"arch": arch, "flops": resnet_macs(arch), "latency_ms": float(m.group(2)),
                         "kd_accuracy": float(m.group(3)), "kd_seconds": float(m.group(4))})
    return rows


def score_batch(x, y, n=64, seed=0):
    """A seeded random batch of ``n``: ``subset`` sorts by class, so its first ``n`` rows hold one class."""
    index = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n]
    return x[index], y[index]


def score_row(row, xtr, ytr, teacher):
    """Every registered score of ``row["arch"]`` at init, plus DisWOT against the trained teacher."""
    x, y = score_batch(xtr, ytr)
    ctx = ScoreContext(x, y, teacher, "gaussian", 0)
    ctx_trained = ScoreContext(x, y, teacher, "trained", 0)
    model = build(row["arch"])
    t0 = time.perf_counter()
    row["scores"] = {n: get_score(n)(ctx, model) for n in list_scores()}
    row["scores"]["diswot_trained_teacher"] = get_score("diswot")(ctx_trained, model)
    row["score_seconds"] = time.perf_counter() - t0


def part1(args, xtr, ytr, xte, yte, teacher, t_logits):
    archs = sample_archs(args.archs, args.max_mflops, args.seed)
    rows = []
    for i, arch in enumerate(archs):
        model = build(arch)
        row = {"arch": arch, "flops": count_flops(model, SHAPE), "latency_ms": measure_onnx_ms(model, SHAPE, 1)}
        score_row(row, xtr, ytr, teacher)
        row["kd_seconds"] = train(model, xtr, ytr, t_logits, args.epochs, args.seed)
        row["kd_accuracy"] = accuracy(model, xte, yte)
        rows.append(row)
        print(f"[{i + 1}/{len(archs)}] {row['flops'] / 1e6:6.2f} MMAC {row['latency_ms']:.3f} ms "
              f"KD {row['kd_accuracy']:.4f} ({row['kd_seconds']:.0f} s) {arch}", flush=True)
    return rows


def plain(args, rows, xtr, ytr, xte, yte, deadline):
    for row in rows:
        if time.perf_counter() + 1.2 * row["kd_seconds"] > deadline:
            print("plain training stopped: time budget", flush=True)
            return False
        model = build(row["arch"])
        row["ce_seconds"] = train(model, xtr, ytr, None, args.epochs, args.seed)
        row["ce_accuracy"] = accuracy(model, xte, yte)
    return True


def correlations(rows, key="kd_accuracy"):
    acc = [r[key] for r in rows]
    out = {}
    for name in rows[0]["scores"]:
        s = [r["scores"][name] for r in rows]
        out[name] = {"kendall_tau": float(stats.kendalltau(s, acc)[0]), "spearman_rho": float(stats.spearmanr(s, acc)[0])}
    return out


def part2(rows, res):
    """The part-3 DisWOT search's wall time vs training each candidate it scored (FLOPs fit of part 1)."""
    fit = np.polyfit([r["flops"] for r in rows], [r["kd_seconds"] for r in rows], 1)
    seconds = res.seconds
    scored = {json.dumps(r["arch"], sort_keys=True): r["flops"] for r in res.history if r["score"] is not None}
    train_s = float(sum(max(np.polyval(fit, f), 0.0) for f in scored.values()))
    return {"search_seconds": seconds, "proposals": len(res.history), "scored": len(scored),
            "rejected": res.rejected, "train_all_scored_seconds_estimated": train_s,
            "ratio": train_s / seconds, "fit_seconds_per_mmac": float(fit[0] * 1e6), "chosen": res.arch,
            "plot": res.plot_path}


def part3(args, xtr, ytr, xte, yte, teacher, t_logits):
    default = {**DEFAULT_STUDENT}
    default_ms = measure_onnx_ms(build(default), SHAPE, 1, runs=200)
    budget = round(default_ms * 1.1, 4)  # "similar latency": within 10% of the hand-picked student
    res = edgekd.search(teacher, (xtr, ytr), "x86-cpu-onnxruntime", space="resnet", budget_ms=budget,
                        population=args.population, iterations=args.iterations, seed=args.seed, threads=1, progress=False,
                        out_dir=RESULTS / "search_part3")
    SEARCHES.append(res)
    out = {"budget_ms": budget, "default": default, "searched": res.arch,
           "default_ms": default_ms, "searched_ms": measure_onnx_ms(build(res.arch), SHAPE, 1, runs=200),
           "default_flops": count_flops(build(default), SHAPE), "searched_flops": res.flops,
           "search_seconds": res.seconds, "rejected": res.rejected, "runs": []}
    for seed in range(args.seeds):
        accs = {}
        for label, arch in (("default", default), ("searched", res.arch)):
            model = build(arch, seed)
            train(model, xtr, ytr, t_logits, args.epochs, seed)
            accs[label] = accuracy(model, xte, yte)
        out["runs"].append({"seed": seed, **accs, "diff_points": 100 * (accs["searched"] - accs["default"])})
        print(f"part 3 seed {seed}: {accs} searched {res.arch} ({out['searched_ms']:.3f} ms) vs default "
              f"({out['default_ms']:.3f} ms)", flush=True)
    diffs = [r["diff_points"] for r in out["runs"]]
    out["mean_diff_points"], out["std_diff_points"] = float(np.mean(diffs)), float(np.std(diffs))
    return out


def plots(result):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows, corr = result["archs"], result["correlations_kd"]
    names = list(corr)
    cols = 4
    fig, axes = plt.subplots(math.ceil(len(names) / cols), cols, figsize=(14, 3 * math.ceil(len(names) / cols)))
    for ax, name in zip(axes.flat, names):
        ax.scatter([r["scores"][name] for r in rows], [100 * r["kd_accuracy"] for r in rows], s=12)
        ax.set_title(f"{name}: τ={corr[name]['kendall_tau']:.2f} ρ={corr[name]['spearman_rho']:.2f}", fontsize=9)
        ax.set_ylabel("distilled top-1 %", fontsize=8)
    for ax in list(axes.flat)[len(names):]:
        ax.axis("off")
    fig.tight_layout()
    fig.savefig(RESULTS / "search_scores_vs_accuracy.png", dpi=100)
    plt.close(fig)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--train", type=int, default=4000)
    p.add_argument("--test", type=int, default=2000)
    p.add_argument("--archs", type=int, default=24)
    p.add_argument("--max-mflops", type=float, default=12.0)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--teacher-epochs", type=int, default=4)
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--population", type=int, default=16)
    p.add_argument("--iterations", type=int, default=48)
    p.add_argument("--plain", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--minutes", type=float, default=25.0, help="time budget; plain training is dropped to fit")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--rescore", metavar="JSON_OR_LOG", help="reuse the archs and accuracies of an earlier run "
                   "(its search.json or its printed log); recompute scores, parts 2 and 3")
    p.add_argument("--threads", type=int, default=1, help="1: on busy shared cores 2 threads ran ~20x slower")
    args = p.parse_args(argv)
    started = time.perf_counter()
    deadline = started + 60 * args.minutes
    torch.set_num_threads(args.threads)
    bundle = load_dataset("fashion-mnist")
    xtr, ytr = subset(bundle.train, args.train, args.seed)
    xte, yte = subset(bundle.test, args.test, args.seed)
    torch.manual_seed(args.seed)
    teacher = TeacherCNN(SHAPE, 10)
    t_secs = train(teacher, xtr, ytr, None, args.teacher_epochs, args.seed)
    teacher.eval()
    with torch.no_grad():
        t_logits = torch.cat([teacher(xtr[i:i + 500]) for i in range(0, len(xtr), 500)])
    result = {"args": vars(args), "teacher": {"accuracy": accuracy(teacher, xte, yte), "seconds": t_secs,
                                              "flops": count_flops(teacher, SHAPE)}}
    print(f"teacher {result['teacher']}", flush=True)
    if args.rescore:  # same archs and accuracies (seeded, 1 thread: the teacher retrains identically); new scores
        rows = rows_from(args.rescore)
        for row in rows:
            row["arch"] = {k: tuple(v) if isinstance(v, list) else v for k, v in row["arch"].items()}
            score_row(row, xtr, ytr, teacher)
        result["rescored"] = True
    else:
        rows = part1(args, xtr, ytr, xte, yte, teacher, t_logits)
    result["archs"] = rows
    result["correlations_kd"] = correlations(rows)
    result["part3"] = part3(args, xtr, ytr, xte, yte, teacher, t_logits)
    result["part2"] = part2(rows, SEARCHES[0])
    if args.plain and plain(args, rows, xtr, ytr, xte, yte, deadline):
        result["correlations_plain"] = correlations(rows, "ce_accuracy")
        best_ce = max(rows, key=lambda r: r["ce_accuracy"])
        best_kd = max(rows, key=lambda r: r["kd_accuracy"])
        result["winners"] = {"plain": best_ce["arch"], "plain_acc": best_ce["ce_accuracy"],
                             "distilled": best_kd["arch"], "distilled_acc": best_kd["kd_accuracy"],
                             "same": best_ce["arch"] == best_kd["arch"]}
    result["seconds"] = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "search.json").write_text(json.dumps(result, indent=1, default=list))
    plots(result)
    print("\nscore                    kendall τ   spearman ρ")
    for name, c in sorted(result["correlations_kd"].items(), key=lambda kv: -kv[1]["kendall_tau"]):
        print(f"{name:24s} {c['kendall_tau']:9.3f} {c['spearman_rho']:11.3f}")
    print(json.dumps({k: result[k] for k in ("part2", "part3", "seconds") if k in result}, indent=1, default=list))
    if "winners" in result:
        print(json.dumps(result["winners"], default=list))
    return 0


if __name__ == "__main__":
    sys.exit(main())
