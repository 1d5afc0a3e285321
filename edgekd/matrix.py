"""``edgekd.build_all``: many targets from one teacher and one dataset.

Targets that share a numeric format (``target.format.key``) share one distillation; each target
is then compiled, validated where its runtime runs here, and reported. A failure in one target
never stops the others. The overall verdict (:attr:`MatrixResult.ok`) is true only when every
target was built and every target validated here passed its gate; a target that could be built
but not run here ("not run here") is listed with its reason and never counted as passed.
"""

from __future__ import annotations

import copy
import logging
import platform
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from edgekd.backends.base import _TABLE, Artifact, get_backend
from edgekd.errors import ConfigError, MissingExtraError, NotRunHere
from edgekd.targets import Target, list_targets, load_target

log = logging.getLogger(__name__)

PASSED, FAILED, NOT_RUN, NOT_BUILT, ERROR = "passed", "failed", "not run here", "not built here", "error"
STATUSES = (PASSED, FAILED, NOT_RUN, NOT_BUILT, ERROR)


@dataclass(frozen=True)
class Capability:
    """What this machine can do for a target: build its artifact, run it, time it as the device would."""

    target: str
    backend: str
    build: bool
    build_reason: str
    run: bool
    run_reason: str
    latency_here: bool
    latency_reason: str


def capability(target: Target) -> Capability:
    """Whether ``target`` can be built, validated and timed on this machine, with the reason when not."""
    name = target.backend
    if name not in _TABLE:
        why = f"backend {name!r} not available (no edgekd backend module registered for it)"
        return Capability(target.name, name, False, why, False, why, False, why)
    try:
        backend = get_backend(name)
    except ImportError as exc:
        why = f"backend {name!r} not available ({exc}); pip install 'edgekd[{_TABLE[name].extra}]'"
        return Capability(target.name, name, False, why, False, why, False, why)
    can_build, build_reason = True, ""
    if hasattr(backend, "can_compile"):  # optional: backends whose compile needs an SDK not installed here
        can_build, build_reason = backend.can_compile()
    # optional per-target check (a backend may run here on one device, e.g. a CPU, but not another, e.g. an NPU)
    run, run_reason = backend.is_available_for(target) if hasattr(backend, "is_available_for") else \
        backend.is_available()
    host = platform.machine()
    if run and target.arch and target.arch not in (host, _ALIASES.get(host)):
        return Capability(target.name, name, can_build, build_reason, True, "", False,
                          f"not measured on the device (it is {target.arch}, this machine is {host}; the same "
                          f"{name} artifact runs here, so accuracy is validated here)")
    if run and target.latency.model != "measured":
        return Capability(target.name, name, can_build, build_reason, True, "", False,
                          f"not measured on the device (the {name} runtime runs here, but this machine is not the "
                          f"device: the target's latency model is {target.latency.model!r})")
    latency_reason = "" if run else f"not measured on the device: {run_reason}"
    return Capability(target.name, name, can_build, build_reason, run, run_reason, run, latency_reason)


_ALIASES = {"x86_64": "amd64", "AMD64": "x86_64", "arm64": "aarch64", "aarch64": "arm64"}


@dataclass
class TargetResult:
    """One target's outcome: ``status`` is one of passed, failed, not run here, not built here, error."""

    target: str
    status: str
    reason: str = ""
    report: dict | None = None
    artifact: Artifact | None = None

    @property
    def built(self) -> bool:
        return self.artifact is not None

    @property
    def passed(self) -> bool:
        return self.status == PASSED


@dataclass
class MatrixResult:
    """What ``edgekd.build_all`` returns: per-target results, the manifest and the HTML report."""

    results: list[TargetResult]
    out_dir: Path
    manifest: dict = field(default_factory=dict)
    manifest_path: Path | None = None
    html_path: Path | None = None
    seconds: float = 0.0

    def __getitem__(self, name: str) -> TargetResult:
        for r in self.results:
            if r.target == name:
                return r
        raise KeyError(name)

    @property
    def ok(self) -> bool:
        """Every target built, and every target validated here passed its gate."""
        return all(r.status in (PASSED, NOT_RUN) for r in self.results)

    def by_status(self, status: str) -> list[TargetResult]:
        return [r for r in self.results if r.status == status]


