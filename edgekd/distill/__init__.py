"""Distillation: the trainer, checkpoints, hooks, DDP and the loss family.

The package itself is callable: ``edgekd.distill(teacher, student, train, val, ...)`` runs
:func:`edgekd.distill.api.distill`, while ``edgekd.distill.fit`` & co. stay importable.
"""

from edgekd._verbs import make_callable
from edgekd.distill.api import distill
from edgekd.distill.trainer import TrainConfig, TrainResult, evaluate, fit, predict

__all__ = ["TrainConfig", "TrainResult", "distill", "evaluate", "fit", "predict"]

make_callable(__name__, distill)  # edgekd.distill(...) runs the verb; see edgekd._verbs
