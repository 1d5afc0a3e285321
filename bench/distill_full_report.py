"""Aggregate bench/distill_full.py's runs: mean ± std over seeds, the issue's goals, JSON and a plot.

A figure appears once every seed asked for has its run; the JSON says how many runs of the plan are done.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

POINTS = 100.0
MIN_LOSS_POINTS = 0.5  # PTQ losses below this get no recovered share


def _stats(rows: list[dict], field: str) -> dict | None:
    values = [POINTS * r[field] for r in rows if r.get(field) is not None]
    if not values:
        return None
    return {"mean": statistics.fmean(values), "std": statistics.stdev(values) if len(values) > 1 else 0.0,
            "runs": values}


def aggregate(rows: list[dict], seeds: list[int]) -> dict:
    """{student: {"float": {labels: {loss: stats}}, "quant": {format: {label: {...}}}}}, complete cells only."""
    cells: dict[tuple, list[dict]] = {}
    for r in rows:
        label = r.get("loss") if r["kind"] == "float" else r.get("variant") or f"ptq {r['calibration']}"
        where = r.get("labels") if r["kind"] == "float" else r["format"]
        cells.setdefault((r["student"], r["kind"] == "float", where, label), []).append(r)
    out: dict = {}
    for (student, is_float, where, label), group in sorted(cells.items()):
        if sorted(r["seed"] for r in group) != sorted(seeds):
            continue  # a cell counts once every seed has run
        entry = {"torch": _stats(group, "accuracy_torch"), "onnxruntime": _stats(group, "accuracy_onnxruntime"),
                 "seconds": statistics.fmean(r["seconds"] for r in group),
                 "train_seconds": statistics.fmean(r.get("train_seconds", 0.0) for r in group)}
        gaps = [abs(r["accuracy_torch"] - r["accuracy_onnxruntime"]) * POINTS for r in group
                if r.get("accuracy_torch") is not None and r.get("accuracy_onnxruntime") is not None]
        if gaps:
            entry["max_ort_gap_points"] = max(gaps)
        out.setdefault(student, {"float": {}, "quant": {}})["float" if is_float else "quant"].setdefault(
            where, {})[label] = entry
    return out


def _mean(entry: dict | None) -> float | None:
    stats = entry and (entry.get("torch") or entry.get("onnxruntime"))
    return stats["mean"] if stats else None


def goals(agg: dict) -> dict:
    """The issue's goals, per student, where their cells are complete (None where not yet)."""
    out = {}
    for student, parts in agg.items():
        g: dict = {}
        full = parts["float"].get("full", {})
        if "ce" in full and len(full) > 1:
            best = max((k for k in full if k != "ce"), key=lambda k: _mean(full[k]))
            g["float_full_labels"] = {"best_loss": best, "best_minus_ce_points": _mean(full[best]) - _mean(full["ce"]),
                                      "ce_std": full["ce"]["torch"]["std"], "goal_points": 1.0}
        float_kd = _mean(full.get("kd"))
        for fmt, cells in parts["quant"].items():
            tops = [k for k in cells if k.startswith("topkld-qad")]
            if not tops or "ce-qat" not in cells:
                continue
            best = max(tops, key=lambda k: _mean(cells[k]))
            ptq = _mean(cells.get("ptq minmax-torch"))
            row = {"best_qad": best, "best_qad_minus_ce_qat_points": _mean(cells[best]) - _mean(cells["ce-qat"]),
                   "ce_qat_std": cells["ce-qat"]["torch"]["std"],
                   "qad_cost_vs_ce_qat": cells[best]["train_seconds"] / max(cells["ce-qat"]["train_seconds"], 1e-9),
                   "max_ort_gap_points": max((c.get("max_ort_gap_points", 0.0) for c in cells.values()), default=0.0)}
            if ptq is not None and float_kd is not None:
                row["ptq_points_lost"] = float_kd - ptq
                # a share of a loss smaller than the seed noise means nothing
                row["qad_recovered_fraction"] = ((_mean(cells[best]) - ptq) / (float_kd - ptq)
                                                 if float_kd - ptq >= MIN_LOSS_POINTS else None)
            g[fmt] = row
        out[student] = g
    return out


def write(args, runs: dict[str, dict], planned: list[dict], run_key) -> dict:
    keys = {run_key(r, args) for r in planned}
    rows = [r for k, r in runs.items() if k in keys]
    agg = aggregate(rows, list(args.seeds))
    result = {"benchmark": "distill_full", "dataset": "fashion-mnist 28 px", "runs_done": len(rows),
              "runs_planned": len(planned), "scale": {k: str(v) if isinstance(v, Path) else v
                                                      for k, v in vars(args).items()},
              "teacher_accuracy": rows[0]["teacher_accuracy"] * POINTS if rows else None,
              "devices": sorted({r["device"] for r in rows}), "results": agg, "goals": goals(agg)}
    out = Path(args.results)
    (out / "distill_full.json").write_text(json.dumps(result, indent=1) + "\n")
    if agg:
        plot(result, out / "distill_full.png")
    print(json.dumps({"runs_done": len(rows), "runs_planned": len(planned), "goals": result["goals"]}, indent=1))
    return result


def plot(result: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    students = list(result["results"])
    fig, axes = plt.subplots(len(students), 2, figsize=(15, 4.5 * len(students)), squeeze=False)
    for row, student in zip(axes, students):
        for ax, part in zip(row, ("float", "quant")):
            groups = result["results"][student][part]
            labels = sorted({k for cells in groups.values() for k in cells})
            width = 0.8 / max(1, len(groups))
            for i, (where, cells) in enumerate(groups.items()):
                xs = [j + i * width for j, k in enumerate(labels) if k in cells]
                ent = [cells[k].get("torch") or cells[k].get("onnxruntime") for k in labels if k in cells]
                ax.bar(xs, [e["mean"] for e in ent], width, yerr=[e["std"] for e in ent], label=where)
            ax.set_xticks([j + 0.4 - width / 2 for j in range(len(labels))], labels, rotation=30, ha="right")
            lows = [c_["mean"] for cells in groups.values() for c in cells.values()
                    for c_ in [c.get("torch") or c.get("onnxruntime")]]
            ax.set_ylim(min(lows) - 3 if lows else 0, None)
            ax.set_ylabel("test top-1 %"), ax.legend(fontsize=8)
            ax.set_title(f"{student}: {part} ({'torch' if part == 'float' else 'fake-quant; ptq recipes: ORT'})")
    fig.suptitle(f"Fashion-MNIST 28 px, teacher {result['teacher_accuracy']:.1f} %, "
                 f"{result['runs_done']}/{result['runs_planned']} runs")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
