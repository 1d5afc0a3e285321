"""The typed vocabulary of a build — the :class:`Status` of a target, the report.json sections, the
:class:`~edgekd.schema.record.Report`, a student's :class:`~edgekd.schema.student.StudentCard` (architecture,
search, quantization-aware training) — shared by every layer. It imports nothing else of edgekd."""

from edgekd.schema.record import Report
from edgekd.schema.sections import STATUSES, GateSection, Status, within_budget
from edgekd.schema.student import StudentCard, arch_of, card_of, set_card

__all__ = ["STATUSES", "GateSection", "Report", "Status", "StudentCard", "arch_of", "card_of", "set_card",
           "within_budget"]
