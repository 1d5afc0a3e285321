"""Reports: the one builder of the typed record (:mod:`edgekd.schema`) and the JSON / Markdown / HTML writers.

Names are resolved on first use, so importing a report module does not pull in every writer.
"""

from importlib import import_module

__all__ = ["build_report", "markdown", "write_reports"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("edgekd.report.writers"), name)
    raise AttributeError(f"module 'edgekd.report' has no attribute {name!r}")
