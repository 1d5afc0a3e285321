"""Reports: JSON record, Markdown summary, environment facts."""

from edgekd.report.writers import build_report, markdown, write_reports

__all__ = ["build_report", "markdown", "write_reports"]
