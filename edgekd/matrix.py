"""``edgekd.build_all``: many targets from one teacher and one dataset.

Targets that share a numeric format (``target.format.key``) share one student search; targets
whose distillations would be identical (same student, and same format when the distillation is
quantization-aware) share one distillation. Each target is then compiled, validated where its
runtime runs here, and reported. A failure in one target
never stops the others. The overall verdict (:attr:`MatrixResult.ok`) is true only when every
target was built and every target validated here passed its gate; a target that could be built
but not run here ("not run here") is listed with its reason and never counted as passed.
"""

from __future__ import annotations

import copy
import logging
import time
import traceback
from dataclasses import dataclass, field, replace
from pathlib import Path

import torch

from edgekd.backends.base import Artifact
from edgekd.capability import Capability, capability, latency_record
from edgekd.baseline import TeacherArtifact, attach_baseline, choose_ship, compile_teacher
from edgekd.errors import ConfigError, MissingExtraError, NotRunHere
from edgekd.outdir import guarded
from edgekd.report.outputs import write_outputs
from edgekd.report.schema import STATUSES, Status  # noqa: F401 - STATUSES re-exported
from edgekd.seeding import deterministic
from edgekd.targets import Target, list_targets, load_target

log = logging.getLogger(__name__)

PASSED, FAILED, NOT_RUN, NOT_BUILT, ERROR = Status  # noqa: the old names of the statuses


@dataclass
class TargetResult:
    """One target's outcome: ``status`` is one of passed, failed, not run here, not built here, error."""

    target: str
    status: str
    reason: str = ""
    report: dict | None = None
    artifact: Artifact | None = None
    teacher_artifact: Artifact | None = None  # the teacher compiled for this target: the row to beat

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


@guarded("targets")  # checks every argument, then locks out_dir and supersedes old reports
def build_all(teacher: torch.nn.Module | None = None, train=None, val=None, targets=None,
              out_dir: str | Path = "build", *, student=None, dataset: str | None = None, spec=None, loss=None,
              qat_teacher: str | None = None,
              epochs: int = 30, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
              augment: bool | None = None, calib_size: int | None = None, val_fraction: float = 0.2,
              resume: bool = False, progress: bool = True, latency_runs: int = 200, search: bool = True,
              qat: bool = False, command: str | None = None, html: bool = True,
              data_dir=None, val_dir=None, image_size=None, channels: int | None = None,
              ship: str = "auto") -> MatrixResult:
    """Build every target in ``targets`` (None: all known targets) from one teacher and dataset.

    Arguments are those of :func:`edgekd.build`, plus ``targets`` (names, TOML paths or
    :class:`~edgekd.targets.Target` objects), ``command`` (recorded in the manifest) and ``html``
    (write ``out_dir/report.html``); ``data_dir``, ``val_dir``, ``image_size`` and ``channels`` read an
    image folder as in :func:`edgekd.build`. Writes ``out_dir/<target>/`` per built target,
    ``out_dir/manifest.json`` and ``out_dir/report.html``. Targets sharing a numeric format share
    one student search (under the tightest latency budget among them and only the operators all of
    them run); one distillation serves every target with the same student (with ``qat=True``, only
    those of the same numeric format, which the distillation then fakes). The teacher is compiled
    once per target, before the search, into ``out_dir/teacher/<target>/``; ``ship`` is
    :func:`edgekd.build`'s.

    Raises:
        ConfigError, DataError: bad targets or data, before any training.
    """
    from edgekd.distill.losses import KD
    from edgekd.distill.qad import check_qat_teacher
    from edgekd.pipeline import _prepare_data, _prepare_student, _prepare_teacher

    started = time.perf_counter()
    check_qat_teacher(qat_teacher, loss)  # bad input: before any work
    chosen = resolve_targets(targets)
    out_dir = Path(out_dir)
    with deterministic(seed):
        data = _prepare_data(train, val, dataset, spec, val_fraction, seed, data_dir=data_dir, val_dir=val_dir,
                             image_size=image_size, channels=channels)
        teacher, teacher_info = _prepare_teacher(teacher, data, seed, progress)
        loss = loss or KD()
        settings = dict(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, progress=progress, resume=resume,
                        augment=data.augment if augment is None else augment)
        _prepare_student(student, data)  # a bad student is bad input for every target: fail before any work
        choose_ship(ship, {}, {})
        ctx = _Context(data, teacher, teacher_info, loss, out_dir, calib_size, latency_runs,
                       _teacher_view(teacher, data), search, qat, ship)
        ctx.qat_teacher = qat_teacher  # who teaches QAT (edgekd.distill.qad); None: its default
        results, shared, plans = [], {}, []
        for key, members in share_groups(chosen).items():  # one search per numeric format
            plan = _plan_group(key, members, student, settings, ctx)
            if isinstance(plan, _Plan):
                plans.append(plan)
            else:
                results += plan["results"]
                shared[key] = plan["info"]
        for label, group in distill_groups(plans, qat).items():  # one distillation per distinct student
            done = _distill_and_deliver(label, group, settings, ctx)
            results += done["results"]
            shared[label] = done["info"]
    order = {t.name: i for i, t in enumerate(chosen)}
    results.sort(key=lambda r: order[r.target])
    matrix = MatrixResult(results, out_dir, seconds=time.perf_counter() - started)
    write_outputs(matrix, data, teacher, teacher_info, loss, settings, shared, command, html)
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
    ship: str = "auto"
    baselines: dict = field(default_factory=dict)  # target name -> TeacherArtifact


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


