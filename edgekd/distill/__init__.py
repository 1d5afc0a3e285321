"""Distillation: the trainer, checkpoints, hooks, DDP and the loss family.

The package itself is callable: ``edgekd.distill(teacher, student, train, val, ...)`` runs
:func:`edgekd.distill.api.distill`, while ``edgekd.distill.fit`` & co. stay importable.
"""

import sys
import types

from edgekd.distill.trainer import TrainConfig, TrainResult, evaluate, fit, predict

__all__ = ["TrainConfig", "TrainResult", "distill", "evaluate", "fit", "predict"]


def distill(*args, **kwargs):
    """See :func:`edgekd.distill.api.distill`."""
    from edgekd.distill.api import distill as _distill

    return _distill(*args, **kwargs)


class _CallableModule(types.ModuleType):
    def __call__(self, *args, **kwargs):
        return distill(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
