"""Reports: the typed record (schema, record), its one builder, and the JSON / Markdown / HTML writers.

Names are resolved on first use, so ``edgekd.report.environment`` (imported by the latency models)
does not pull in the writers.
"""

from importlib import import_module

__all__ = ["build_report", "markdown", "write_reports"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(import_module("edgekd.report.writers"), name)
    raise AttributeError(f"module 'edgekd.report' has no attribute {name!r}")
