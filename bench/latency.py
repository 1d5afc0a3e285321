"""Accuracy of the fitted latency models on held-out networks, per backend that runs here.

For each backend: sample held-out networks from both search spaces (none of them in the profile's
fitting set), compile each once, then time all of them interleaved in one pool (A B C ... A B C ...,
the order reshuffled every round, ``--rounds`` rounds), so that whatever the machine does meanwhile
hits every network alike; compare the model's prediction with the measurements: RMSPE, share within
±5% / ±10%, Kendall τ. Each network's repeatability is the spread of its round medians once each
round's machine-wide factor is divided out; the model is also scored on the networks that repeat
within ±5 % (the medians of the odd and of the even rounds agree within 5 %), with how many were
left out. The noise floor: the even rounds' median as a predictor of the odd rounds'.

    taskset -c 1 python bench/latency.py [--per-space 30] [--seed 1000] [--shapes 1x28x28 3x224x224 ...]

Networks are spread over ``--shapes`` (network i gets shape i mod len(shapes)). ``--cache DIR`` keeps
the compiled files (an ExecuTorch ``.pte`` takes about 30 s here), so that
``--compile-only --shards 2 --shard K`` can compile on both cores before the timing runs alone.

Writes bench/results/latency.json and latency.png (``--out``: another file, e.g. one per machine).
Files written before the pool design hold two sequential passes per network; ``--rescore`` reads both.
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

from edgekd.hw.compiled import cached_compile, file_kind
from edgekd.hw.environment import environment
from edgekd.hw.features import arch_key, blocks_of
from edgekd.hw.interleave import REPEATABLE, machine_factors, profile_many
from edgekd.hw.model import ProfileLatencyModel, profile_path
from edgekd.hw.sampling import sample_archs

SHAPES = [(1, 28, 28)]
RESULTS = Path(__file__).resolve().parent / "results"
TIMING = {"rounds": 10, "runs": 20, "min_block_ms": 20.0, "warmup": 5}  # per network, in the interleaved pool
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


def compile_all(backends: dict, jobs: list[tuple[dict, tuple]], cache: Path, shard=(0, 1)) -> dict:
    """{(file kind, precision): [file per job]}; with ``shard`` (K, N), only every N-th job from K."""
    files = {}
    for kind in sorted({(file_kind(r), p) for r, p, _ in backends.values()}):
        files[kind] = []
        for i, (arch, shape) in enumerate(jobs):
            if i % shard[1] != shard[0]:
                continue
            started = time.time()
            files[kind].append(cached_compile(kind[0], arch, shape, kind[1], cache))
            log.info("compiled %s %s %d/%d %s in %.0f s", *kind, i + 1, len(jobs), "x".join(map(str, shape)),
                     time.time() - started)
    return files


def measure(backends: dict, files: dict, jobs: list[tuple[dict, tuple]], cpu: int | None) -> dict:
    """Per backend, every held-out network timed in one interleaved pool: {backend: [ProfileResult]}."""
    times = {}
    for name, (runtime, precision, _) in backends.items():
        started = time.time()
        pool = {str(i): (f, shape) for i, (f, (_, shape)) in enumerate(zip(files[(file_kind(runtime), precision)],
                                                                            jobs))}
        timed = profile_many(pool, runtime=runtime, threads=1, cpu=cpu, shuffle=True, **TIMING)
        times[name] = [timed[str(i)] for i in range(len(jobs))]
        log.info("%s: %d networks interleaved in %.0f s, load %s", name, len(jobs), time.time() - started,
                 os.getloadavg())
    return times


def measured(n: dict) -> tuple[float, float, float, bool]:
    """(measured ms, first estimate, second estimate, repeatable) of a stored network, either format.

    Repeatable: the two estimates agree within 5 %. In the pool they are the medians of the odd and of
    the even rounds (5 interleaved rounds each by default); single rounds of 20 runs are noisier (each
    network's ``spread_net_of_drift``), but a median over rounds is what the benchmark scores."""
    if "halves_ms" in n:  # the interleaved pool: odd and even rounds
        (a, b), value = n["halves_ms"], n["measured_ms"]
    else:  # two sequential passes (before the pool)
        a, b = n["measured_ms"]
        value = (a + b) / 2
    return value, a, b, abs(a - b) / value <= REPEATABLE


def scores(pred, nets: list[dict]) -> dict:
    pred = np.asarray(pred, float)
    rows = [measured(n) for n in nets]
    meas, first, second = (np.array([r[i] for r in rows]) for i in range(3))
    repeatable = np.array([r[3] for r in rows])
    spaces = np.array([n["arch"]["name"] for n in nets])
    keys = np.array(["x".join(map(str, n.get("input_shape") or SHAPES[0])) for n in nets])
    gap = np.abs(first - second) / meas
    return {"vs_measured": metrics(pred, meas),
            "repeatable_only": {**metrics(pred[repeatable], meas[repeatable]),
                                "excluded_not_repeatable_within_5pct": int((~repeatable).sum())},
            "per_space": {s: metrics(pred[spaces == s], meas[spaces == s]) for s in sorted(set(spaces))},
            "per_shape": {k: metrics(pred[keys == k], meas[keys == k]) for k in sorted(set(keys))},
            "noise_floor_second_as_predictor_of_first": metrics(second, first),
            "first_second_gap": {"median_pct": float(100 * np.median(gap)), "p90_pct": float(100 * np.percentile(gap, 90)),
                                 "max_pct": float(100 * gap.max())}}


def summarize(precision: str, jobs: list[tuple[dict, tuple]], timed: list, model: ProfileLatencyModel) -> dict:
    pred = np.array([model.predict_ms(a, shape) for a, shape in jobs])
    macs = np.array([sum(b.macs for b in blocks_of(a, shape)) for a, shape in jobs])
    by_name = {str(i): r for i, r in enumerate(timed)}
    factors = machine_factors(by_name)
    nets = [{"arch": a, "input_shape": list(shape), "predicted_ms": float(p), "measured_ms": r.median_ms,
             "halves_ms": [float(np.median(r.rounds[0::2])), float(np.median(r.rounds[1::2]))],
             "rounds_ms": r.rounds, "spread": r.spread, "spread_net_of_drift": r.spread_net_of_drift,
             "p10_ms": r.p10_ms, "runs": r.runs} for (a, shape), p, r in zip(jobs, pred, timed)]
    own = np.array([n["spread_net_of_drift"] for n in nets])
    return {
        "precision": precision, "profile": model.source.get("file"), **scores(pred, nets),
        "machine_factor_per_round": [round(float(f), 4) for f in factors],
        "repeatability_net_of_drift": {"median_pct": float(100 * np.median(own)),
                                       "p90_pct": float(100 * np.percentile(own, 90))},
        "vs_p10": metrics(pred, [n["p10_ms"] for n in nets]),  # the low tail of the timings: least preempted
        "flops_kendall_tau": float(kendalltau(macs, [n["measured_ms"] for n in nets])[0]),
        "lookup_share": float(np.mean([src == "lut" for a, shape in jobs
                                       for _, _, src in model.block_ms(blocks_of(a, shape, 10, precision))])),
        "seconds_timing": float(timed[0].seconds),
        "networks": nets,
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
        for n, value in zip(nets, pred):
            n["predicted_ms"] = float(value)
        for stale in ("vs_mean_of_passes", "vs_pass1", "vs_pass2", "pass2_as_predictor_of_pass1",
                      "vs_p10_mean_of_passes"):
            r.pop(stale, None)  # the older format's names; scores() gives them anew
        r.update({"profile": model.source.get("file"), **scores(pred, nets), "rescored": True})
    return results


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [(n, r) for n, r in results["backends"].items() if "networks" in r]
    cols = min(2, len(done))
    rows_n = (len(done) + cols - 1) // cols
    fig, axes = plt.subplots(rows_n, cols, figsize=(6 * cols, 5 * rows_n), squeeze=False)
    for ax, (name, r) in zip(axes.ravel(), done):
        every = []
        for space, marker in (("resnet", "o"), ("mobilenetv2", "^")):
            rows = [measured(n) + (n["predicted_ms"],) for n in r["networks"] if n["arch"]["name"] == space]
            meas, first, second, _, pred = (np.array(c, float) for c in zip(*rows))
            every += [meas, pred]
            ax.errorbar(meas, pred, xerr=np.abs(first - second) / 2, fmt=marker, ms=4, label=space, alpha=0.8)
        lo, hi = min(v.min() for v in every) * 0.8, max(v.max() for v in every) * 1.2
        xs = np.array([lo, hi])
        ax.plot(xs, xs, "k-", lw=1)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2, label="±10%")
        m = r["vs_measured"]
        ax.set(xscale="log", yscale="log", xlabel="measured ms (bar: half the gap of the two halves)",
               ylabel="predicted ms", title=f"{name}: ±10% {m['within_10pct']:.0%}, RMSPE {m['rmspe_pct']:.1f}%, "
                                             f"τ {m['kendall_tau']:.2f}")
        ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_scores(results: dict) -> None:
    for name, r in results["backends"].items():
        if "skipped" in r:
            print(f"{name:24s} skipped: {r['skipped']}")
            continue
        if "vs_measured" not in r:
            continue
        m, ro, c = r["vs_measured"], r["repeatable_only"], r["noise_floor_second_as_predictor_of_first"]
        g = r["first_second_gap"]
        print(f"{name:24s} n={m['n']} RMSPE {m['rmspe_pct']:.1f}%  ±5% {m['within_5pct']:.0%}  ±10% "
              f"{m['within_10pct']:.0%}  tau {m['kendall_tau']:.3f}  mean error {m['mean_error_pct']:+.1f}%")
        print(f"{'':24s} repeatable within ±5% only (n={ro['n']}, {ro['excluded_not_repeatable_within_5pct']} left "
              f"out): ±10% {ro['within_10pct']:.0%}, RMSPE {ro['rmspe_pct']:.1f}%, tau {ro['kendall_tau']:.3f}")
        print(f"{'':24s} noise floor, one half of the timings as a predictor of the other: ±10% "
              f"{c['within_10pct']:.0%}, RMSPE {c['rmspe_pct']:.1f}%; gap median {g['median_pct']:.1f}% "
              f"p90 {g['p90_pct']:.1f}%")
        if "machine_factor_per_round" in r:
            f, own = r["machine_factor_per_round"], r["repeatability_net_of_drift"]
            print(f"{'':24s} machine factor over rounds {min(f):.3f}-{max(f):.3f}; each network's own spread, "
                  f"drift divided out: median {own['median_pct']:.1f}% p90 {own['p90_pct']:.1f}%")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-space", type=int, default=30, help="held-out networks per search space")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--shapes", nargs="+", default=["x".join(map(str, s)) for s in SHAPES],
                        help="input shapes CxHxW the held-out networks are spread over")
    parser.add_argument("--backends", nargs="+", choices=sorted(BACKENDS),
                        help="only these; the other backends' results stay as they are in --out")
    parser.add_argument("--rounds", type=int, default=TIMING["rounds"], help="interleaved rounds over the pool")
    parser.add_argument("--cpu", type=int, help="pin the whole process to this CPU while timing (Linux)")
    parser.add_argument("--cache", type=Path, help="keep compiled files here and reuse them (default: a temp folder)")
    parser.add_argument("--compile-only", action="store_true", help="fill --cache and stop; time nothing")
    parser.add_argument("--shards", type=int, default=1, help="with --compile-only: compile every N-th network")
    parser.add_argument("--shard", type=int, default=0, help="with --compile-only: which of the --shards")
    parser.add_argument("--rescore", action="store_true",
                        help="score the current profiles on the stored measurements (after a refit); time nothing")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency.json",
                        help="results JSON (its plot beside it, .png); e.g. one per machine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    out = args.out
    if args.rescore:
        results = rescore(json.loads(out.read_text()))
        out.write_text(json.dumps(results, indent=1) + "\n")
        plot(results, out.with_suffix(".png"))
        print_scores(results)
        return
    if args.compile_only and not args.cache:
        parser.error("--compile-only needs --cache")
    if not 0 <= args.shard < args.shards:
        parser.error("--shard must be in 0..--shards-1")
    TIMING["rounds"] = args.rounds
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes]
    backends, skipped = backends_here(args.backends)
    fitted = set()
    for _, _, model in backends.values():
        fitted |= {key for key, _ in json.loads(Path(model.source["file"]).read_text())["fitted_networks"]}
    archs = sample_archs(args.per_space, args.seed, exclude=fitted)
    assert not fitted & {arch_key(a) for a in archs}
    jobs = [(a, shapes[i % len(shapes)]) for i, a in enumerate(archs)]
    results = {"input_shapes": [list(s) for s in shapes], "threads": 1, "batch": 1, "timing": dict(TIMING),
               "design": "every network of a backend timed in one interleaved pool, order reshuffled each round",
               "pinned_cpu": args.cpu, "held_out_networks": len(archs), "excluded_fitted_networks": len(fitted),
               "profiles": {name: model.source for name, (_, _, model) in backends.items()},
               "environment": environment(), "load_average_start": list(os.getloadavg()), "backends": {}}
    started = time.time()
    with tempfile.TemporaryDirectory(prefix="edgekd-bench-latency-") as tmp:
        cache = args.cache or Path(tmp)
        cache.mkdir(parents=True, exist_ok=True)
        files = compile_all(backends, jobs, cache, (args.shard, args.shards) if args.compile_only else (0, 1))
        if args.compile_only:
            print(f"compiled {sum(map(len, files.values()))} files into {cache}")
            return
        times = measure(backends, files, jobs, args.cpu)
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
    print_scores(results)
    print(f"wrote {out} and {out.with_suffix('.png').name} in {results['seconds']} s")


if __name__ == "__main__":
    main()