def resolve_targets(targets=None) -> list[Target]:
    """Target names, paths or objects → validated targets (all of them for None), duplicates dropped."""
    if targets is None:
        found = list_targets()
    else:
        found = [load_target(t) for t in ([targets] if isinstance(targets, (str, Target)) else targets)]
    unique: dict[str, Target] = {}
    for t in found:
        unique.setdefault(t.name, t)
    if not unique:
        raise ConfigError("no targets to build: none given and none found in the targets folders")
    return list(unique.values())


def share_groups(targets: list[Target]) -> dict[str, list[Target]]:
    """Targets grouped by numeric format: one distillation per group, in first-seen order."""
    groups: dict[str, list[Target]] = {}
    for t in targets:
        groups.setdefault(t.format.key, []).append(t)
    return groups


def build_all(teacher: torch.nn.Module | None = None, train=None, val=None, targets=None,
              out_dir: str | Path = "build", *, student=None, dataset: str | None = None, spec=None, loss=None,
              epochs: int = 30, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
              augment: bool | None = None, calib_size: int | None = None, val_fraction: float = 0.2,
              resume: bool = False, progress: bool = True, latency_runs: int = 200, search: bool = True,
              qat: bool = False, command: str | None = None, html: bool = True) -> MatrixResult:
    """Build every target in ``targets`` (None: all known targets) from one teacher and dataset.

    Arguments are those of :func:`edgekd.build`, plus ``targets`` (names, TOML paths or
    :class:`~edgekd.targets.Target` objects), ``command`` (recorded in the manifest) and ``html``
    (write ``out_dir/report.html``). Writes ``out_dir/<target>/`` per built target,
    ``out_dir/manifest.json`` and ``out_dir/report.html``. Targets sharing a numeric format share
    one student search (under the tightest latency budget among them and only the operators all of
    them run) and one distillation (quantization-aware in that format with ``qat=True``).

    Raises:
        ConfigError, DataError: bad targets or data, before any training.
    """
    from edgekd.distill.losses import KD
    from edgekd.pipeline import _prepare_data, _prepare_student, _prepare_teacher

    started = time.perf_counter()
    chosen = resolve_targets(targets)
    out_dir = Path(out_dir)
    with deterministic(seed):
        data = _prepare_data(train, val, dataset, spec, val_fraction, seed)
        teacher, teacher_info = _prepare_teacher(teacher, data, seed, progress)
        loss = loss or KD()
        settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress, resume=resume,
                        augment=data.augment if augment is None else augment)
        _prepare_student(student, data)  # a bad student is bad input for every target: fail before any work
        ctx = _Context(data, teacher, teacher_info, loss, out_dir, calib_size, latency_runs,
                       _teacher_view(teacher, data), search, qat)
        results, shared = [], {}
        for key, members in share_groups(chosen).items():
            group = _build_group(key, members, student, settings, ctx)
            results += group["results"]
            shared[key] = group["info"]
    order = {t.name: i for i, t in enumerate(chosen)}
    results.sort(key=lambda r: order[r.target])
    matrix = MatrixResult(results, out_dir, seconds=time.perf_counter() - started)
    _write_outputs(matrix, data, teacher, teacher_info, loss, settings, shared, command, html)
    return matrix


@dataclass
class _Context:
    """What every target of one matrix build shares."""

    data: object
    teacher: torch.nn.Module
    teacher_info: dict
    loss: object
    out_dir: Path
    calib_size: int | None
    latency_runs: int
    teacher_view: dict
    search: bool = True
    qat: bool = False


def _teacher_view(teacher, data) -> dict:
    """The teacher's logits and per-class accuracy on the validation data, computed once."""
    from edgekd.distill.trainer import predict
    from edgekd.validate.metrics import per_class_accuracy

    logits = predict(teacher, data.val.x).numpy()
    return {"logits": logits, "per_class_accuracy": per_class_accuracy(logits, data.val.y.numpy(),
                                                                       logits.shape[1])}


def search_target(members: list[Target]) -> Target:
    """The target one shared search runs for: the tightest budget, and only operators every member runs."""
    tight = min(members, key=lambda t: t.latency.budget_ms if t.latency.budget_ms is not None else float("inf"))
    ops = tuple(o for o in tight.ops if all(o in t.ops for t in members))
    return tight.model_copy(update={"ops": ops}) if ops and ops != tight.ops else tight


