"""Plots of a matrix build as inline SVG strings (matplotlib, no pyplot state, deterministic output).

Each function takes plain report dicts and returns an SVG string, or None when there is nothing to
plot. matplotlib is the ``edgekd[report]`` extra; :func:`available` says whether it is installed.
"""

from __future__ import annotations

import io
import re

import numpy as np

MEASURED, PREDICTED = "measured", "predicted"


def available() -> tuple[bool, str]:
    try:
        # heavy optional package: imported on first use
        import matplotlib  # noqa: F401
    except ImportError:
        return False, "plots need matplotlib: pip install 'edgekd[report]'"
    return True, ""


def _figure(width: float, height: float):
    # heavy optional package: imported on first use
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    return fig


def _svg(fig) -> str:
    # heavy optional package: imported on first use
    import matplotlib

    buf = io.StringIO()
    # fixed salt and no date: the same data gives the same bytes; text stays text (small, searchable)
    with matplotlib.rc_context({"svg.hashsalt": "edgekd", "svg.fonttype": "none"}):
        fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    text = re.sub(r"<metadata>.*?</metadata>\s*", "", text, flags=re.S)  # RDF boilerplate, no information
    return text[text.index("<svg"):]  # drop the XML prolog and DOCTYPE: the SVG is inlined in HTML


