"""The typed vocabulary of a build's outcome — the :class:`Status` of a target, the report.json sections,
the :class:`~edgekd.schema.record.Report` — shared by the stages, validation, the report writers and the
CLI. It imports nothing else of edgekd, so any layer may use it."""

from edgekd.schema.record import Report
from edgekd.schema.sections import STATUSES, GateSection, Status, within_budget

__all__ = ["STATUSES", "GateSection", "Report", "Status", "within_budget"]