def _build_group(key, members, student, settings, ctx: _Context) -> dict:
    from edgekd.distill.trainer import TrainConfig
    from edgekd.pipeline import _prepare_student, distill_step

    names = [t.name for t in members]
    info = {"targets": names, "format": members[0].format.model_dump()}
    caps = [capability(t) for t in members]
    if not any(c.build for c in caps):  # nothing to compile: do not distill for nothing
        info["skipped"] = "no target of this format can be built here"
        return {"results": [TargetResult(c.target, NOT_BUILT, f"not built here: {c.build_reason}") for c in caps],
                "info": info}
    started = time.perf_counter()
    try:
        torch.manual_seed(settings["seed"])  # the student's initial weights depend on the seed alone
        # alone, a target keeps edgekd.build's folders, so either can resume the other's run
        work = members[0].name if len(members) == 1 else key
        guide = search_target([t for t, c in zip(members, caps) if c.build])
        model = _prepare_student(student, ctx.data, ctx.teacher, guide, search=ctx.search, seed=settings["seed"],
                                 out_dir=ctx.out_dir / "_search" / work, progress=settings["progress"])
        config = TrainConfig(**settings, checkpoint=str(ctx.out_dir / "_work" / work / "distill.ckpt"))
        trained = distill_step(model, ctx.teacher, ctx.teacher_info, ctx.data, ctx.loss, config, guide, qat=ctx.qat)
    except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the other groups
        log.error("distillation for %s failed: %s", ", ".join(names), exc)
        log.debug("%s", traceback.format_exc())
        info["error"] = str(exc)
        return {"results": [TargetResult(n, ERROR, f"distillation failed: {exc}") for n in names], "info": info}
    from edgekd.report.manifest import state_sha256

    info.update(seconds=time.perf_counter() - started, epochs=len(trained.history), history=trained.history,
                student=getattr(trained.model, "edgekd_arch", None), student_sha256=state_sha256(trained.model),
                searched_for=guide.name if getattr(trained.model, "edgekd_search", None) else None,
                qat=bool(ctx.qat and guide.format.is_quantized))
    if len(members) > 1:
        log.info("one distillation (%s) shared by %s", key, ", ".join(names))
    # each target gets its own copy: a backend or the accuracy recovery may change the model it is given
    results = [_deliver(t, replace(trained, model=copy.deepcopy(trained.model)), config, ctx) for t in members]
    return {"results": results, "info": info}


def _deliver(target, trained, config, ctx: _Context) -> TargetResult:
    """Compile, and validate where possible, one target; never raises for a target-level failure."""
    from edgekd.compile import compile as compile_model

    cap = capability(target)
    if not cap.build:
        return TargetResult(target.name, NOT_BUILT, f"not built here: {cap.build_reason}")
    started = time.perf_counter()
    try:
        artifact = compile_model(trained.model, target, ctx.data.train, ctx.out_dir, spec=ctx.data.spec,
                                 calib_size=ctx.calib_size)
    except (MissingExtraError, NotRunHere, ImportError) as exc:
        return TargetResult(target.name, NOT_BUILT, f"not built here: {exc}")
    except Exception as exc:  # noqa: BLE001 - one target's failure must not stop the others
        return _error(target, "compile", exc)
    if getattr(target.gate, "speed_gate", False) and cap.latency_here:  # only where this machine is the device
        try:
            from edgekd.validate.speed import speed_gate

            artifact = speed_gate(artifact, target)[0]
        except Exception as exc:  # noqa: BLE001
            return _error(target, "speed gate", exc, artifact)
    try:
        status, reason, report = _validate_or_explain(artifact, target, trained, config, ctx, cap, started)
    except Exception as exc:  # noqa: BLE001
        return _error(target, "validation", exc, artifact)
    if status == NOT_RUN and cap.run:  # the backend runs here but not this target's device
        cap = replace(cap, run=False, run_reason=reason, latency_here=False,
                      latency_reason=f"not measured on the device ({reason})")
    report["teacher"].setdefault("per_class_accuracy", ctx.teacher_view["per_class_accuracy"])
    report["run"] = {"status": status, "reason": reason, "capability": cap.__dict__,
                     "latency": _latency_record(report, cap, target)}
    _rewrite_reports(report, artifact)
    return TargetResult(target.name, status, reason, report, artifact)