def pareto(points: list[dict], teacher_accuracy: float | None) -> str | None:
    """Accuracy vs latency per target, measured and predicted marked apart, with the Pareto front.

    ``points``: dicts with ``name``, ``accuracy`` (0..1), ``latency_ms`` and ``kind``
    (measured/predicted); points without a latency are left out by the caller.
    """
    points = [p for p in points if p.get("latency_ms") is not None and p.get("accuracy") is not None]
    if not points:
        return None
    teachers = [p for p in points if p.get("teacher")]
    points = [p for p in points if not p.get("teacher")]
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    if teachers:  # the row to beat: the teacher compiled for each target, in the same runtime
        ax.scatter([p["latency_ms"] for p in teachers], [p["accuracy"] * 100 for p in teachers], s=70, marker="D",
                   facecolors="none", edgecolors="C1", label="teacher compiled for the target")
    for kind, style in ((MEASURED, {"marker": "o"}), (PREDICTED, {"marker": "s", "facecolors": "none"})):
        sel = [p for p in points if p["kind"] == kind]
        if sel:
            ax.scatter([p["latency_ms"] for p in sel], [p["accuracy"] * 100 for p in sel], s=48,
                       edgecolors="C0", label=f"{kind} latency", **({"c": "C0"} if kind == MEASURED else {}),
                       **{k: v for k, v in style.items()})
    for p in points + teachers:
        ax.annotate(p["name"], (p["latency_ms"], p["accuracy"] * 100), textcoords="offset points", xytext=(5, 4),
                    fontsize=8)
    front = pareto_front(points) if points else []
    if len(front) > 1:
        ax.step([p["latency_ms"] for p in front], [p["accuracy"] * 100 for p in front], where="post", color="C2",
                linewidth=1, label="Pareto front")
    if teacher_accuracy is not None:
        ax.axhline(teacher_accuracy * 100, color="grey", linestyle="--", linewidth=1, label="teacher (torch)")
    ax.set_ylim(*accuracy_limits([p["accuracy"] for p in points + teachers] +
                                 ([teacher_accuracy] if teacher_accuracy is not None else [])))
    ax.set_xlabel("latency, batch 1, p50 (ms)")
    ax.set_ylabel("artifact top-1 (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    return _svg(fig)


def accuracy_limits(accuracies: list[float], min_span: float = 2.0) -> tuple[float, float]:
    """A top-1 axis in percent that spans at least ``min_span`` points and never passes 0 or 100."""
    values = [a * 100 for a in accuracies if a is not None] or [0.0, 100.0]
    low, high = min(values), max(values)
    pad = max((min_span - (high - low)) / 2, 0.1 * (high - low), 0.25)
    low, high = low - pad, high + pad
    if high > 100:
        low, high = max(0.0, low - (high - 100)), 100.0
    if low < 0:
        low, high = 0.0, min(100.0, high - low)
    return low, high


def pareto_front(points: list[dict]) -> list[dict]:
    """Points no other point beats on both latency (lower) and accuracy (higher), by latency."""
    ordered = sorted(points, key=lambda p: (p["latency_ms"], -p["accuracy"]))
    front, best = [], float("-inf")
    for p in ordered:
        if p["accuracy"] > best:
            front.append(p)
            best = p["accuracy"]
    return front


def class_deltas(series: dict[str, list[float | None]], teacher: list[float | None],
                 labels: list[str]) -> str | None:
    """Heatmap of per-class top-1 minus the teacher's, in points, one row per artifact or student."""
    if not series or not teacher:
        return None
    names = list(series)
    delta = np.full((len(names), len(teacher)), np.nan)
    for i, name in enumerate(names):
        for c, (a, t) in enumerate(zip(series[name], teacher)):
            if a is not None and t is not None:
                delta[i, c] = (a - t) * 100
    limit = max(1.0, float(np.nanmax(np.abs(delta))) if np.isfinite(delta).any() else 1.0)
    fig = _figure(min(12, 2.5 + 0.55 * len(teacher)), 1.2 + 0.42 * len(names))
    ax = fig.add_subplot()
    image = ax.imshow(delta, cmap="RdBu", vmin=-limit, vmax=limit, aspect="auto")
    ax.set_xticks(range(len(teacher)), labels[: len(teacher)] or [str(c) for c in range(len(teacher))], fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    for i in range(len(names)):
        for c in range(len(teacher)):
            if np.isfinite(delta[i, c]):  # white on the dark ends of the colour map, black elsewhere
                dark = abs(delta[i, c]) > 0.55 * limit
                ax.text(c, i, f"{delta[i, c]:+.1f}", ha="center", va="center", fontsize=7,
                        color="white" if dark else "black")
    ax.set_xlabel("class")
    fig.colorbar(image, ax=ax, label="top-1 − teacher (points)")
    return _svg(fig)


def search_cloud(search: dict) -> str | None:
    """Score vs latency of every search candidate, the chosen student highlighted.

    Accepts ``{"candidates": [{"score", "latency_ms" | "predicted_latency_ms"}...], "chosen": {...}}``.
    """
    def lat(c):
        return c.get("latency_ms", c.get("predicted_latency_ms"))

    cands = [c for c in (search or {}).get("candidates", []) if c.get("score") is not None and lat(c) is not None]
    if not cands:
        return None
    fig = _figure(6.4, 4.0)
    ax = fig.add_subplot()
    ax.scatter([lat(c) for c in cands], [c["score"] for c in cands], s=10, alpha=0.5, label="candidates")
    finalists = [f for f in search.get("finalists") or [] if f.get("score") is not None and lat(f) is not None]
    if finalists:
        ax.scatter([lat(f) for f in finalists], [f["score"] for f in finalists], s=70, facecolors="none",
                   edgecolors="C2", linewidths=1.5, label="finalists")
    chosen = search.get("chosen")
    if chosen and chosen.get("score") is not None and lat(chosen) is not None:
        ax.scatter([lat(chosen)], [chosen["score"]], s=120, marker="*", color="C3", label="chosen")
    budget = search.get("budget_ms")
    if budget:
        ax.axvline(budget, color="grey", linestyle="--", linewidth=1, label="latency limit")
    if search.get("teacher_ms"):
        ax.axvline(search["teacher_ms"], color="C1", linestyle=":", linewidth=1.5, label="compiled teacher")
    ax.set_xlabel(search.get("latency_label", "predicted latency (ms)"))
    ax.set_ylabel(search.get("score_name", "score"))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _svg(fig)


def distill_curves(histories: dict[str, list[dict]]) -> str | None:
    """Loss terms and validation top-1 per epoch, one line per shared distillation."""
    histories = {k: v for k, v in histories.items() if v}
    if not histories:
        return None
    fig = _figure(9.0, 3.4)
    loss_ax, acc_ax = fig.subplots(1, 2)
    for i, (name, hist) in enumerate(histories.items()):
        epochs = [h["epoch"] for h in hist]
        terms = [k for k in hist[0] if k not in ("epoch", "val_accuracy") and _is_number(hist[0][k])]
        for j, term in enumerate(terms):
            loss_ax.plot(epochs, [h.get(term) for h in hist], color=f"C{i}", linestyle=["-", "--", ":", "-."][j % 4],
                         marker=".", label=f"{name}: {term}")
        if any("val_accuracy" in h for h in hist):
            acc_ax.plot(epochs, [h.get("val_accuracy", float("nan")) * 100 for h in hist], color=f"C{i}", marker=".",
                        label=name)
    loss_ax.set(xlabel="epoch", ylabel="training loss term", title="distillation losses")
    acc_ax.set(xlabel="epoch", ylabel="fp32 student val top-1 (%)", title="validation accuracy")
    for ax in (loss_ax, acc_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return _svg(fig)


def _is_number(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def scope_ids(svg: str, prefix: str) -> str:
    """Prefix every element id and reference, so several SVGs can be inlined in one HTML page."""
    svg = re.sub(r'\bid="([^"]+)"', lambda m: f'id="{prefix}-{m.group(1)}"', svg)
    svg = re.sub(r"url\(#([^)]+)\)", lambda m: f"url(#{prefix}-{m.group(1)})", svg)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{prefix}-{m.group(1)}"', svg)