@dataclass
class _Plan:
    """One numeric format's targets and the (searched or given) untrained student they will share."""

    key: str
    members: list
    guide: Target
    model: torch.nn.Module


def _plan_group(key, members, student, settings, ctx: _Context):
    """The student for one numeric format (searched under its targets' constraints), or final results."""
    from edgekd.pipeline import _prepare_student

    names = [t.name for t in members]
    info = {"targets": names, "formats": [key]}
    caps = [capability(t) for t in members]
    if not any(c.build for c in caps):  # nothing to compile: neither search nor distill for nothing
        info["skipped"] = "no target of this format can be built here"
        return {"results": [TargetResult(c.target, NOT_BUILT, f"not built here: {c.build_reason}") for c in caps],
                "info": info}
    guide = search_target([t for t, c in zip(members, caps) if c.build])
    for t, c in zip(members, caps):  # once per target, before the search that must beat it
        if c.build:
            ctx.baselines[t.name] = compile_teacher(ctx.teacher, t, ctx.data, ctx.out_dir, calib_size=ctx.calib_size,
                                                    latency_runs=ctx.latency_runs)
    try:
        torch.manual_seed(settings["seed"])  # the student's initial weights depend on the seed alone
        work = members[0].name if len(members) == 1 else key
        model = _prepare_student(student, ctx.data, ctx.teacher, guide, search=ctx.search, seed=settings["seed"],
                                 out_dir=ctx.out_dir / "_search" / work, progress=settings["progress"],
                                 baseline=ctx.baselines.get(guide.name))
    except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the other groups
        log.error("student search for %s failed: %s", ", ".join(names), exc)
        info["error"] = str(exc)
        return {"results": [TargetResult(n, ERROR, f"student search failed: {exc}") for n in names], "info": info}
    return _Plan(key, members, guide, model)


def distill_key(arch, fmt, qat: bool) -> str:
    """Two targets get the same distillation iff this matches: same student, and same format when QAT."""
    import json

    numeric = fmt.key if qat and fmt.trains_aware else "fp32"
    return f"{numeric}|{json.dumps(arch, sort_keys=True, default=list)}"


def distill_groups(plans: list[_Plan], qat: bool) -> dict[str, list[_Plan]]:
    """Format groups merged where their distillations would be identical (no QAT, same student)."""
    import hashlib

    by_key: dict[str, list[_Plan]] = {}
    for plan in plans:
        arch = getattr(plan.model, "edgekd_arch", type(plan.model).__name__)
        by_key.setdefault(distill_key(arch, plan.guide.format, qat), []).append(plan)
    labelled = {}
    for key, group in by_key.items():
        names = [t.name for p in group for t in p.members]
        numeric = key.split("|", 1)[0]
        label = names[0] if len(names) == 1 else numeric if len(group) == 1 else ""
        if not label or label in labelled:
            label = f"{numeric}-{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        labelled[label] = group
    return labelled


