"""DisWOT, difference by difference: each way edgekd's DisWOT departs from the paper's reference code,
measured as Kendall τ with the search ground truth's distilled accuracy over ``--draws`` init draws.

    python bench/search_diswot_ablation.py [--draws 8]      # ~5 min; needs >= 8 complete ground-truth archs

Variants (each changes one thing against ``edgekd``, the registered ``diswot`` score):

- ``trained teacher``: the trained teacher is probed instead of a Gaussian re-initialization of it;
- ``classifier N(0,1)``: the reference code's classifier init (edgekd draws N(0, 0.01) so the initial
  softmax is near uniform);
- ``features after pooling``: M_r on the classifier's input (edgekd: the final feature map, before the
  last global pooling);
- ``batch 128``: twice the probe batch;
- ``M_s only`` / ``M_r only``: each half of the score;
- ``reference``: the reference's choices together (classifier N(0,1), features after pooling).

The paper's channel-form M_s (C×C matrices) needs the candidate's classifier width to equal the
teacher's; no ground-truth arch has it, so edgekd's class form (K×K) is used in every variant.
Writes bench/results/search_diswot_ablation.json.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy import stats
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
import search_groundtruth as gt

from edgekd.data import load_dataset
from edgekd.models import create_student
from edgekd.search.scores.diswot import (
    classifier,
    gaussian_init,
    probe,
    relation_distance,
    semantic_distance,
)


def init(model: nn.Module, seed: int, classifier_std: float) -> nn.Module:
    gaussian_init(model, seed)
    if classifier_std != 0.01:
        gen = torch.Generator().manual_seed(seed + 10_000)
        with torch.no_grad():
            for m in model.modules():
                if isinstance(m, nn.Linear):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen) * classifier_std)
    return model.requires_grad_(True)


def probe_pooled(model: nn.Module, x, y, train_mode: bool = True):
    """``probe`` with the features taken at the classifier's input (after the global pooling)."""
    return probe(model, x, y, train_mode, features_at=classifier(model))


VARIANTS = {  # name: (teacher trained?, classifier std, pooled features?, batch, terms)
    "edgekd": (False, 0.01, False, 64, "both"),
    "trained teacher": (True, 0.01, False, 64, "both"),
    "classifier N(0,1)": (False, 1.0, False, 64, "both"),
    "features after pooling": (False, 0.01, True, 64, "both"),
    "batch 128": (False, 0.01, False, 128, "both"),
    "M_s only": (False, 0.01, False, 64, "semantic"),
    "M_r only": (False, 0.01, False, 64, "relation"),
    "reference": (False, 1.0, True, 64, "both"),
}


def score(variant, teacher, student, x, y, seed: int) -> float:
    trained, std, pooled, _, terms = variant
    run = probe_pooled if pooled else probe
    t = copy.deepcopy(teacher).requires_grad_(True)
    # a trained teacher is probed as it runs (eval BatchNorm), a re-initialized one in train mode
    g_t, f_t = run(t, x, y, train_mode=False) if trained else run(init(t, seed, std), x, y, train_mode=True)
    g_s, f_s = run(init(copy.deepcopy(student), seed + 1, std), x, y, train_mode=True)
    m_s, m_r = semantic_distance(g_t, g_s, "class"), relation_distance(f_t, f_s)
    return -{"both": m_s + m_r, "semantic": m_s, "relation": m_r}[terms]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=8)
    parser.add_argument("--out", type=Path, default=gt.RESULTS / "search_diswot_ablation.json")
    args = parser.parse_args()
    started = time.perf_counter()
    runs = [r for r in gt.done_runs().values() if r["epochs"] == 10 and r["train_size"] == 20000]
    by_arch: dict[str, dict] = {}
    for r in runs:
        by_arch.setdefault(r["key"], {"arch": r["arch"], "acc": {}})["acc"][r["seed"]] = r["accuracy"]
    archs = [v for v in by_arch.values() if len(v["acc"]) >= 2]
    acc = np.array([np.mean(list(v["acc"].values())) for v in archs])
    bundle = load_dataset("fashion-mnist")
    x, y = gt.subset(bundle.train, 20000, 0)
    teacher = gt.teacher_for(bundle.train.x, bundle.train.y, bundle.test.x, bundle.test.y, 12)[0]
    students = []
    for v in archs:
        kwargs = dict(v["arch"])
        students.append(create_student(kwargs.pop("name"), gt.SHAPE, 10, **kwargs))
    result = {"architectures": len(archs), "draws": args.draws, "variants": {}}
    for name, variant in VARIANTS.items():
        taus, values = [], []
        for draw in range(args.draws):
            idx = torch.randperm(len(x), generator=torch.Generator().manual_seed(draw))[:variant[3]]
            torch.manual_seed(draw)
            values.append([score(variant, teacher, s, x[idx], y[idx], draw) for s in students])
            taus.append(float(stats.kendalltau(values[-1], acc)[0]))
        mean_tau = float(stats.kendalltau(np.mean(values, axis=0), acc)[0])
        result["variants"][name] = {"tau_mean": float(np.mean(taus)), "tau_std": float(np.std(taus)),
                                    "tau_of_draw_mean": mean_tau, "taus": taus}
        print(f"{name:24} tau {np.mean(taus):+.2f} ± {np.std(taus):.2f} (draw-mean score: {mean_tau:+.2f})",
              flush=True)
    result["seconds"] = time.perf_counter() - started
    args.out.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
