"""``edgekd.build_all``: many targets from one teacher and one dataset.

Targets that share a numeric format (``target.format.key``) share one student search; targets
whose distillations would be identical (same student, and same format when the distillation is
quantization-aware) share one distillation. Each target is then compiled, validated where its
runtime runs here, and reported. A failure in one target never stops the others. The overall
verdict (:attr:`MatrixResult.ok`) is true only when every target was built and every target
validated here passed its gate; a target that could be built but not run here ("not run here") is
listed with its reason and never counted as passed.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from edgekd.distill.losses import KD
from edgekd.distill.qad import check_qat_teacher
from edgekd.report.outputs import write_outputs
from edgekd.report.versus import check_ship
from edgekd.schema.sections import Status
from edgekd.schema.student import card_of
from edgekd.seeding import deterministic
from edgekd.stages.context import BuildContext, BuildOptions, split_arguments
from edgekd.stages.data import prepare_data
from edgekd.stages.deliver import deliver_target, for_target
from edgekd.stages.distill import distill_group
from edgekd.stages.preflight import guarded, resolve_targets
from edgekd.stages.results import MatrixResult, TargetResult
from edgekd.stages.student import Plan, distill_groups, plan_group, prepare_student, share_groups
from edgekd.stages.teacher import label_with_teacher, prepare_teacher, teacher_view

PASSED, FAILED, NOT_RUN, NOT_BUILT, ERROR = Status  # the statuses' older names
__all__ = ["MatrixResult", "TargetResult", "build_all", "resolve_targets", "run_build"]


@guarded("targets")  # checks every argument, then locks out_dir and supersedes old reports
def build_all(teacher: torch.nn.Module | None = None, train=None, val=None, targets=None,
              out_dir: str | Path = "build", *, student=None, dataset: str | None = None, spec=None, loss=None,
              qat_teacher: str | None = None,
              epochs: int = 30, batch_size: int = 128, lr: float = 3e-3, seed: int = 0,
              augment: bool | None = None, calib_size: int | None = None, val_fraction: float = 0.2,
              resume: bool = False, progress: bool = True, latency_runs: int = 200, search: bool = True,
              qat: bool = False, command: str | None = None, html: bool = True,
              data_dir=None, val_dir=None, image_size=None, channels: int | None = None,
              ship: str = "auto", device: str = "cpu") -> MatrixResult:
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
    options, data_args = split_arguments(locals())
    return run_build(teacher, data_args, targets, Path(out_dir), options, command=command, html=html)[0]


def run_build(teacher, data_args: dict, targets, out_dir: Path, options: BuildOptions, *, command: str | None = None,
              html: bool = True, raise_errors: bool = False) -> tuple[MatrixResult, BuildContext]:
    """The one orchestrator behind ``build`` and ``build_all``: every stage, in order, seeded once.

    Bad input fails before any work. With ``raise_errors`` (``edgekd.build``) a stage's exception
    reaches the caller instead of becoming that target's ``error`` status.
    """
    started = time.perf_counter()
    check_qat_teacher(options.qat_teacher, options.loss)
    chosen = resolve_targets(targets)
    with deterministic(options.seed):
        data = label_with_teacher(prepare_data(**data_args, cache_dir=out_dir / "cache"), teacher, out_dir / "cache")
        teacher, teacher_info = prepare_teacher(teacher, data, options.seed, options.progress)
        prepare_student(options.student, data)  # a bad student is bad input for every target
        check_ship(options.ship)
        ctx = BuildContext(data, teacher, teacher_info, options.loss or KD(), options, out_dir, raise_errors,
                           teacher_view(teacher, data))
        results, shared, plans = [], {}, []
        for key, members in share_groups(chosen).items():  # one search per numeric format
            plan = plan_group(key, members, ctx)
            if isinstance(plan, Plan):
                plans.append(plan)
            else:
                results += plan[0]
                shared[key] = plan[1]
        for label, group in distill_groups(plans, options.qat).items():  # one distillation per distinct student
            results += _distill_and_deliver(label, group, ctx, shared)
    order = {t.name: i for i, t in enumerate(chosen)}
    results.sort(key=lambda r: order[r.target])
    matrix = MatrixResult(results, out_dir, seconds=time.perf_counter() - started)
    write_outputs(matrix, data, teacher, teacher_info, ctx.loss, ctx.settings, shared, command, html)
    return matrix, ctx


def _distill_and_deliver(label: str, group: list[Plan], ctx: BuildContext, shared: dict) -> list[TargetResult]:
    """One distillation for every target of ``group``, then each target compiled, validated and reported."""
    done = distill_group(label, group, ctx)
    shared[label] = done.info
    members = [t for p in group for t in p.members]
    if done.trained is None:
        return [TargetResult(t.name, Status.ERROR, f"distillation failed: {done.error}", error=done.error)
                for t in members]
    # each format group found its student with its own search (latency model, budget), even where
    # groups that found the same student share one distillation: each target reports its own
    searches = {t.name: card_of(p.model).search for p in group for t in p.members}
    return [deliver_target(t, for_target(done.trained, searches.get(t.name)), done.config, ctx, label,
                    {"distillation": done.info["seconds"], "search": (searches.get(t.name) or {}).get("seconds")})
            for t in members]
