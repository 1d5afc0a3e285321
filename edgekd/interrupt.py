"""Where a Ctrl-C stopped a build: the training loop it interrupted, read from the traceback.

The trainer's loop variables are the truth about progress (a checkpoint on disk may be an older
run's), and reading them from the interrupted frame needs no hook in the trainer.
"""

from __future__ import annotations

from dataclasses import dataclass

_TRAINER = "edgekd/distill/trainer.py"


@dataclass(frozen=True)
class Interrupted:
    """``stage`` ("distill", "teacher", ...: the trainer's progress label), the epoch that was running
    (1-based) and the epochs asked for; ``stage`` None when no training loop was running."""

    stage: str | None = None
    epoch: int | None = None
    epochs: int | None = None

    @property
    def resumable(self) -> bool:
        """A distillation with at least one finished epoch has a checkpoint to resume from."""
        return self.stage not in (None, "teacher") and (self.epoch or 0) > 1

    def message(self) -> str:
        if self.stage is None:
            return "interrupted (no training epoch was running); run the same command again"
        where = f"interrupted at epoch {self.epoch} of {self.epochs}"
        if self.stage == "teacher":
            return f"{where} while training the teacher; run again (it is cached once trained)"
        if not self.resumable:
            return f"{where} ({self.stage}); no epoch had finished, run the same command again"
        return f"{where} ({self.stage}); continue with --resume"


_LOOP = "_fit"  # trainer.fit moves to the device, then runs this epoch loop


def interrupted_at(exc: BaseException) -> Interrupted:
    """The innermost trainer loop in ``exc``'s traceback, or ``Interrupted()`` if none."""
    found = Interrupted()
    tb = exc.__traceback__
    while tb is not None:
        frame = tb.tb_frame
        code = frame.f_code
        if code.co_filename.replace("\\", "/").endswith(_TRAINER) and code.co_name == _LOOP:
            local = frame.f_locals
            config, epoch = local.get("config"), local.get("epoch")
            if config is not None and isinstance(epoch, int):
                found = Interrupted(str(local.get("desc") or "distill"), epoch + 1, int(config.epochs))
        tb = tb.tb_next
    return found
