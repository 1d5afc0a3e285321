"""Per-target latency models: fitted profiles (lookup table + boosted trees) and a FLOPs fallback.

``latency_model(target).predict_ms(arch, input_shape)`` is the one call search and build use.
A fitted profile lives in ``targets/profiles/<target>.json`` with its provenance; a target
without one (a device that is not this machine) gets the FLOPs fallback and a visible warning,
never an invented millisecond figure.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import platform
import warnings
from pathlib import Path

import numpy as np

from edgekd.backends.ethosu import EthosUBackend
from edgekd.errors import ConfigError
from edgekd.hw import trees
from edgekd.hw.base import LatencyModel, fp32_is_faster
from edgekd.hw.environment import cpu_model
from edgekd.hw.features import FEATURES, LINEAR_FEATURES, Block, blocks_of
from edgekd.hw.host import host_profile_name, host_scaled
from edgekd.hw.vela import VelaLatencyModel
from edgekd.models import list_students
from edgekd.schema.record import Report
from edgekd.targets import load_target, search_dirs

__all__ = ["LatencyModel", "ProfileLatencyModel", "FlopsLatencyModel", "VelaLatencyModel", "latency_model",
           "profile_path", "read_profile", "predict_for_report", "report_prediction", "target_precision"]

log = logging.getLogger(__name__)

PROFILE_SCHEMA = "edgekd.latency-profile/1"
RESCALABLE = ("onnxruntime", "openvino")  # runtimes whose anchor networks edgekd.hw.host can compile and time


class ProfileLatencyModel(LatencyModel):
    """Sum over blocks (lookup table, else boosted trees; or a linear cost model for a runtime timed
    whole, :mod:`edgekd.hw.fit_whole`) scaled, plus a fitted per-network overhead."""

    kind = "profile"

    def __init__(self, table: dict, precision: str, source: dict):
        self.table, self.precision, self.source = table, precision, source
        self._warned: set[tuple] = set()
        self._lut: dict[str, float] = table.get("lut", {})
        self._tree = table.get("regressor")
        self._linear = table.get("linear")
        for model, features in ((self._tree, FEATURES), (self._linear, LINEAR_FEATURES)):
            if model is not None and list(model["features"]) != list(features):
                raise ConfigError(f"{source.get('file')}: latency model features differ from this edgekd's; "
                                  "refit with `edgekd profile --target ... --fit`")
        if self._tree is None and self._linear is None:
            raise ConfigError(f"{source.get('file')}: a {precision} table without a regressor or linear model")

    @classmethod
    def load(cls, path: Path, precision: str) -> "ProfileLatencyModel":
        data = read_profile(path)
        if precision not in data["precisions"]:
            raise ConfigError(f"{path}: no {precision} model; it has {sorted(data['precisions'])}")
        source = {"file": str(path), "target": data["target"], "precision": precision, **data["provenance"]}
        return cls(data["precisions"][precision], precision, source)

    def block_ms(self, blocks: list[Block]) -> list[tuple[Block, float, str]]:
        """Each block's predicted time and whether it came from the lookup table, the regressor or the
        linear model."""
        self._warn_unfitted_variants(blocks)
        if self._linear is not None:
            coef = np.asarray(self._linear["coef"])
            return [(b, float(coef @ b.linear_vector()), "linear") for b in blocks]
        unseen = {b.key: b for b in blocks if b.key not in self._lut}
        fitted: dict[str, float] = {}
        if unseen:
            pred = np.exp(trees.predict(self._tree, np.array([b.vector() for b in unseen.values()])))
            # trees cannot extrapolate: a block bigger than any fitted one keeps the best measured throughput
            floor = self.table.get("floor_ms_per_mmac", {})
            fitted = {key: max(ms, floor.get(b.kind, 0.0) * b.macs / 1e6)
                      for (key, b), ms in zip(unseen.items(), pred.tolist())}
        return [(b, self._lut[b.key], "lut") if b.key in self._lut else (b, fitted[b.key], "regression")
                for b in blocks]

    def _warn_unfitted_variants(self, blocks: list[Block]) -> None:
        """Squeeze-excite / hard-swish blocks that the profile never measured are priced as plain blocks
        plus their MACs, which under-predicts them: say so once per profile."""
        variants = sorted({b.variant for b in blocks if b.variant})
        if not variants or "variants" in self._warned or any("|se" in k or "|hs" in k for k in self._lut):
            return
        self._warned.add("variants")
        message = (f"latency profile {Path(str(self.source.get('file', '?'))).name} was fitted without "
                   f"{', '.join(variants)} blocks (squeeze-excite / hard-swish): they are predicted as plain "
                   "blocks with their MACs, likely too fast; time the artifact (`edgekd profile --artifact`)")
        warnings.warn(message, UserWarning, stacklevel=3)
        log.warning(message)

    def predict_blocks_ms(self, blocks: list[Block]) -> float:
        oh = self.table["overhead"]
        total = sum(ms for _, ms, _ in self.block_ms(blocks))
        kernels = sum(self.kernels(b) for b in blocks)
        return float(oh["scale"] * total + oh["base_ms"] + oh["per_kernel_ms"] * kernels)

    def kernels(self, block: Block) -> int:
        """Runtime kernels of a block after fusion, as measured when the profile was fitted."""
        return int(self.table.get("kernels", {}).get(block.signature, 1))

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        """Predicted batch-1 latency (ms) of ``arch`` at ``input_shape`` (C, H, W) on this target.

        A shape outside the fitted ones is predicted at the nearest fitted shape and scaled by the
        network's multiply-accumulates, with a warning: the trees alone extrapolate to sizes never
        measured by an order of magnitude (0.28 ms predicted, 11.4 ms measured at 3×224×224).
        """
        shape = tuple(int(d) for d in input_shape)
        anchor = self.anchor_shape(shape)
        if anchor == shape:
            return self.predict_blocks_ms(blocks_of(arch, shape, num_classes, self.precision))
        if shape not in self._warned:
            self._warned.add(shape)
            message = (f"latency profile {Path(str(self.source.get('file', '?'))).name} was fitted at "
                       f"{_fmt(self.fitted_shapes)}; {_fmt([shape])} is extrapolated from {_fmt([anchor])} by "
                       "multiply-accumulates (refit at this size: `edgekd profile --target ... --fit`)")
            warnings.warn(message, UserWarning, stacklevel=2)
            log.warning(message)
        at_anchor = self.predict_blocks_ms(blocks_of(arch, anchor, num_classes, self.precision))
        return at_anchor * _macs(arch, shape, num_classes) / max(_macs(arch, anchor, num_classes), 1)

    @property
    def fitted_shapes(self) -> list[tuple[int, ...]]:
        return [tuple(int(d) for d in s) for s in self.source.get("input_shapes") or []]

    def covers(self, input_shape) -> bool:
        """Whether ``input_shape`` lies within the fitted shapes: same channels, pixels within their range."""
        return self.anchor_shape(tuple(int(d) for d in input_shape)) == tuple(int(d) for d in input_shape)

    def anchor_shape(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """``shape`` itself when covered, else the fitted shape closest to it (channels first, then pixels)."""
        fitted = self.fitted_shapes
        if not fitted or shape in fitted:
            return shape
        same_c = [f for f in fitted if f[0] == shape[0]]
        pixels = [f[1] * f[2] for f in same_c]
        if same_c and min(pixels) <= shape[1] * shape[2] <= max(pixels):
            return shape
        pool = same_c or fitted
        return min(pool, key=lambda f: (abs(np.log(f[1] * f[2] / (shape[1] * shape[2]))), abs(f[0] - shape[0])))


class FasterOfLatencyModel(LatencyModel):
    """A target's int8 profile, or its fp32 one where that is faster by the speed gate's rule
    (:func:`edgekd.hw.base.fp32_is_faster`): what a speed-gated build ships."""

    kind = "profile"

    def __init__(self, models: list):
        self.models = models
        self.source = {**models[0].source, "faster_of": [m.precision for m in models]}

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        int8, fp32 = (m.predict_ms(arch, input_shape, num_classes) for m in self.models)
        return fp32 if fp32_is_faster(int8, fp32) else int8

    def __getattr__(self, name):  # precision, table, covers ... of the target's own precision
        if name == "models":
            raise AttributeError(name)
        return getattr(self.models[0], name)


class FlopsLatencyModel(LatencyModel):
    """No latency model for this target: returns millions of multiply-accumulates, not milliseconds.

    The value ranks candidates by compute only; it is not comparable with a millisecond budget.
    """

    kind = "flops"

    def __init__(self, target: str, reason: str):
        self.source = {"target": target, "reason": reason, "units": "MMAC (FLOPs proxy, not ms)"}
        message = (f"target {target!r} has no latency model ({reason}); falling back to FLOPs: "
                   "predict_ms returns MMACs, which rank candidates but are not milliseconds")
        warnings.warn(message, UserWarning, stacklevel=3)
        log.warning(message)

    def predict_ms(self, arch: dict, input_shape, num_classes: int = 10) -> float:
        return float(sum(b.macs for b in blocks_of(arch, input_shape, num_classes)) / 1e6)


def _macs(arch: dict, input_shape, num_classes: int) -> float:
    return float(sum(b.macs for b in blocks_of(arch, input_shape, num_classes)))


def _fmt(shapes) -> str:
    return ", ".join("×".join(str(d) for d in s) for s in shapes) or "no recorded shape"


def profile_path(target_name: str, *, for_writing: bool = False, cpu: str | None = None) -> Path:
    """The profile a build on this CPU reads: ``targets/profiles/<target>@<cpu>.json`` (fitted on this CPU,
    :mod:`edgekd.hw.host`) in the first targets folder that has one, else ``<target>.json`` (the shipped
    default). ``for_writing``: where ``edgekd profile --fit`` writes, the repo's folder for this CPU."""
    folders = search_dirs("targets")
    host = host_profile_name(target_name, cpu or cpu_model())
    if not for_writing:
        for name in (host, f"{target_name}.json"):
            for folder in folders:
                if (folder / "profiles" / name).exists():
                    return folder / "profiles" / name
    repo = Path(__file__).resolve().parents[2] / "targets"
    base = repo if repo.is_dir() else (folders[0] if folders else Path.cwd() / "targets")
    return base / "profiles" / (host if for_writing else f"{target_name}.json")


