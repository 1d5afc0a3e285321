"""What ``edgekd profile`` prints: a target's latency model, a refit, or an artifact timed in its runtime."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from edgekd.backends.base import Artifact
from edgekd.errors import ConfigError
from edgekd.hw.features import arch_key
from edgekd.hw.fit import fit_profile
from edgekd.hw.host import measure_host_scale
from edgekd.hw.model import ProfileLatencyModel, latency_model, profile_path, read_profile, rescalable_here
from edgekd.hw.profiler import profile
from edgekd.targets import load_target


def profile_lines(target: str, *, fit: bool = False, artifact: Path | None = None, networks: int = 40,
                  time_limit_s: float = 540.0, drift_shape: str | None = None) -> list[str]:
    """Lines describing the target's latency model (after refitting it when ``fit``) and the artifact's timing;
    with ``drift_shape`` (``CxHxW``), how far this machine's speed is from its profile's (anchors timed)."""
    tgt = load_target(target)
    shape = _shape(drift_shape) if drift_shape else None  # bad input refused before any timing
    lines = []
    if fit:
        path = _fit(tgt, networks, time_limit_s)
        lines.append(f"wrote {path}")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = latency_model(tgt)
    lines += [f"{tgt.name}: latency model kind {model.kind!r}", *[f"  warning: {w.message}" for w in caught]]
    src = model.source
    if model.kind == "profile":
        meas = src["measurements"]
        lines.append(f"  fitted {src['date']} on {src['machine']['cpu']} ({src['machine']['cpus']} CPUs), "
                     f"{src['runtime']} {src['versions'].get(src['runtime'])}, {src['threads']} thread(s), "
                     f"batch {src['batch']}: {meas['networks']} networks, {meas['timed_runs']} timed runs, "
                     f"median spread {meas['median_spread'] * 100:.1f}%")
        fit_stats = model.table["fit"]
        table = (f"{fit_stats['distinct_blocks']} distinct blocks in the lookup table" if "distinct_blocks" in fit_stats
                 else f"a linear cost model over {len(model.table['linear']['features'])} block features")
        lines.append(f"  {model.precision}: in-sample RMSPE {fit_stats['in_sample_rmspe'] * 100:.1f}%, "
                     f"{table} ({src['file']})")
    if shape is not None:
        lines += _drift_lines(tgt, shape)
    if artifact is not None:
        lines += _time_artifact(tgt, Path(artifact), model)
    return lines


def _shape(text: str) -> tuple[int, int, int]:
    parts = text.lower().split("x")
    if len(parts) != 3 or not all(p.isdigit() and 0 < int(p) <= 4096 for p in parts):
        raise ConfigError(f"--input-shape {text!r}: expected CxHxW, e.g. 3x224x224")
    return tuple(int(p) for p in parts)


def _drift_lines(tgt, shape) -> list[str]:
    """Per precision of the profile: anchors timed here against its predictions (edgekd.hw.host)."""
    path = profile_path(tgt.name)
    if not (path.exists() and rescalable_here(tgt)):
        why = f"{tgt.name} has no profile, or its device is not this machine running {tgt.backend}"
        return [f"drift check: not possible here ({why})"]
    lines = []
    for precision in read_profile(path)["precisions"]:
        base = ProfileLatencyModel.load(path, precision)
        scale = measure_host_scale(base, tgt.backend, shape, threads=tgt.latency.threads)
        factor = scale["unrounded"]
        verdict = ("within ±10 %" if abs(factor - 1) <= 0.10 else
                   f"beyond ±10 %: refit (`edgekd profile --target {tgt.name} --fit`) or set [latency] rescale = "
                   '"always" in the target')
        lines.append(f"drift check {precision} at {'x'.join(map(str, shape))}: this machine takes ×{factor:.2f} the "
                     f"time its profile predicts ({scale['anchors']} anchor networks, ×{scale['ratio_range'][0]:.2f} "
                     f"to ×{scale['ratio_range'][1]:.2f}; profile fitted {base.source.get('date')}): {verdict}")
    return lines


def _fit(tgt, networks: int, time_limit_s: float) -> Path:
    return fit_profile(tgt, networks_per_space=networks, time_limit_s=time_limit_s, progress=True,
                       out=profile_path(tgt.name, for_writing=True))


def _time_artifact(tgt, path: Path, model) -> list[str]:
    art = Artifact.read(path)
    result = profile(art, threads=tgt.latency.threads, runtime=art.backend if art.backend in
                     ("onnxruntime", "openvino", "executorch") else None)
    env = result.env
    lines = [f"artifact {art.path}: median {result.median_ms:.4f} ms (p90 {result.p90_ms:.4f}), spread "
             f"{result.spread * 100:.1f}% over {len(result.rounds)} rounds, {result.runs} runs, "
             f"{'stable' if result.stable else 'NOT stable'}; {env['runtime']} {env['runtime_version']}, "
             f"{env['threads']} thread(s), batch {env['batch']}, {env['precision']}"]
    report = art.folder / "report.json"
    arch = json.loads(report.read_text())["student"].get("arch") if report.exists() else None
    if model.kind == "profile" and isinstance(arch, dict) and "name" in arch:
        predicted = model.predict_ms(arch, art.input_shape)
        lines.append(f"  predicted {predicted:.4f} ms ({(predicted / result.median_ms - 1) * 100:+.1f}% vs measured) "
                     f"for {arch_key(arch)}")
    return lines
