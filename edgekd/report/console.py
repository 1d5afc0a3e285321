"""The end-of-build summary on the console: one row per target, the compiled teacher as the row to beat.

A rich table on a terminal; plain, complete text when stdout is a log or a pipe (rich would cut columns).
"""

from __future__ import annotations

import sys

from rich.console import Console
from rich.markup import escape
from rich.table import Table

from edgekd.report import explain

MATRIX_COLUMNS = ("target", "backend", "status", "artifact", "student fp32", "teacher", "agree w/ teacher",
                  "latency ms", "teacher artifact ms", "× vs compiled teacher", "× vs torch eager", "size KiB", "ships")


def matrix_rows(matrix) -> list[tuple[str, ...]]:
    """One row per target, in ``MATRIX_COLUMNS`` order, rounded for people; the compiled teacher is the row to beat."""
    rows = []
    for r in matrix.results:
        rep = r.report or {}
        art = rep.get("artifact", {})
        lat = (rep.get("run") or {}).get("latency") or {}
        tart, versus = rep.get("teacher_artifact") or {}, rep.get("versus_teacher") or {}
        latency = f"{lat['ms']:.3g} ({lat['kind']})" if lat.get("ms") is not None else "—"
        t_ms = tart.get("latency_p50_ms")
        teacher_lat = f"{t_ms:.3g} ({tart['latency_kind']})" if t_ms is not None else \
            (tart.get("status") or "—")
        ref = art.get("reference_check") if art.get("accuracy") is None else None  # device absent
        shown = ref or art
        rows.append((r.target, rep.get("target", {}).get("backend", "—"), r.status,
                     explain.pct(shown.get("accuracy")) + (f" {art['precision']}" if art.get("precision") else "")
                     + (" (reference run)" if ref else ""),
                     explain.pct(rep.get("student", {}).get("accuracy")), explain.pct(rep.get("teacher", {}).get("accuracy")),
                     explain.pct(shown.get("agreement_teacher")), latency, teacher_lat,
                     explain.ratio(versus.get("speedup_vs_compiled_teacher")),
                     explain.ratio(versus.get("speedup_vs_teacher_torch_eager")),
                     f"{art['size_bytes'] / 1024:.1f}" if art.get("size_bytes") else "—",
                     (rep.get("ship") or {}).get("choice", "—")))
    return rows


def matrix_table(matrix) -> Table:
    """The end-of-build summary: one row per target, latency labelled measured / predicted / none."""
    table = Table(title=f"edgekd build summary ({matrix.seconds:.0f} s)")
    for col in MATRIX_COLUMNS:
        table.add_column(col, justify="left" if col in ("target", "backend", "status", "ships") else "right")
    colours = {"passed": "green", "not run here": "yellow", "not built here": "dim"}
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
