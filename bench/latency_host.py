"""A latency profile carried to another CPU: as fitted, rescaled by anchors timed here, or refitted here.

Reads held-out networks that ``bench/latency.py --out`` measured on this machine (so nothing but the
anchors is timed again), and scores three predictors of them per runtime and precision:
- ``foreign``: the shipped default profile, fitted on another CPU, as it is;
- ``foreign-host-scaled``: that profile rescaled by edgekd's anchor networks timed here, once per
  input shape (what a build on a CPU without its own profile now uses, ``edgekd.hw.host``);
- ``native``: the profile fitted on this CPU (``targets/profiles/<target>@<cpu>.json``);
- ``native-host-scaled``: that profile rescaled by the same anchors: does a check of the machine's
  state at build time repair a profile fitted on this CPU in another session (the VM's speed moves)?

    python bench/latency_host.py --measured bench/results/latency-amd-epyc.json

Run it alone: the anchors are timed. Writes bench/results/latency_host.json and latency_host.png.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from latency import BACKENDS, measured, metrics

from edgekd.hw.base import fp32_is_faster
from edgekd.hw.environment import environment
from edgekd.hw.host import ANCHORS, HostScaledLatencyModel, measure_host_scale
from edgekd.hw.model import ProfileLatencyModel, profile_path

RESULTS = Path(__file__).resolve().parent / "results"


def score(pred, nets) -> dict:
    rows = [measured(n) for n in nets]
    mean = np.array([r[0] for r in rows])
    repeatable = np.array([r[3] for r in rows])
    pred = np.asarray(pred)
    return {**metrics(pred, mean), "repeatable_only": {**metrics(pred[repeatable], mean[repeatable]),
                                                       "excluded_not_repeatable_within_5pct": int((~repeatable).sum())}}


def run_backend(name: str, result: dict) -> dict:
    runtime, precision, target = BACKENDS[name]
    nets = result["networks"]
    shapes = sorted({tuple(n["input_shape"]) for n in nets})
    foreign = ProfileLatencyModel.load(profile_path(target, cpu="a CPU with no profile of its own"), precision)
    native_model = ProfileLatencyModel.load(profile_path(target), precision)
    scales, native_scales = {}, {}
    for shape in shapes:
        started = time.time()
        scales[shape] = {**measure_host_scale(foreign, runtime, shape), "seconds": round(time.time() - started, 1)}
        native_scales[shape] = measure_host_scale(native_model, runtime, shape)
    raw = [foreign.predict_ms(n["arch"], tuple(n["input_shape"])) for n in nets]
    scaled = [HostScaledLatencyModel(foreign, scales[tuple(n["input_shape"])]).predict_ms(n["arch"],
                                                                                           tuple(n["input_shape"]))
              for n in nets]
    native = [native_model.predict_ms(n["arch"], tuple(n["input_shape"])) for n in nets]
    native_scaled = [HostScaledLatencyModel(native_model, native_scales[tuple(n["input_shape"])])
                     .predict_ms(n["arch"], tuple(n["input_shape"])) for n in nets]
    return {"foreign_profile": {k: foreign.source.get(k) for k in ("file", "machine", "date")},
            "native_profile": native_model.source.get("file"),
            "noise_floor": result.get("noise_floor_second_as_predictor_of_first"),
            "host_scale": {"x".join(map(str, s)): v for s, v in scales.items()},
            "native_host_scale": {"x".join(map(str, s)): v for s, v in native_scales.items()},
            "foreign": score(raw, nets), "foreign-host-scaled": score(scaled, nets), "native": score(native, nets),
            "native-host-scaled": score(native_scaled, nets),
            "networks": [{"arch": n["arch"], "input_shape": n["input_shape"], "measured_ms": measured(n)[0],
                          "foreign_ms": a, "foreign_host_scaled_ms": b, "native_ms": c, "native_host_scaled_ms": d}
                         for n, a, b, c, d in zip(nets, raw, scaled, native, native_scaled)]}


def speed_gate_choices(timings: dict, runtime: str) -> dict | None:
    """int8 or fp32 per held-out network as this CPU's profile picks it (``speed_gate = "profile"``, fp32 when
    predicted at least 5 % faster), against the faster one measured, and the latency each rule ships relative
    to always shipping the faster."""
    pair = [timings["backends"].get(f"{runtime}-{p}") for p in ("int8", "fp32")]
    if not all(r and "networks" in r for r in pair):
        return None
    int8, fp32 = ([measured(n)[0] for n in r["networks"]] for r in pair)
    pred = [[n["predicted_ms"] for n in r["networks"]] for r in pair]
    picks_int8 = np.array([not fp32_is_faster(a, b) for a, b in zip(*pred)])  # the gate's own rule
    int8, fp32 = np.array(int8), np.array(fp32)
    best = np.minimum(int8, fp32)
    shipped = np.where(picks_int8, int8, fp32)
    return {"networks": len(best), "int8_faster_measured": int((int8 < fp32).sum()),
            "profile_picks_int8": int(picks_int8.sum()),
            "profile_picks_the_faster": float(np.mean(picks_int8 == (int8 < fp32))),
            "slowdown_vs_faster_mean_pct": {"profile_gate": float(100 * np.mean(shipped / best - 1)),
                                            "always_int8": float(100 * np.mean(int8 / best - 1)),
                                            "always_fp32": float(100 * np.mean(fp32 / best - 1))}}


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results["backends"])
    fig, axes = plt.subplots(1, len(names), figsize=(5 * len(names), 4.5), squeeze=False)
    for ax, name in zip(axes[0], names):
        nets = results["backends"][name]["networks"]
        meas = np.array([n["measured_ms"] for n in nets])
        for key, label in (("foreign_ms", "foreign"), ("foreign_host_scaled_ms", "foreign, host-scaled"),
                           ("native_ms", "native"), ("native_host_scaled_ms", "native, host-scaled")):
            within = results["backends"][name][label.replace(", ", "-")]["within_10pct"]
            ax.scatter(meas, [n[key] for n in nets], s=8, alpha=0.7, label=f"{label}: ±10% {100 * within:.0f}%")
        xs = np.array([meas.min() * 0.8, meas.max() * 1.2])
        ax.plot(xs, xs, "k-", lw=1)
        ax.fill_between(xs, xs * 0.9, xs * 1.1, color="grey", alpha=0.2)
        ax.set(xscale="log", yscale="log", xlabel="measured here, ms", ylabel="predicted ms", title=name)
        ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--measured", type=Path, required=True, help="bench/latency.py --out JSON from this machine")
    parser.add_argument("--out", type=Path, default=RESULTS / "latency_host.json")
    parser.add_argument("--rescore", action="store_true", help="score the predictions stored in --out again; time nothing")
    args = parser.parse_args()
    measured = json.loads(args.measured.read_text())
    if args.rescore:
        results = json.loads(args.out.read_text())
        for name, r in results["backends"].items():
            nets = measured["backends"][name]["networks"]
            for key in ("foreign", "foreign-host-scaled", "native", "native-host-scaled"):
                r[key] = score([n[key.replace("-", "_") + "_ms"] for n in r["networks"]], nets)
        report(results, args.out)
        return
    results = {"measured": str(args.measured), "environment": environment(), "anchors": list(ANCHORS),
               "load_average_start": list(os.getloadavg()), "backends": {}}
    for name, result in measured["backends"].items():
        if "networks" in result and BACKENDS[name][0] != "executorch":  # anchors are ONNX files
            results["backends"][name] = run_backend(name, result)
    results["speed_gate"] = {rt: speed_gate_choices(measured, rt) for rt in ("onnxruntime", "openvino-cpu")}
    results["load_average_end"] = list(os.getloadavg())
    report(results, args.out)


def report(results: dict, out: Path) -> None:
    out.write_text(json.dumps(results, indent=1) + "\n")
    plot(results, out.with_suffix(".png"))
    print(f"{'backend':24} {'predictor':20} {'n':>4} {'±10%':>6} {'RMSPE':>7} {'tau':>6}   repeatable: n, ±10%")
    for name, r in results["backends"].items():
        for key in ("foreign", "foreign-host-scaled", "native", "native-host-scaled"):
            m, ro = r[key], r[key]["repeatable_only"]
            print(f"{name:24} {key:20} {m['n']:4d} {100 * m['within_10pct']:5.0f}% {m['rmspe_pct']:6.1f}% "
                  f"{m['kendall_tau']:6.3f}   {ro['n']}, {100 * ro['within_10pct']:.0f}%")
        floor = r.get("noise_floor") or {}
        print(f"{'':24} noise floor (one half of the timings predicting the other): ±10% "
              f"{100 * floor.get('within_10pct', float('nan')):.0f}%; factors foreign "
              + ", ".join(f"{k} ×{v['factor']:.2f}" for k, v in r["host_scale"].items()) + "; native "
              + ", ".join(f"{k} ×{v['unrounded']:.3f}" for k, v in r["native_host_scale"].items()))
    for rt, g in results["speed_gate"].items():
        if g:
            slow = g["slowdown_vs_faster_mean_pct"]
            print(f"speed gate {rt}: int8 measured faster on {g['int8_faster_measured']}/{g['networks']}; this CPU's "
                  f"profile picks the faster on {100 * g['profile_picks_the_faster']:.0f}%; "
                  "mean slowdown vs the faster: "
                  f"profile {slow['profile_gate']:.1f}%, always int8 {slow['always_int8']:.1f}%, "
                  f"always fp32 {slow['always_fp32']:.1f}%")
    print(f"wrote {out} and {out.with_suffix('.png')}")


if __name__ == "__main__":
    main()
