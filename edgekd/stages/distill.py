"""Stage 4, distill: one distillation per group of targets that would get the same one."""

from __future__ import annotations

import logging
import time
import traceback
from dataclasses import dataclass

from torch import nn

from edgekd.distill.api import qat_fit
from edgekd.distill.trainer import TrainConfig, fit
from edgekd.report.manifest import state_sha256
from edgekd.schema.student import card_of
from edgekd.stages.context import BuildContext
from edgekd.stages.student import Plan
from edgekd.targets import Target

log = logging.getLogger(__name__)


def distill_student(student: nn.Module, ctx: BuildContext, config: TrainConfig, target: Target):
    """Distill ``student`` from the build's teacher; the last third quantization-aware with ``options.qat``."""
    o = ctx.options
    log.info("distilling %s into %s for %d epochs", ctx.teacher_info["arch"], card_of(student).arch,
             config.epochs)
    if o.qat and target.format.trains_aware:
        return qat_fit(student, ctx.data.train, ctx.data.val, ctx.loss, ctx.teacher, config, target.format,
                       qat_teacher=o.qat_teacher)
    return fit(student, ctx.data.train, ctx.data.val, ctx.loss, ctx.teacher, config, desc="distill")


@dataclass
class Distilled:
    """One shared distillation: the trained student (None if it failed), its manifest record, its recipe."""

    trained: object | None
    info: dict
    config: TrainConfig
    error: Exception | None = None


def distill_group(label: str, group: list[Plan], ctx: BuildContext) -> Distilled:
    """Distill the student ``group`` shares. A failure is recorded (``build_all`` goes on with the other
    groups), or raised when ``ctx.raise_errors``."""
    members = [t for p in group for t in p.members]
    names = [t.name for t in members]
    info = {"targets": names, "formats": [p.key for p in group]}
    started = time.perf_counter()
    # alone, a target keeps edgekd.build's checkpoint folder, so either can resume the other's run
    config = ctx.train_config(label)
    try:
        trained = distill_student(group[0].model, ctx, config, group[0].guide)
    except Exception as exc:  # noqa: BLE001 - one group's failure must not stop the other groups
        if ctx.raise_errors:
            raise
        log.error("distillation for %s failed: %s", ", ".join(names), exc)
        log.debug("%s", traceback.format_exc())
        info["error"] = str(exc)
        return Distilled(None, info, config, exc)
    info.update(seconds=time.perf_counter() - started, epochs=len(trained.history), history=trained.history,
                student=card_of(trained.model).arch, student_sha256=state_sha256(trained.model),
                searched_for=[p.guide.name for p in group if card_of(p.model).search],
                qat=bool(ctx.options.qat and group[0].guide.format.trains_aware),
                qat_teacher=(card_of(trained.model).qat or {}).get("teacher"))
    if len(members) > 1:
        log.info("one distillation (%s) shared by %s", label, ", ".join(names))
    return Distilled(trained, info, config)
