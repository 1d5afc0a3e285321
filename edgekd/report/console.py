"""The end-of-build summary on the console: one row per target, the compiled teacher as the row to beat.

A rich table on a terminal; plain, complete text when stdout is a log or a pipe (rich would cut columns).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgekd.report import explain
from edgekd.schema.record import Report, VersusSection
from edgekd.schema.sections import Status

MATRIX_COLUMNS = ("target", "backend", "status", "artifact", "student fp32", "teacher", "agree w/ teacher",
                  "latency ms", "teacher artifact ms", "× vs compiled teacher", "× vs torch eager", "size KiB", "ships")


def matrix_rows(matrix) -> list[tuple[str, ...]]:
    """One row per target, in ``MATRIX_COLUMNS`` order, rounded for people; the compiled teacher is the row to beat."""
    rows = []
    for r in matrix.results:
        rep = Report.from_dict(r.report)
        art, lat, tart = rep.artifact, rep.latency, rep.teacher_artifact
        versus = rep.versus_teacher or VersusSection()
        latency = f"{lat.ms:.3g} ({lat.kind})" if lat is not None and lat.ms is not None else "—"
        if tart is not None and tart.latency_p50_ms is not None:
            teacher_lat = f"{tart.latency_p50_ms:.3g} ({tart.latency_kind})"
        else:
            teacher_lat = (tart.status if tart is not None else None) or "—"
        ref = art.reference_check if art.accuracy is None else None  # device absent
        accuracy, agreement = (ref.get("accuracy"), ref.get("agreement_teacher")) if ref else \
            (art.accuracy, art.agreement_teacher)
        rows.append((r.target, rep.target.backend or "—", str(r.status),
                     explain.pct(accuracy) + (f" {art.precision}" if art.precision else "")
                     + (" (reference run)" if ref else ""),
                     explain.pct(rep.student.accuracy), explain.pct(rep.teacher.accuracy),
                     explain.pct(agreement), latency, teacher_lat,
                     explain.ratio(versus.speedup_vs_compiled_teacher),
                     explain.ratio(versus.speedup_vs_teacher_torch_eager),
                     f"{art.size_bytes / 1024:.1f}" if art.size_bytes else "—",
                     rep.ship.choice if rep.ship is not None else "—"))
    return rows


def matrix_table(matrix) -> Table:
    """The end-of-build summary: one row per target, latency labelled measured / predicted / none."""
    table = Table(title=f"edgekd build summary ({matrix.seconds:.0f} s)")
    for col in MATRIX_COLUMNS:
        table.add_column(col, justify="left" if col in ("target", "backend", "status", "ships") else "right")
    colours = {Status.PASSED.value: "green", Status.NOT_RUN.value: "yellow", Status.NOT_BUILT.value: "dim"}
    for row in matrix_rows(matrix):
        table.add_row(*[escape(c) for c in row[:2]], f"[{colours.get(row[2], 'red')}]{escape(row[2])}",
                      *[escape(c) for c in row[3:]])
    return table


def plain_table(columns, rows, title: str) -> str:
    """The same table as plain text, every cell complete (for logs and pipes, where rich would cut columns)."""
    widths = [max(len(str(c)) for c in col) for col in zip(columns, *rows)]
    line = lambda cells: "  ".join(str(c).ljust(w) for c, w in zip(cells, widths)).rstrip()  # noqa: E731
    return "\n".join([title, line(columns), line(["-" * w for w in widths]), *map(line, rows)])


def print_summary(matrix, stream=None) -> None:
    """The build summary on stdout: a rich table on a terminal, plain complete text otherwise."""
    stream = stream or sys.stdout
    if stream.isatty():
        Console(file=stream).print(matrix_table(matrix))
    else:
        stream.write(plain_table(MATRIX_COLUMNS, matrix_rows(matrix), f"edgekd build summary ({matrix.seconds:.0f} s)")
                     + "\n")
