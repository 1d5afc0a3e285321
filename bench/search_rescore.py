"""Re-score the archs of an earlier search benchmark and recompute Kendall τ against their stored accuracies.

    nice -n 10 python bench/search_rescore.py --seeds 8                       # random batches (as bench/search.py)
    nice -n 10 python bench/search_rescore.py --seeds 8 --batch-mode balanced # equal count per class
    nice -n 10 python bench/search_rescore.py --seeds 1 --batch-mode first    # the batch bench/search.py used

Distilled accuracies come from ``--results`` (bench/results/search.json: ``archs[i].kd_accuracy``), so no
student is retrained: each score seed draws a 64-sample batch, builds every arch with that seed and
scores it with every registered score. τ is reported per score as mean ± std over the score seeds.

``--batch-mode first`` takes ``x[:batch]`` of the class-sorted subset, i.e. one class only: what
bench/search.py scored with before it drew a random batch, kept to reproduce the stored numbers
(DisWOT now refuses a one-class batch, so in that mode its scores are recorded as NaN).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from edgekd.data import load_dataset
from edgekd.errors import ConfigError
from edgekd.models import TeacherCNN
from edgekd.search.scores import ScoreContext, get_score, list_scores
from search import RESULTS, SHAPE, build, score_batch, subset, train  # bench/search.py: this script's folder


def batch_for(xtr, ytr, n, seed, mode):
    """The batch one score seed probes with: seeded random (as bench/search.py now and ``edgekd.search``),
    ``balanced`` (``n // classes`` random samples of each class) or the first ``n`` rows."""
    if mode == "first":
        return xtr[:n], ytr[:n]
    if mode == "balanced":
        gen, classes = torch.Generator().manual_seed(seed), ytr.unique()
        per = n // len(classes)
        members = [torch.nonzero(ytr == c).flatten() for c in classes]
        index = torch.cat([m[torch.randperm(len(m), generator=gen)[:per]] for m in members])
        return xtr[index], ytr[index]
    return score_batch(xtr, ytr, n, seed)


def score_all(rows, x, y, teacher, trained, seed):
    """Every registered score (and DisWOT against the trained teacher when given) of every row's arch."""
    ctx = ScoreContext(x, y, teacher, "gaussian", seed)
    ctx_trained = ScoreContext(x, y, trained, "trained", seed) if trained is not None else None
    table = []
    for row in rows:
        model = build(row["arch"], seed)
        scores = {n: _score(n, ctx, model) for n in list_scores()}
        if ctx_trained is not None:
            scores["diswot_trained_teacher"] = _score("diswot", ctx_trained, model)
        table.append(scores)
    return table


def _score(name, ctx, model):
    try:
        return float(get_score(name)(ctx, model))
    except ConfigError:  # a score that refuses this batch (DisWOT on one class) ranks nothing
        return float("nan")


def kendall(table, truth):
    return {n: float(stats.kendalltau([s[n] for s in table], truth)[0]) for n in table[0]}


def summarize(per_seed, key):
    out = {}
    for name in per_seed[0][key]:
        taus = [s[key][name] for s in per_seed]
        out[name] = {"mean": float(np.mean(taus)), "std": float(np.std(taus)), "min": float(np.min(taus)),
                     "max": float(np.max(taus))}
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS / "search.json"))
    p.add_argument("--seeds", type=int, default=8, help="score seeds: batch, init of every candidate and teacher")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--batch-mode", choices=("random", "balanced", "first"), default="random")
    p.add_argument("--trained-teacher", action=argparse.BooleanOptionalAction, default=True,
                   help="retrain the benchmark's teacher (seeded) for diswot_trained_teacher")
    p.add_argument("--out", default=str(RESULTS / "search_rescore.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)  # as bench/search.py: the teacher retrains identically only single-threaded
    started = time.perf_counter()
    old = json.loads(Path(args.results).read_text())
    bench = old["args"]
    rows = old["archs"]
    acc = [r["kd_accuracy"] for r in rows]
    plain = [r["ce_accuracy"] for r in rows] if all("ce_accuracy" in r for r in rows) else None
    xtr, ytr = subset(load_dataset("fashion-mnist").train, bench["train"], bench["seed"])
    torch.manual_seed(bench["seed"])
    teacher = TeacherCNN(SHAPE, 10)
    trained = None
    if args.trained_teacher:
        train(teacher, xtr, ytr, None, bench["teacher_epochs"], bench["seed"])
        trained = teacher.eval()
    per_seed = []
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        x, y = batch_for(xtr, ytr, args.batch, seed, args.batch_mode)
        table = score_all(rows, x, y, teacher, trained, seed)
        taus = kendall(table, acc)
        record = {"seed": seed, "classes_in_batch": int(y.unique().numel()), "kendall_tau": taus}
        if plain is not None:  # plain (CE) accuracy, and the gain distillation brings over it
            record["kendall_tau_plain"] = kendall(table, plain)
            record["kendall_tau_kd_gain"] = kendall(table, [k - c for k, c in zip(acc, plain)])
        per_seed.append({**record, "scores": table})
        print(f"seed {seed}: " + " ".join(f"{n} {t:+.3f}" for n, t in sorted(taus.items())), flush=True)
    summary = summarize(per_seed, "kendall_tau")
    result = {"args": vars(args), "benchmark_args": bench, "archs": [r["arch"] for r in rows], "kd_accuracy": acc,
              "ce_accuracy": plain, "kendall_tau": summary}
    if plain is not None:
        result["kendall_tau_plain"] = summarize(per_seed, "kendall_tau_plain")
        result["kendall_tau_kd_gain"] = summarize(per_seed, "kendall_tau_kd_gain")
    result.update(per_seed=per_seed, seconds=time.perf_counter() - started)
    Path(args.out).write_text(json.dumps(result, indent=1))
    print(f"\n{len(per_seed)} score seeds, batch {args.batch} ({args.batch_mode}); Kendall τ, mean ± std [min, max]")
    header = f"{'score':24s} {'vs distilled accuracy':>32s}"
    print(header + (f" {'vs plain':>15s} {'vs KD gain':>15s}" if plain else ""))
    for name, s in sorted(summary.items(), key=lambda kv: -np.nan_to_num(kv[1]["mean"], nan=-9)):
        line = f"{name:24s} {s['mean']:+.3f} ± {s['std']:.3f}  [{s['min']:+.3f}, {s['max']:+.3f}]"
        if plain is not None:
            line += "".join(f"  {result[k][name]['mean']:+.3f} ± {result[k][name]['std']:.3f}"
                            for k in ("kendall_tau_plain", "kendall_tau_kd_gain"))
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
