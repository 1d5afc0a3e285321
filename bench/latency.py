"""Accuracy of the fitted latency models on held-out networks, per backend that runs here.

For each backend: sample held-out networks from both search spaces (none of them in the
profile's fitting set), compile each once, measure every network twice in two separate passes
(so the machine's load can change in between), and compare the model's prediction with the
measurements: RMSPE, share within ±5% / ±10%, Kendall τ. The two passes are also compared with
each other: on a shared, noisy machine that is the ceiling any predictor can reach.

    nice -n 10 python bench/latency.py [--per-space 30] [--seed 1000] [--shapes 1x28x28 3x224x224 ...]

Networks are spread over ``--shapes`` (network i gets shape i mod len(shapes)). Every figure is also
given over the repeatable networks only (the two passes within ±5 %), with how many were left out.

Writes bench/results/latency.json and latency.png (``--out``: another file, e.g. one per machine).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from scipy.stats import kendalltau

from edgekd.hw.environment import environment
from edgekd.hw.features import arch_key, blocks_of
from edgekd.hw.fit import compile_onnx
from edgekd.hw.fit_whole import compile_pte
from edgekd.hw.model import ProfileLatencyModel, profile_path
from edgekd.hw.profiler import profile
from edgekd.hw.sampling import sample_archs

SHAPES = [(1, 28, 28)]
RESULTS = Path(__file__).resolve().parent / "results"
TIMING = {"runs": 50, "min_rounds": 3, "max_rounds": 10, "stable_spread": 0.05, "time_limit_s": 3.0}
log = logging.getLogger("bench.latency")


def metrics(pred, meas) -> dict:
    pred, meas = np.asarray(pred, float), np.asarray(meas, float)
    rel = (pred - meas) / meas
    return {"n": int(len(meas)), "rmspe_pct": float(100 * np.sqrt(np.mean(rel ** 2))),
            "mean_error_pct": float(100 * rel.mean()), "within_5pct": float(np.mean(np.abs(rel) <= 0.05)),
            "within_10pct": float(np.mean(np.abs(rel) <= 0.10)), "kendall_tau": float(kendalltau(pred, meas)[0])}


BACKENDS = {  # name -> (runtime, precision, target whose fitted profile predicts it)
    "onnxruntime-int8": ("onnxruntime", "int8", "x86-cpu-onnxruntime"),
    "onnxruntime-fp32": ("onnxruntime", "fp32", "x86-cpu-onnxruntime"),
    "openvino-cpu-int8": ("openvino", "int8", "x86-cpu-openvino"),
    "openvino-cpu-fp32": ("openvino", "fp32", "x86-cpu-openvino"),
    "executorch-xnnpack-int8": ("executorch", "int8", "android-executorch-xnnpack"),  # the .pte, run here
}


def backends_here(wanted=None) -> tuple[dict, dict]:
    """(backends to run, {backend: why it is not run}); ``wanted`` limits them to those names."""
    run, skipped = {}, {}
    for name, (runtime, precision, target) in BACKENDS.items():
        if wanted and name not in wanted:
            continue
        if importlib.util.find_spec(runtime) is None:
            skipped[name] = f"not run here: {runtime} is not installed"
        elif not profile_path(target).exists():
            skipped[name] = f"no fitted profile for {target}: edgekd profile --target {target} --fit"
        else:
            run[name] = (runtime, precision, ProfileLatencyModel.load(profile_path(target), precision))
    return run, skipped


def compile_for(runtime: str, arch: dict, shape: tuple, precision: str, folder: Path) -> Path:
    """The file ``runtime`` runs: an ONNX graph (ONNX Runtime, OpenVINO) or an XNNPACK ``.pte``."""
    if runtime == "executorch":
        return compile_pte(arch, shape, precision, folder)
    return compile_onnx(arch, shape, precision, folder)[1]


def measure(backends: dict, jobs: list[tuple[dict, tuple]], tmp: Path) -> dict[str, list[list]]:
    """Compile every (network, shape) once per precision, then two full passes over every backend."""
    files = {}
    for kind in sorted({("pte" if r == "executorch" else "onnx", p) for r, p, _ in backends.values()}):
        files[kind] = []
        for i, (arch, shape) in enumerate(jobs):
            folder = tmp / f"{kind[0]}-{kind[1]}-{i}"
            folder.mkdir()
            runtime = "executorch" if kind[0] == "pte" else "onnx"
            files[kind].append(compile_for(runtime, arch, shape, kind[1], folder))
    times = {name: [] for name in backends}
    for k in range(2):  # pass 2 starts only after pass 1 of every backend: minutes apart
        for name, (runtime, precision, _) in backends.items():
            started = time.time()
            kind = ("pte" if runtime == "executorch" else "onnx", precision)
            times[name].append([profile(f, shape, runtime=runtime, threads=1, precision=precision, **TIMING)
                                for f, (_, shape) in zip(files[kind], jobs)])
            log.info("%s pass %d: %.0f s, load %s", name, k + 1, time.time() - started, os.getloadavg())
    return times


def summarize(precision: str, jobs: list[tuple[dict, tuple]], passes: list, model: ProfileLatencyModel) -> dict:
    archs = [a for a, _ in jobs]
    m1 = np.array([r.median_ms for r in passes[0]])
    m2 = np.array([r.median_ms for r in passes[1]])
    mean = (m1 + m2) / 2
    low = np.array([(r.p10_ms + q.p10_ms) / 2 for r, q in zip(passes[0], passes[1])])
    pred = np.array([model.predict_ms(a, shape) for a, shape in jobs])
    macs = np.array([sum(b.macs for b in blocks_of(a, shape)) for a, shape in jobs])
    run_to_run = np.abs(m1 - m2) / mean
    repeatable = run_to_run <= 0.05
    spaces = np.array([a["name"] for a in archs])
    shape_keys = np.array(["x".join(map(str, shape)) for _, shape in jobs])
    return {
        "precision": precision, "profile": model.source.get("file"),
        "vs_mean_of_passes": metrics(pred, mean), "vs_pass1": metrics(pred, m1), "vs_pass2": metrics(pred, m2),
        "repeatable_only": {**metrics(pred[repeatable], mean[repeatable]),
                            "excluded_not_repeatable_within_5pct": int((~repeatable).sum())},
        "per_space": {s: metrics(pred[spaces == s], mean[spaces == s]) for s in sorted(set(spaces))},
        "per_shape": {k: metrics(pred[shape_keys == k], mean[shape_keys == k]) for k in sorted(set(shape_keys))},
        "pass2_as_predictor_of_pass1": metrics(m2, m1),
        "vs_p10_mean_of_passes": metrics(pred, low),  # the low tail of the timings: least preempted
        "run_to_run_spread": {"median_pct": float(100 * np.median(run_to_run)),
                              "p90_pct": float(100 * np.percentile(run_to_run, 90)),
                              "max_pct": float(100 * run_to_run.max())},
        "within_measurement_spread_median_pct": float(100 * np.median([r.spread for p in passes for r in p])),
        "flops_kendall_tau": float(kendalltau(macs, mean)[0]),
        "lookup_share": float(np.mean([src == "lut" for a, shape in jobs
                                       for _, _, src in model.block_ms(blocks_of(a, shape, 10, precision))])),
        "networks": [{"arch": a, "input_shape": list(shape), "predicted_ms": float(p),
                      "measured_ms": [float(x), float(y)], "p10_ms": float(q)}
                     for (a, shape), p, x, y, q in zip(jobs, pred, m1, m2, low)],
    }


def rescore(results: dict) -> dict:
    """Predictions of the current profiles against the stored measurements: a refit scored, nothing timed."""
    for name, r in results["backends"].items():
        if "networks" not in r:
            continue
        _, precision, target = BACKENDS[name]
        model = ProfileLatencyModel.load(profile_path(target), precision)
        nets = r["networks"]
        pred = np.array([model.predict_ms(n["arch"], tuple(n.get("input_shape") or SHAPES[0])) for n in nets])
        meas = np.array([n["measured_ms"] for n in nets])
        mean = meas.mean(1)
        repeatable = np.abs(meas[:, 0] - meas[:, 1]) / mean <= 0.05
        keys = np.array(["x".join(map(str, n.get("input_shape") or SHAPES[0])) for n in nets])
        spaces = np.array([n["arch"]["name"] for n in nets])
        for n, value in zip(nets, pred):
            n["predicted_ms"] = float(value)
        r.update({"profile": model.source.get("file"), "vs_mean_of_passes": metrics(pred, mean),
                  "vs_pass1": metrics(pred, meas[:, 0]), "vs_pass2": metrics(pred, meas[:, 1]),
                  "repeatable_only": {**metrics(pred[repeatable], mean[repeatable]),
                                      "excluded_not_repeatable_within_5pct": int((~repeatable).sum())},
                  "per_shape": {k: metrics(pred[keys == k], mean[keys == k]) for k in sorted(set(keys))},
                  "per_space": {s: metrics(pred[spaces == s], mean[spaces == s]) for s in sorted(set(spaces))},
                  "rescored": True})
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [r for r in results["backends"].values() if "networks" in r]
    cols = min(2, len(done))
    rows_n = (len(done) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 5 * rows_n), squeeze=False)
    for ax, (name, r) in zip(axes.ravel(), [(n, r) for n, r in results["backends"].items() if "networks" in r]):
        for space, marker in (("resnet", "o"), ("mobilenetv2", "^")):
            rows = [n for n in r["networks"] if n["arch"]["name"] == space]
            meas = np.array([n["measured_ms"] for n in rows])
            pred = np.array([n["predicted_ms"] for n in rows])
            ax.errorbar(meas.mean(1), pred, xerr=np.abs(meas[:, 0] - meas[:, 1]) / 2, fmt=marker, ms=4,
                        label=space, alpha=0.8)
        lo = min(min(n["predicted_ms"], *n["measured_ms"]) for n in r["networks"]) * 0.8
        hi = max(max(n["predicted_ms"], *n["measured_ms"]) for n in r["networks"]) * 1.2
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k-", lw=1)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
        ax.set(xscale="log", yscale="log", xlabel="measured ms (mean of 2 passes; bar = half their gap)",
               ylabel="predicted ms", title=f"{name}: RMSPE {r['vs_mean_of_passes']['rmspe_pct']:.1f}%, "
                                             f"τ {r['vs_mean_of_passes']['kendall_tau']:.2f}")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-space", type=int, default=30, help="held-out networks per search space")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--shapes", nargs="+", default=["x".join(map(str, s)) for s in SHAPES],
                        help="input shapes CxHxW the held-out networks are spread over")
    parser.add_argument("--backends", nargs="+", choices=sorted(BACKENDS),
                        help="only these; the other backends' results stay as they are in latency.json")
    parser.add_argument("--rescore", action="store_true",
                        help="score the current profiles on the stored measurements (after a refit); time nothing")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json",
                        help="results JSON (its plot beside it, .png); e.g. one per machine")
    args = parser.parse_args()
    out = args.out
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    if args.rescore:
        results = rescore(json.loads(out.read_text()))
        out.write_text(json.dumps(results, indent=1) + "\n")
        plot(results, out.with_suffix(".png"))
        for name, r in results["backends"].items():
            if "vs_mean_of_passes" in r:
                m, ro = r["vs_mean_of_passes"], r["repeatable_only"]
                print(f"{name:22} n={m['n']} RMSPE {m['rmspe_pct']:.1f}%  ±10% {100 * m['within_10pct']:.0f}%  "
                      f"tau {m['kendall_tau']:.3f}; repeatable only n={ro['n']}: ±10% {100 * ro['within_10pct']:.0f}%")
        return
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    backends, skipped = backends_here(args.backends)
    fitted = set()
    for _, _, model in backends.values():
        fitted |= {key for key, _ in json.loads(Path(model.source["file"]).read_text())["fitted_networks"]}
    archs = sample_archs(args.per_space, args.seed, exclude=fitted)
    assert not fitted & {arch_key(a) for a in archs}
    jobs = [(a, shapes[i % len(shapes)]) for i, a in enumerate(archs)]
    results = {"input_shapes": [list(s) for s in shapes], "threads": 1, "batch": 1, "timing": TIMING,
               "held_out_networks": len(archs), "excluded_fitted_networks": len(fitted),
               "profiles": {name: model.source for name, (_, _, model) in backends.items()},
               "environment": environment(), "load_average_start": list(os.getloadavg()), "backends": {}}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-latency-") as tmp:
        times = measure(backends, jobs, Path(tmp))
    for name, (_, precision, model) in backends.items():
        results["backends"][name] = summarize(precision, jobs, times[name], model)
    results["backends"].update({name: {"skipped": why} for name, why in skipped.items()})
    results["load_average_end"] = list(os.getloadavg())
    if args.backends and out.exists():  # keep the backends not run now (own networks)
        earlier = json.loads(out.read_text())
        kept = {n: r for n, r in earlier["backends"].items() if n not in results["backends"]}
        results["backends"] = {**kept, **results["backends"]}
        results["profiles"] = {**{n: p for n, p in earlier.get("profiles", {}).items() if n in kept},
                               **results["profiles"]}
        run = {k: earlier[k] for k in ("environment", "load_average_start", "load_average_end", "seconds",
                                       "held_out_networks", "input_shapes") if k in earlier}
        results["earlier_runs"] = earlier.get("earlier_runs", []) + [{**run, "backends": sorted(kept)}]
    results["seconds"] = round(time.time() - started, 1)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out.with_suffix(".png"))
    for name, r in results["backends"].items():
        if "skipped" in r:
            print(f"{name:22s} skipped: {r['skipped']}")
            continue
        m, c, s = r["vs_mean_of_passes"], r["pass2_as_predictor_of_pass1"], r["run_to_run_spread"]
        print(f"{name:22s} n={m['n']} RMSPE {m['rmspe_pct']:.1f}%  ±5% {m['within_5pct']:.0%}  ±10% "
              f"{m['within_10pct']:.0%}  tau {m['kendall_tau']:.3f}  (FLOPs tau {r['flops_kendall_tau']:.3f}; "
              f"LUT share {r['lookup_share']:.0%})")
        print(f"{'':22s} measurement noise: run-to-run |Δ| median {s['median_pct']:.1f}% p90 {s['p90_pct']:.1f}% "
              f"max {s['max_pct']:.1f}%; pass 2 vs pass 1 RMSPE {c['rmspe_pct']:.1f}%, ±10% {c['within_10pct']:.0%}, "
              f"tau {c['kendall_tau']:.3f}")
        lo = r["vs_p10_mean_of_passes"]
        print(f"{'':22s} vs the p10 of the timings: RMSPE {lo['rmspe_pct']:.1f}%, ±10% {lo['within_10pct']:.0%}, "
              f"tau {lo['kendall_tau']:.3f}")
    print(f"wrote {out} and {out.with_suffix('.png').name} in {results['seconds']} s")


if __name__ == "__main__":
    main()
