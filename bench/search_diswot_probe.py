"""What DisWOT ranks on the search benchmark's archs: its two terms, depth and size, the teacher's own arch.

    nice -n 10 python bench/search_diswot_probe.py --seeds 4      # ~3 min on 2 busy cores

For each score seed (random 64-sample batch, as bench/search.py): M_s and M_r of every arch of
``--results`` against the Gaussian-initialized teacher, their ranges, Kendall τ of −M_s, −M_r and the
DisWOT score against distilled accuracy, total depth and parameter count, and where the teacher's own
architecture (re-initialized as a candidate) would rank among the archs. The same with a deep ResNet
as the teacher shows whether a depth preference follows the teacher or comes with the score itself
(the stored accuracies were distilled from the benchmark's teacher, so τ vs accuracy there is only
for reference). Needs no training: with a Gaussian teacher its trained weights are never used.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from scipy import stats

from edgekd.data import load_dataset
from edgekd.models import TeacherCNN, create_student
from edgekd.search.scores import ScoreContext, count_params
from edgekd.search.scores.diswot import diswot_parts
from search import RESULTS, SHAPE, build, score_batch, subset  # bench/search.py: this script's folder

TEACHERS = {
    "benchmark TeacherCNN (5 convs)": lambda: TeacherCNN(SHAPE, 10),
    "ResNet depths (5,5,5) widths (32,64,128)": lambda: create_student("resnet", SHAPE, 10, depths=(5, 5, 5),
                                                                       widths=(32, 64, 128)),
}


def tau(a, b):
    return float(stats.kendalltau(a, b)[0])


def probe_teacher(make, rows, xtr, ytr, seeds):
    acc = [r["kd_accuracy"] for r in rows]
    depth = [sum(r["arch"]["depths"]) for r in rows]
    params = [count_params(build(r["arch"])) for r in rows]
    out = []
    for seed in seeds:
        x, y = score_batch(xtr, ytr, 64, seed)
        teacher = make()
        ctx = ScoreContext(x, y, teacher, "gaussian", seed)
        parts = np.array([diswot_parts(ctx, build(r["arch"], seed)) for r in rows])
        own = diswot_parts(ctx, make())  # the teacher's architecture as a candidate, its own init seed
        neg = {"semantic": -parts[:, 0], "relation": -parts[:, 1], "diswot": -parts.sum(1)}
        out.append({
            "seed": seed, "m_s_range": [float(parts[:, 0].min()), float(parts[:, 0].max())],
            "m_r_range": [float(parts[:, 1].min()), float(parts[:, 1].max())],
            "teacher_arch_parts": [float(v) for v in own],
            "archs_scoring_above_teacher_arch": int((neg["diswot"] > -sum(own)).sum()),
            "tau": {k: {"kd_accuracy": tau(v, acc), "depth": tau(v, depth), "params": tau(v, params)}
                    for k, v in neg.items()}})
    return out


def mean_std(values):
    return f"{np.mean(values):+.3f} ± {np.std(values):.3f}"


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", default=str(RESULTS / "search.json"))
    p.add_argument("--seeds", type=int, default=4)
    p.add_argument("--out", default=str(RESULTS / "search_diswot_probe.json"))
    args = p.parse_args(argv)
    torch.set_num_threads(1)
    old = json.loads(Path(args.results).read_text())
    rows = old["archs"]
    xtr, ytr = subset(load_dataset("fashion-mnist").train, old["args"]["train"], old["args"]["seed"])
    result = {"args": vars(args), "teachers": {}}
    for name, make in TEACHERS.items():
        per_seed = probe_teacher(make, rows, xtr, ytr, range(args.seeds))
        result["teachers"][name] = per_seed
        print(f"\nteacher: {name} ({len(rows)} archs, {args.seeds} seeds)")
        for term in ("semantic", "relation", "diswot"):
            taus = {key: mean_std([s["tau"][term][key] for s in per_seed]) for key in ("kd_accuracy", "depth", "params")}
            print(f"  −{term:9s} τ vs " + ", ".join(f"{key} {value}" for key, value in taus.items()))
        print(f"  M_s range per seed {[tuple(round(v, 4) for v in s['m_s_range']) for s in per_seed]}")
        print(f"  M_r range per seed {[tuple(float(f'{v:.2e}') for v in s['m_r_range']) for s in per_seed]}")
        print(f"  archs scoring above the teacher's own architecture: "
              f"{[s['archs_scoring_above_teacher_arch'] for s in per_seed]} of {len(rows)}")
    Path(args.out).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
