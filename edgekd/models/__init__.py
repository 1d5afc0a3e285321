"""Student registry (ResNet-style, MobileNetV2-style) and default teachers."""

from edgekd.models import mobilenet as _mobilenet  # noqa: F401  (registers "mobilenetv2")
from edgekd.models import resnet as _resnet  # noqa: F401  (registers "resnet")
from edgekd.models.registry import StudentInfo, create_student, list_students, register_student, student_info
from edgekd.models.teacher import TeacherCNN, default_teacher

DEFAULT_STUDENT = {"name": "resnet", "depths": (1, 1, 1), "widths": (16, 32, 64)}

__all__ = ["DEFAULT_STUDENT", "StudentInfo", "TeacherCNN", "create_student", "default_teacher", "list_students",
           "register_student", "student_info"]
