"""The search's records: a JSON Lines log of every proposal and a score-vs-latency plot."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from edgekd._io import write_text

log = logging.getLogger(__name__)


def write_log(history: list[dict], path: Path) -> Path:
    """One JSON object per proposal: step, phase, arch, score, latency, costs, rejected reason."""
    lines = [json.dumps({**r, "accepted": r["rejected"] is None}, default=list) for r in history]
    return write_text(Path(path), "\n".join(lines) + "\n")


def write_plot(result, path: Path) -> str | None:
    """Score vs predicted latency of the scored candidates, the chosen one starred; None without matplotlib."""
    try:
        # heavy optional package: imported on first use
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log.info("search plot not written: matplotlib is missing (pip install 'edgekd[report]')")
        return None
    # without a latency for the device, the x axis is MACs, labelled as such (never x86 milliseconds)
    by_latency = result.predicted_latency_ms is not None
    x_of = (lambda r: r["latency_ms"]) if by_latency else (lambda r: r["flops"] / 1e6)
    seen, pts = set(), []
    for r in result.history:
        key = json.dumps(r["arch"], sort_keys=True, default=list)
        if r["score"] is not None and x_of(r) is not None and key not in seen:
            seen.add(key)
            pts.append((x_of(r), r["score"]))
    fig, ax = plt.subplots(figsize=(6, 4))
    if pts:
        ax.scatter(*zip(*pts), s=14, alpha=0.6, label=f"scored ({len(pts)})")
    fin = [(x_of(r), r["score"]) for r in (_finalist_records(result)) if x_of(r) is not None]
    if fin:
        ax.scatter(*zip(*fin), s=90, facecolors="none", edgecolors="green", linewidths=1.5, label="finalists")
    chosen_x = result.predicted_latency_ms if by_latency else result.flops / 1e6
    ax.scatter([chosen_x], [result.score], marker="*", s=220, c="red", label="chosen", zorder=3)
    if by_latency and result.limits.budget_ms is not None:
        ax.axvline(result.limits.budget_ms, ls="--", c="gray",
                   label=f"latency limit {result.limits.budget_ms:.3g} ms (budget or compiled teacher)")
    ax.set_xlabel(f"predicted latency (ms, {result.latency_kind})" if by_latency
                  else "MMACs (no latency model for this device)")
    ax.set_ylabel(f"score: {result.score_name}")
    ax.set_title(f"{result.space}: {len(result.history)} proposals, {result.rejected} rejected")
    ax.legend(fontsize=8)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return str(path)


def _finalist_records(result) -> list[dict]:
    keys = {json.dumps(f["arch"], sort_keys=True, default=list) for f in result.finalists()}
    out, seen = [], set()
    for r in result.history:
        key = json.dumps(r["arch"], sort_keys=True, default=list)
        if key in keys and key not in seen and r["rejected"] is None:
            seen.add(key)
            out.append(r)
    return out
