"""Stage 3, the student: the user's, the default, or one searched per numeric format; and who shares what.

Targets that share a numeric format (``target.format.key``) share one student search, under the
tightest latency budget among them and only the operators all of them run. Groups whose
distillations would be identical (same student; same format when the distillation is
quantization-aware) share one distillation.
"""

from __future__ import annotations

import copy
import hashlib
import json
import logging
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from edgekd._io import write_json
from edgekd.baseline import TeacherArtifact, compile_teacher
from edgekd.capability import capability
from edgekd.errors import DataError
from edgekd.models import DEFAULT_STUDENT, create_student
from edgekd.schema.sections import Status
from edgekd.schema.student import arch_of, card_of, set_card
from edgekd.search import search
from edgekd.search.build import search_student
from edgekd.search.scores import DEFAULT_SCORE, get_score
from edgekd.search.spaces import make_space
from edgekd.stages.context import BuildContext, Data
from edgekd.stages.data import prepare_data
from edgekd.stages.results import TargetResult
from edgekd.stages.teacher import prepare_teacher
from edgekd.targets import Target, load_target

log = logging.getLogger(__name__)


def prepare_student(student, data: Data, teacher: nn.Module | None = None, target: Target | None = None, *,
                    search: bool = True, seed: int = 0, out_dir=None, progress: bool = False,
                    baseline: TeacherArtifact | None = None) -> nn.Module:
    """An untrained student: searched for ``target`` when none is given and ``search``, else the given one."""
    shape, classes = data.train.input_shape, data.num_classes
    if student is None and search and teacher is not None and target is not None:
        return search_student(teacher, data.train, target, seed=seed, out_dir=out_dir, progress=progress,
                              teacher_latency=baseline.record if baseline is not None else None, num_classes=classes)
    if student is None:
        student = dict(DEFAULT_STUDENT)
    if isinstance(student, str):
        student = {"name": student}
    if isinstance(student, dict):
        kwargs = dict(student)
        return create_student(kwargs.pop("name"), shape, classes, **kwargs)
    if isinstance(student, nn.Module):
        student = copy.deepcopy(student)
        return set_card(student, arch=arch_of(student, {"name": type(student).__name__}))
    raise DataError(f"student must be an nn.Module, a registry name or a dict, got {type(student).__name__}")


def share_groups(targets: list[Target]) -> dict[str, list[Target]]:
    """Targets grouped by numeric format: one search per group, in first-seen order."""
    groups: dict[str, list[Target]] = {}
    for t in targets:
        groups.setdefault(t.format.key, []).append(t)
    return groups


def search_target(members: list[Target]) -> Target:
    """The target one shared search runs for: the tightest budget, and only operators every member runs."""
    tight = min(members, key=lambda t: t.latency.budget_ms if t.latency.budget_ms is not None else float("inf"))
    ops = tuple(o for o in tight.ops if all(o in t.ops for t in members))
    return tight.model_copy(update={"ops": ops}) if ops and ops != tight.ops else tight


@dataclass
class Plan:
    """One numeric format's targets and the (searched or given) untrained student they will share."""

    key: str
    members: list
    guide: Target
    model: nn.Module


def plan_group(key: str, members: list[Target], ctx: BuildContext) -> Plan | tuple[list[TargetResult], dict]:
    """The student for one numeric format (searched under its targets' constraints), or its final results.

    Each buildable member's teacher is compiled first: the search must beat it.
    """
    names = [t.name for t in members]
    info = {"targets": names, "formats": [key]}
    caps = [capability(t) for t in members]
    if not any(c.build for c in caps):  # nothing to compile: neither search nor distill for nothing
        info["skipped"] = "no target of this format can be built here"
        return [TargetResult(c.target, Status.NOT_BUILT, f"not built here: {c.build_reason}") for c in caps], info
    guide = search_target([t for t, c in zip(members, caps) if c.build])
    o = ctx.options
    for t, c in zip(members, caps):
        if c.build:
            ctx.baselines[t.name] = compile_teacher(ctx.teacher, t, ctx.data, ctx.out_dir, calib_size=o.calib_size,
                                                    latency_runs=o.latency_runs)
    try:
        torch.manual_seed(o.seed)  # the student's initial weights depend on the seed alone
        work = ctx.out_dir / "_search" / (members[0].name if len(members) == 1 else key)
        model = resumed_search(work, ctx.data) if o.resume and o.student is None and o.search else None
        if model is None:
            model = prepare_student(o.student, ctx.data, ctx.teacher, guide, search=o.search, seed=o.seed,
                                    out_dir=work, progress=o.progress, baseline=ctx.baselines.get(guide.name))
            remember_search(work, model)
    except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the other groups
        if ctx.raise_errors:
            raise
        log.error("student search for %s failed: %s", ", ".join(names), exc)
        info["error"] = str(exc)
        return [TargetResult(n, Status.ERROR, f"student search failed: {exc}", error=exc) for n in names], info
    return Plan(key, members, guide, model)


CHOSEN = "chosen.json"  # the search's decision, so that --resume continues the same student


def remember_search(folder: Path, model: nn.Module) -> None:
    """Keep the searched student's decision: finalists timed here can rank differently on a rerun."""
    summary = card_of(model).search
    if summary:
        write_json(folder / CHOSEN, json.loads(json.dumps(summary, default=list)))


def resumed_search(folder: Path, data: Data) -> nn.Module | None:
    """The interrupted build's searched student, untrained and seeded as then; None when there is none."""
    path = folder / CHOSEN
    if not path.is_file():
        return None
    summary = json.loads(path.read_text(encoding="utf-8"))
    kwargs = {k: v for k, v in summary["arch"].items() if k != "name"}
    log.info("--resume: the student the interrupted build's search chose, %s", summary["arch"])
    model = create_student(summary["arch"]["name"], data.train.input_shape, data.num_classes, **kwargs)
    return set_card(model, search=summary)


def distill_key(arch, fmt, qat: bool) -> str:
    """Two targets get the same distillation iff this matches: same student, and same format when QAT."""
    numeric = fmt.key if qat and fmt.trains_aware else "fp32"
    return f"{numeric}|{json.dumps(arch, sort_keys=True, default=list)}"


def distill_groups(plans: list[Plan], qat: bool) -> dict[str, list[Plan]]:
    """Format groups merged where their distillations would be identical (no QAT, same student)."""
    by_key: dict[str, list[Plan]] = {}
    for plan in plans:
        arch = arch_of(plan.model, type(plan.model).__name__)
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


def search_builtin(dataset: str | None, target, seed: int = 0, progress: bool = True, **kwargs):
    """``edgekd search``: the default (cached) teacher of a built-in dataset, then ``edgekd.search``."""
    target = load_target(target)
    make_space(kwargs.get("space", "resnet"), target.ops)  # a bad space fails before the teacher trains
    get_score(kwargs.get("score", DEFAULT_SCORE))
    data = prepare_data(None, None, dataset, None, 0.2, seed)
    teacher, _ = prepare_teacher(None, data, seed, progress)
    return search(teacher, data.train, target, seed=seed, progress=progress, **kwargs)