def _distill_and_deliver(label: str, group: list[_Plan], settings, ctx: _Context) -> dict:
    """One distillation for every target of ``group``, then each target compiled and validated."""
    from edgekd.distill.trainer import TrainConfig
    from edgekd.pipeline import distill_step
    from edgekd.report.manifest import state_sha256

    members = [t for p in group for t in p.members]
    names = [t.name for t in members]
    guide = group[0].guide
    info = {"targets": names, "formats": [p.key for p in group]}
    started = time.perf_counter()
    try:
        # alone, a target keeps edgekd.build's checkpoint folder, so either can resume the other's run
        config = TrainConfig(**settings, checkpoint=str(ctx.out_dir / "_work" / label / "distill.ckpt"))
        trained = distill_step(group[0].model, ctx.teacher, ctx.teacher_info, ctx.data, ctx.loss, config, guide,
                               qat=ctx.qat, qat_teacher=getattr(ctx, "qat_teacher", None))
    except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the other groups
        log.error("distillation for %s failed: %s", ", ".join(names), exc)
        log.debug("%s", traceback.format_exc())
        info["error"] = str(exc)
        return {"results": [TargetResult(n, ERROR, f"distillation failed: {exc}") for n in names], "info": info}
    info.update(seconds=time.perf_counter() - started, epochs=len(trained.history), history=trained.history,
                student=getattr(trained.model, "edgekd_arch", None), student_sha256=state_sha256(trained.model),
                searched_for=[p.guide.name for p in group if getattr(p.model, "edgekd_search", None)],
                qat=bool(ctx.qat and guide.format.trains_aware),
                qat_teacher=(getattr(trained.model, "edgekd_qat", None) or {}).get("teacher"))
    if len(members) > 1:
        log.info("one distillation (%s) shared by %s", label, ", ".join(names))
    # each target gets its own copy: a backend or the accuracy recovery may change the model it is given
    # each format group found its student with its own search (latency model, budget), even where
    # groups that found the same student share one distillation: each target reports its own
    searches = {t.name: getattr(p.model, "edgekd_search", None) for p in group for t in p.members}
    results = [_deliver(t, replace(trained, model=_with_search(trained.model, searches.get(t.name))), config, ctx,
                        label, {"distillation": info["seconds"], "search": (searches.get(t.name) or {}).get("seconds")})
               for t in members]
    return {"results": results, "info": info}


def _with_search(model, search: dict | None):
    """A copy of the distilled model for one target (a backend may change it), with that target's search."""
    model = copy.deepcopy(model)
    if search is not None:
        model.edgekd_search = search
    return model


def _deliver(target, trained, config, ctx: _Context, label: str = "", shared_seconds: dict | None = None
             ) -> TargetResult:
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
    # report["seconds"] is this target's own compile + validation; the shared stages are timed once per group
    seconds = {"compile_and_validate": report.get("seconds"), **{f"shared_{k}": v for k, v in
                                                                  (shared_seconds or {}).items() if v is not None}}
    report["run"] = {"status": status, "reason": reason, "capability": cap.__dict__, "shared_distillation": label,
                     "latency": latency_record(report, cap, target), "seconds": seconds}
    baseline = ctx.baselines.get(target.name) or TeacherArtifact({"status": NOT_BUILT, "reason": "not compiled"})
    attach_baseline(report, baseline.record, report["run"]["latency"], ctx.ship)
    _rewrite_reports(report, artifact)
    return TargetResult(target.name, status, reason, report, artifact, baseline.artifact)


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
    report = partial_report(target=target, artifact=artifact, data=ctx.data,
                            teacher_logits=ctx.teacher_view["logits"], teacher_info=ctx.teacher_info, trained=trained,
                            loss=ctx.loss, config=config, reason=reason, seconds=time.perf_counter() - started)
    from edgekd.chance import add_chance_warnings

    add_chance_warnings(report)  # a teacher or student near chance: report["warnings"]
    return report


def _rewrite_reports(report: dict, artifact: Artifact) -> None:
    from edgekd.report.manifest import write_target_reports

    write_target_reports(report, artifact.folder)