def read_profile(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read latency profile: {exc}") from exc
    if data.get("schema") != PROFILE_SCHEMA:
        raise ConfigError(f"{path}: schema {data.get('schema')!r}, expected {PROFILE_SCHEMA!r}")
    return data


def target_precision(target) -> str:
    fmt = target.format
    return "int8" if fmt.is_quantized else fmt.weights


def latency_model(target, precision: str | None = None, input_shape=None) -> LatencyModel:
    """The latency model of a target (name, TOML path or loaded Target).

    Args:
        target: e.g. ``"x86-cpu-onnxruntime"``.
        precision: ``"int8"`` or ``"fp32"``; default: the target's numeric format.
        input_shape: (C, H, W) the predictions are for. Given, a profile fitted on another CPU of
            this machine's instruction set, for a target whose device is this machine, is rescaled
            by anchor networks timed here at that shape (:func:`edgekd.hw.host.host_scaled`); with the
            target's ``[latency] rescale = "always"``, so is this CPU's own profile (a VM's speed drifts).

    Returns:
        A :class:`LatencyModel` with ``.predict_ms(arch, input_shape)``, ``.kind`` and ``.source``.
        Targets whose ``[latency] model`` is ``profile`` or ``measured`` and that have a fitted
        profile get it; all others get :class:`FlopsLatencyModel` with a warning. Without a
        ``precision``, a target with a speed gate (it ships int8 or fp32, whichever is faster)
        gets the faster of its two models (:class:`FasterOfLatencyModel`).
    """
    target = load_target(target)
    precision_given, precision = precision, precision or target_precision(target)
    wanted = target.latency.model
    if wanted in ("profile", "measured"):
        path = profile_path(target.name)
        if path.exists():
            data = read_profile(path)
            if precision_given is None and target.gate.speed_gate and precision != "fp32" \
                    and {precision, "fp32"} <= set(data["precisions"]):  # it ships the faster: price that one
                return FasterOfLatencyModel([latency_model(target, p, input_shape) for p in (precision, "fp32")])
            if precision in data["precisions"]:
                model = ProfileLatencyModel.load(path, precision)
                _check_threads(target, model)
                foreign, rescale = _from_another_cpu(target, model), target.latency.rescale
                if input_shape is not None and rescalable_here(target) and \
                        (rescale == "always" or (foreign and rescale == "other-cpu")):
                    return _rescaled(target, model, input_shape, foreign)
                _check_machine(target, model)
                return model
            reason = f"{path.name} has no {precision} model"
        else:
            reason = f"no fitted profile {path.name}; fit one on the device with `edgekd profile --target " \
                     f"{target.name} --fit`"
    elif wanted == "vela":
        ok, reason = EthosUBackend().can_compile()
        if ok:
            return VelaLatencyModel(target)
    else:
        reason = "the target asks for the FLOPs proxy"
    return FlopsLatencyModel(target.name, reason)


def _rescaled(target, model: ProfileLatencyModel, input_shape, foreign: bool) -> LatencyModel:
    scaled = host_scaled(model, target, input_shape)
    factor, anchors = scaled.host_scale["factor"], scaled.host_scale["anchors"]
    if foreign:
        _warn(f"{target.name}: latency profile fitted on {model.source['machine']['cpu']!r}, this machine is "
              f"{cpu_model()!r}; rescaled ×{factor:.2f} by {anchors} anchor networks timed here (for per-kernel "
              f"accuracy refit here: `edgekd profile --target {target.name} --fit`)")
    elif factor != 1.0:  # this CPU's own profile, but the machine runs at another speed than at the fit
        _warn(f"{target.name}: this machine runs ×{factor:.2f} the time its latency profile measured "
              f"(fitted {model.source.get('date')}; {anchors} anchor networks timed now); predictions rescaled")
    return scaled


def _from_another_cpu(target, model: ProfileLatencyModel) -> bool:
    """Fitted on another CPU of this machine's instruction set (a device of another ISA is ranked, not timed)."""
    machine = model.source.get("machine") or {}
    fitted, here = machine.get("cpu"), cpu_model()
    same_isa = not (target.arch and machine.get("machine") and _isa(target.arch) != _isa(machine["machine"]))
    return bool(fitted and here and fitted != here and same_isa)


def rescalable_here(target) -> bool:
    """The target's device is this machine's CPU, running a runtime whose anchors can be timed here."""
    return (target.device == "cpu" and target.latency.model == "measured" and target.backend in RESCALABLE
            and importlib.util.find_spec(target.backend) is not None
            and (not target.arch or _isa(target.arch) == _isa(platform.machine())))


def _warn(message: str) -> None:
    warnings.warn(message, UserWarning, stacklevel=4)
    log.warning(message)


def _check_threads(target, model: ProfileLatencyModel) -> None:
    fitted = model.source.get("threads")
    if fitted is not None and fitted != target.latency.threads:
        warnings.warn(f"{target.name}: profile fitted with {fitted} thread(s), target runs {target.latency.threads}",
                      UserWarning, stacklevel=3)


def _check_machine(target, model: ProfileLatencyModel) -> None:
    """A profile measured on another CPU predicts that CPU: say which, once per load."""
    machine = model.source.get("machine") or {}
    fitted, measured_on = machine.get("cpu"), machine.get("machine")
    if target.arch and measured_on and _isa(target.arch) != _isa(measured_on):
        message = (f"{target.name}: latency profile measured on an {measured_on} machine ({fitted!r}) running "
                   f"the target's runtime; the device is {target.arch}, so predictions rank candidates by this "
                   "machine's timings, not the device's milliseconds (fit on the device for those)")
        warnings.warn(message, UserWarning, stacklevel=3)
        log.warning(message)
        return
    here = cpu_model()
    if fitted and here and fitted != here:
        message = (f"{target.name}: latency profile fitted on {fitted!r}, this machine is {here!r}; its "
                   "predictions describe that machine (refit here: `edgekd profile --target "
                   f"{target.name} --fit`)")
        warnings.warn(message, UserWarning, stacklevel=3)
        log.warning(message)


def _isa(machine: str) -> str:
    return {"arm64": "aarch64", "amd64": "x86_64"}.get(machine.lower(), machine.lower())


def predict_for_report(target, arch: dict, input_shape, num_classes: int, measured_ms: float | None) -> dict:
    """Predicted vs measured latency of a built artifact, for the build report; never raises."""
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            model = latency_model(target, input_shape=input_shape)
            value = model.predict_ms(arch, input_shape, num_classes)
    except Exception as exc:  # noqa: BLE001 - the report records why, the build goes on
        return {"latency_predicted_ms": None, "latency_model": {"kind": None, "reason": f"{type(exc).__name__}: {exc}"}}
    info = {"kind": model.kind, "source": {k: v for k, v in model.source.items() if k != "machine"},
            "warnings": [str(w.message) for w in caught]}
    if model.kind == "profile":  # sizes never measured are MAC-scaled from the nearest fitted one
        info["extrapolated"] = not model.covers(input_shape)
    if model.kind == "profile" and measured_ms:
        info["error_vs_measured_pct"] = round(100.0 * (value - measured_ms) / measured_ms, 2)
        info["within_10pct"] = abs(value - measured_ms) <= 0.10 * measured_ms
    return {"latency_predicted_ms": value if model.kind != "flops" else None, "latency_model": info,
            **({"flops_proxy_mmac": value} if model.kind == "flops" else {})}


def report_prediction(report: Report | dict, target) -> dict:
    """Keys for a build report's ``artifact`` section: predicted latency, model kind and source.

    Reads the report's student architecture, dataset shape and measured p50; changes nothing.
    """
    rep = Report.from_dict(report)
    arch = rep.student.arch
    if not isinstance(arch, dict) or arch.get("name") not in list_students():
        return {"latency_predicted_ms": None,
                "latency_model": {"kind": None, "reason": "the student is not a registry architecture"}}
    if not rep.dataset.input_shape or not rep.dataset.classes:
        return {"latency_predicted_ms": None,
                "latency_model": {"kind": None, "reason": "incomplete report: no dataset input shape or classes"}}
    measured = (rep.artifact.latency_ms or {}).get("p50")
    return predict_for_report(target, arch, tuple(rep.dataset.input_shape), len(rep.dataset.classes), measured)
