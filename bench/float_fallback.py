"""Per-layer float fallback on a real network: how much int8 agreement keeping the most sensitive
layers in float buys, and what it costs in latency (issue 17's "≥ 95 % at ≤ 15 % latency cost").

EfficientNet-Lite1 at 240 px on bench/real_models.py's photo crops, ONNX Runtime int8 with the
target's default recipe (min-max + bias correction). The validation crops are split in two: the
first half ranks the layers, the second half scores the result, so a ranking is never scored on the
images that chose it. Two rankings:

- ``alone``: each weighted layer quantized alone, the rest float (edgekd's gate recovery,
  :func:`edgekd.validate.sensitivity.layer_sensitivity`);
- ``leave-one-out``: every layer quantized but that one: the KL each layer's fallback removes.

For k in ``--ks`` the top-k layers stay float; agreement with fp32 (and its 95 % interval), SQNR and
batch-1 latency (1 thread, median of ``--runs``) are recorded, with the fp32 and plain int8
artifacts timed in the same run.

    python bench/float_fallback.py [--images 400] [--calib 80] [--ks 1 2 4 8 16] [--recipe percentile-256]

Writes bench/results/float_fallback.json (``--out`` elsewhere) and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from real_models import SIZES, latency, load_model, photos, score

TARGET = "x86-cpu-onnxruntime"


def leave_one_out(artifact, calib: np.ndarray, x: np.ndarray, ref: np.ndarray) -> list[dict]:
    """Each layer kept float with all others quantized: the KL to fp32 that remains, lowest first."""
    from edgekd.calibrate import read_cache
    from edgekd.ort_session import ort_session
    from edgekd.quant.qdq import QDQConfig, quantize_onnx
    from edgekd.validate.metrics import mean_kl

    folder = artifact.folder
    ranges = read_cache(folder / artifact.files["calibration_cache"])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for layer in artifact.details["quantized_layers"]:
            fp32 = folder / artifact.files.get("fp32_onnx", artifact.files["fp32"])
            q = quantize_onnx(fp32, Path(tmp) / "q.onnx", calib, QDQConfig(), keep_float=[layer], ranges=ranges)
            sess = ort_session(q, quiet=True)
            name = sess.get_inputs()[0].name
            out = np.concatenate([sess.run(None, {name: x[i : i + 16]})[0] for i in range(0, len(x), 16)])
            rows.append({"layer": layer, "kl": mean_kl(ref, out)})
    return sorted(rows, key=lambda r: r["kl"])


def interval(p: float, n: int) -> list[float]:
    from edgekd.validate.gates import wilson_interval

    return [float(v) for v in wilson_interval(round(p * n), n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="lite1", choices=sorted(SIZES))
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--calib", type=int, default=80)
    parser.add_argument("--ks", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--recipe", help="calibration recipe (calibration/<name>.toml); default: the target's")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "float_fallback.json")
    args = parser.parse_args()
    import edgekd
    from edgekd.compiler import compile_artifact
    from edgekd.targets import load_target
    from edgekd.validate.conformance import with_precision
    from edgekd.validate.sensitivity import layer_sensitivity

    torch.set_num_threads(1)
    started = time.time()
    model, size = load_model(args.model), SIZES[args.model]
    x = photos(args.images, size)
    calib, val = x[: args.calib], x[args.calib :]
    rank_x, test_x = val[: len(val) // 2], val[len(val) // 2 :]
    with torch.no_grad():
        rank_ref, ref = (model(torch.from_numpy(a)).numpy() for a in (rank_x, test_x))
    rows = []

    def row(tool: str, artifact, **extra) -> None:
        runner = edgekd.load(artifact.path)
        s = score(ref, runner(test_x))
        rows.append({"tool": tool, **extra, **s, "agreement_ci95": interval(s["agreement"], len(test_x)),
                     "latency_b1_ms": latency(runner, test_x[:1], args.runs)})
        print(rows[-1], flush=True)

    with tempfile.TemporaryDirectory() as tmp, torch.inference_mode(False):
        work = Path(tmp)
        target = load_target(with_precision(TARGET, "int8"))
        if args.recipe:
            target = target.model_copy(update={"calibration": target.calibration.model_copy(
                update={"recipe": args.recipe})})
        row("fp32", edgekd.compile(model, with_precision(TARGET, "fp32"), calib, work / "fp32"), kept_float=0)
        base = edgekd.compile(model, target, calib, work / "int8", calib_size=len(calib))
        row("int8", base, kept_float=0)
        rankings, seconds = {}, {}
        for name, rank in (("alone", lambda: layer_sensitivity(base, calib, rank_x)),
                           ("leave-one-out", lambda: leave_one_out(base, calib, rank_x, rank_ref))):
            t0 = time.time()
            rankings[name] = [r["layer"] for r in rank()]
            seconds[name] = time.time() - t0
        for name, order in rankings.items():
            for k in args.ks:
                artifact = compile_artifact(model, target, calib, work / f"{name}-{k}", calib_size=len(calib),
                                            keep_float=order[:k])
                row(f"int8, {name} top-{k} float", artifact, ranking=name, kept_float=k)
    fp32_ms, int8_ms = rows[0]["latency_b1_ms"], rows[1]["latency_b1_ms"]
    for r in rows:
        r["latency_cost_vs_int8_pct"] = 100 * (r["latency_b1_ms"] / int8_ms - 1)
    result = {"model": args.model, "target": TARGET, "recipe": target.calibration.recipe, "images": args.images,
              "calibration": args.calib,
              "ranking_images": len(rank_x), "scored_images": len(test_x),
              "layers": len(base.details["quantized_layers"]),
              "ranking_seconds": seconds, "rankings_top10": {n: o[:10] for n, o in rankings.items()},
              "fp32_ms": fp32_ms, "seconds": time.time() - started, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"{'variant':36} {'agree':>6} {'95% CI':>13} {'SQNR':>6} {'b1 ms':>7} {'vs int8':>8}")
    for r in rows:
        ci = r["agreement_ci95"]
        print(f"{r['tool']:36} {100 * r['agreement']:5.1f}% {100 * ci[0]:5.1f}-{100 * ci[1]:5.1f}% "
              f"{r['sqnr_db']:6.1f} {r['latency_b1_ms']:7.2f} {r['latency_cost_vs_int8_pct']:+7.1f}%")


if __name__ == "__main__":
    main()
