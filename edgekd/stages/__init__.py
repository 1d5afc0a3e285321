"""The stages of a build, as public functions over one :class:`BuildContext`.

In order (``edgekd.matrix.run_build`` runs them; ``build`` and ``build_all`` call it):

0. ``stages/preflight.py`` — every argument checked before any work (``guarded`` wraps ``build``/``build_all``)
1. :func:`prepare_data` (``stages/data.py``) — built-in dataset, image folder or arrays → :class:`Data`;
   an unlabeled folder is then labelled by the user's teacher (:func:`label_with_teacher`)
2. :func:`prepare_teacher` (``stages/teacher.py``) — the user's teacher, or the cached default
3. :func:`plan_group` (``stages/student.py``) — per numeric format: compile the teacher (the baseline
   to beat), then search (or take) the student
4. :func:`distill_group` (``stages/distill.py``, via :func:`distill_student`) — one distillation per distinct student
5. :func:`deliver_target` (``stages/deliver.py``) — per target: compile, validate in its runtime (or say
   why not), report beside the compiled teacher

Stages import the wings below them (data, models, distill, search, backends, compile, validate,
report); nothing below imports a stage.
"""

from edgekd.stages.context import BuildContext, BuildOptions, Data
from edgekd.stages.data import prepare_data
from edgekd.stages.deliver import deliver_target, validate_target
from edgekd.stages.distill import distill_group, distill_student
from edgekd.stages.results import MatrixResult, TargetResult
from edgekd.stages.student import plan_group, prepare_student
from edgekd.stages.teacher import label_with_teacher, prepare_teacher

__all__ = ["BuildContext", "BuildOptions", "Data", "MatrixResult", "TargetResult", "deliver_target", "distill_group",
           "distill_student", "label_with_teacher", "plan_group", "prepare_data", "prepare_student", "prepare_teacher", "validate_target"]
