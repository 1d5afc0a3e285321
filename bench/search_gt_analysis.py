"""How well a score would search, judged on the stored ground truth (bench/search_groundtruth.py).

Two views of one question:

- ``kendall``: rank correlation of a score with the seed-mean distilled accuracy over all archs;
- ``budget_picks``: what a search under a latency budget would pick. For each budget (the upper
  edges of the measured latency's terciles), the arch with the best score among those measured
  within it, its accuracy, and its regret against the best arch within that budget. This is the
  build's situation: the latency constraint removes the archs too slow, the score picks among the rest.

Rank combinations (``a+b``: mean of the two ranks) are scored like any other score, so that a
documented combination can win on the data rather than by assumption.
"""

from __future__ import annotations

import itertools

import numpy as np
from scipy import stats


def kendall(values, accuracy) -> float:
    return float(stats.kendalltau(values, accuracy)[0])


def ranks(values) -> np.ndarray:
    return stats.rankdata(values) / len(values)


def with_combinations(scores: dict[str, np.ndarray], names) -> dict[str, np.ndarray]:
    """``scores`` plus the mean-rank combination of every pair among ``names``."""
    out = dict(scores)
    for a, b in itertools.combinations([n for n in names if n in scores], 2):
        out[f"{a}+{b}"] = (ranks(scores[a]) + ranks(scores[b])) / 2
    return out


def budget_edges(latency_ms: np.ndarray) -> list[float]:
    return [float(q) for q in np.quantile(latency_ms, [1 / 3, 2 / 3, 1.0])]


def budget_picks(values: np.ndarray, accuracy: np.ndarray, latency_ms: np.ndarray, budgets) -> list[dict]:
    """Per budget: the best-scoring arch within it, its accuracy and its regret (points) vs the best."""
    rows = []
    for budget in budgets:
        fits = np.flatnonzero(latency_ms <= budget)
        pick = fits[np.argmax(values[fits])]
        best = fits[np.argmax(accuracy[fits])]
        rows.append({"budget_ms": float(budget), "candidates": len(fits), "pick": int(pick),
                     "accuracy": float(accuracy[pick]), "best_accuracy": float(accuracy[best]),
                     "regret_pts": float(100 * (accuracy[best] - accuracy[pick]))})
    return rows


def judge(scores: dict[str, np.ndarray], accuracy: np.ndarray, latency_ms: np.ndarray) -> dict:
    """Every score's τ and budget picks, best mean regret first."""
    budgets = budget_edges(latency_ms)
    table = {}
    for name, values in scores.items():
        picks = budget_picks(np.asarray(values, float), accuracy, latency_ms, budgets)
        table[name] = {"kendall_tau": kendall(values, accuracy), "budget_picks": picks,
                       "mean_regret_pts": float(np.mean([p["regret_pts"] for p in picks]))}
    return dict(sorted(table.items(), key=lambda kv: (kv[1]["mean_regret_pts"], -kv[1]["kendall_tau"])))