def _validate_or_explain(artifact, target, trained, config, ctx: _Context, cap: Capability, started: float):
    """(status, reason, report): run the artifact here if its runtime is here, else say why not."""
    from edgekd.pipeline import validate_step

    why = cap.run_reason
    if cap.run:
        try:
            result = validate_step(artifact, trained, ctx.teacher, ctx.teacher_info, ctx.data, ctx.loss, config,
                                   target, ctx.latency_runs, started, measure_latency=cap.latency_here)
            return (PASSED if result.passed else FAILED), "; ".join(result.report["gate"]["reasons"]), result.report
        except NotRunHere as exc:  # the backend runs here, but not on this target's device (e.g. an NPU)
            why = str(exc)
    report = _not_run_report(artifact, target, trained, config, ctx, why, started)
    return NOT_RUN, report["gate"]["reasons"][0], report


def _error(target, stage: str, exc: Exception, artifact: Artifact | None = None) -> TargetResult:
    log.error("%s: %s failed: %s", target.name, stage, exc)
    log.debug("%s", traceback.format_exc())
    return TargetResult(target.name, ERROR, f"{stage} failed: {type(exc).__name__}: {exc}", None, artifact)


def _not_run_report(artifact, target, trained, config, ctx: _Context, why: str, started: float) -> dict:
    """The report of an artifact built here whose runtime or device is not here."""
    from edgekd.report.manifest import partial_report

    reason = why if why.startswith("not run here") or "not run here:" in why else f"not run here: {why}"
    return partial_report(target=target, artifact=artifact, data=ctx.data, teacher_logits=ctx.teacher_view["logits"],
                          teacher_info=ctx.teacher_info, trained=trained, loss=ctx.loss, config=config,
                          reason=reason, seconds=time.perf_counter() - started)


def _latency_record(report: dict, cap: Capability, target: Target) -> dict:
    """Latency with its kind: measured here on the device, predicted by the target's latency model, or none."""
    art = report["artifact"]
    measured = art.get("latency_ms") if cap.latency_here else None
    pred = _prediction(report, target)
    model = pred.get("latency_model") or {}
    if measured:
        return {"kind": "measured", "ms": measured["p50"], "p90_ms": measured["p90"],
                "how": f"measured here in {measured['runtime']}, batch 1",
                "predicted_ms": pred.get("latency_predicted_ms"), "model": model}
    if pred.get("latency_predicted_ms") is not None:
        return {"kind": "predicted", "ms": float(pred["latency_predicted_ms"]), "note": cap.latency_reason,
                "how": f"predicted by the {model.get('kind')} latency model of {target.name}", "model": model}
    why = model.get("reason") or "; ".join(model.get("warnings") or []) or f"no latency model for {target.name}"
    return {"kind": "none", "ms": None, "note": cap.latency_reason or "not measured", "how": why, "model": model,
            **({"flops_proxy_mmac": pred["flops_proxy_mmac"]} if "flops_proxy_mmac" in pred else {})}


def _prediction(report: dict, target: Target) -> dict:
    """The target's latency model applied to the student (edgekd.hw), as the build report holds it."""
    art = report["artifact"]
    if "latency_model" not in art:  # a not-run report: predict now
        try:
            from edgekd.hw.model import report_prediction
        except ImportError as exc:
            return {"latency_model": {"reason": f"no latency models in this edgekd ({exc})"}}
        art.update(report_prediction(report, target))
    return {k: art[k] for k in ("latency_predicted_ms", "latency_model", "flops_proxy_mmac") if k in art}


def _rewrite_reports(report: dict, artifact: Artifact) -> None:
    from edgekd.report.manifest import write_target_reports

    write_target_reports(report, artifact.folder)


def _write_outputs(matrix, data, teacher, teacher_info, loss, settings, shared, command, html) -> None:
    from edgekd.report.manifest import build_manifest, write_manifest

    matrix.manifest = build_manifest(matrix, data=data, teacher=teacher, teacher_info=teacher_info, loss=loss,
                                     settings=settings, shared=shared, command=command)
    matrix.manifest_path = write_manifest(matrix.manifest, matrix.out_dir)
    if html:
        from edgekd.report.html import write_html

        matrix.html_path = write_html(matrix, matrix.out_dir / "report.html")


class deterministic:  # noqa: N801 - used as a context manager, reads as a phrase
    """Seeded, deterministic torch for the duration of a build; restores the caller's settings."""

    def __init__(self, seed: int):
        self.seed = seed

    def __enter__(self):
        self._before = (torch.are_deterministic_algorithms_enabled(),
                        torch.is_deterministic_algorithms_warn_only_enabled())
        torch.use_deterministic_algorithms(True, warn_only=True)
        torch.manual_seed(self.seed)
        return self

    def __exit__(self, *exc):
        torch.use_deterministic_algorithms(self._before[0], warn_only=self._before[1])
        return False
