"""The "versus the compiled teacher" section: computed (:func:`baseline_sections`, pure) and rendered for
report.html (the row to beat per target, the ship decision and why the search chose its student).
Rounded for people; report.json keeps full precision.
"""

from __future__ import annotations

from html import escape

from edgekd.errors import ConfigError
from edgekd.report import explain
from edgekd.schema.record import LatencyRecord, Report, ShipSection, TeacherArtifactSection, VersusSection
from edgekd.schema.sections import Status

SHIP_CHOICES = ("auto", "student", "teacher")
SAME_BASIS = ("measured", "predicted")
HEAD = ("target", "teacher artifact", "teacher top-1", "teacher latency", "student latency",
        "speed-up vs compiled teacher", "speed-up vs torch eager (secondary)", "Δ top-1 (points)", "size ratio",
        "teacher already fits", "ships")


def compare_to_teacher(report: Report, teacher_artifact: TeacherArtifactSection,
                       student_latency: LatencyRecord | None) -> VersusSection:
    """Student artifact vs teacher artifact in the same runtime (the headline) and vs the torch-eager teacher."""
    art, teacher, student = report.artifact, report.teacher, report.student
    s_ms, s_kind = (student_latency.ms, student_latency.kind) if student_latency is not None else (None, None)
    t_ms, t_kind = teacher_artifact.latency_p50_ms, teacher_artifact.latency_kind
    same_basis = s_ms is not None and t_ms is not None and s_kind == t_kind and s_kind in SAME_BASIS
    torch_t = (teacher.latency_ms or {}).get("p50")
    s_acc, t_acc = art.accuracy, teacher_artifact.accuracy
    t_size, s_size = teacher_artifact.size_bytes, art.size_bytes
    return VersusSection(
        speedup_vs_compiled_teacher=t_ms / s_ms if same_basis and s_ms > 0 else None,
        speedup_basis=s_kind if same_basis else None,
        speedup_vs_teacher_torch_eager=torch_t / s_ms if torch_t and s_ms and s_kind == "measured" else None,
        accuracy_delta_points=(s_acc - t_acc) * 100.0 if s_acc is not None and t_acc is not None else None,
        size_ratio=t_size / s_size if t_size and s_size else None,
        params_ratio=(teacher.params or 0) / student.params if student.params else None,
        student_faster=(s_ms < t_ms) if same_basis else None,
        student_smaller=(student.params or 0) < (teacher.params or 0),
        teacher_fits=teacher_fits(teacher_artifact))


def teacher_fits(teacher_artifact: TeacherArtifactSection) -> bool | None:
    """Whether the compiled teacher alone meets the latency budget and the accuracy gate (None: unknown here)."""
    within, gate = teacher_artifact.within_budget, teacher_artifact.passes_accuracy_gate
    if teacher_artifact.latency_budget_ms is None and gate is not None:
        within = True  # no budget: only the gate decides
    if within is None or gate is None:
        return None
    return bool(within and gate)


def check_ship(requested: str) -> None:
    """A bad ``ship`` is bad input: a ConfigError before any work."""
    if requested not in SHIP_CHOICES:
        raise ConfigError(f"ship must be one of {', '.join(SHIP_CHOICES)}, got {requested!r}")


def choose_ship(requested: str, versus: VersusSection, teacher_artifact: TeacherArtifactSection,
                student_passed: bool | None = None) -> ShipSection:
    """Which artifact ships: ``auto`` takes the student only when it is faster in the runtime and does
    not fail the accuracy gate that the compiled teacher passes (``student_passed``: the student
    artifact's gate; None where it was not judged)."""
    check_ship(requested)
    teacher_ok = teacher_artifact.path is not None and teacher_artifact.status != Status.ERROR
    if requested == "teacher" and not teacher_ok:
        return ShipSection(requested, "student", "teacher requested but its artifact was not built: "
                                                 f"{teacher_artifact.reason}")
    if requested != "auto":
        return ShipSection(requested, requested, f"{requested} requested")
    if student_passed is False and teacher_ok and teacher_artifact.passes_accuracy_gate:
        drop = versus.accuracy_delta_points
        return ShipSection("auto", "teacher", "the student artifact fails the accuracy gate"
                           + ("" if drop is None else f" ({drop:+.1f} points against the compiled teacher)")
                           + ", which the compiled teacher passes")
    if versus.student_faster is None or not teacher_ok:
        return ShipSection("auto", "student", "no same-runtime latency of both artifacts here: the student ships "
                                              "by default")
    if versus.student_faster:
        return ShipSection("auto", "student", f"the student artifact is {versus.speedup_vs_compiled_teacher:.2f}x "
                                              "faster than the compiled teacher")
    return ShipSection("auto", "teacher", "the student artifact is not faster than the teacher compiled for the "
                                          "same runtime")


def baseline_sections(report: Report, teacher_artifact: TeacherArtifactSection | dict,
                      student_latency: LatencyRecord | dict | None, ship: str = "auto"
                      ) -> tuple[TeacherArtifactSection, VersusSection, ShipSection]:
    """``report``'s ``teacher_artifact``, ``versus_teacher`` and ``ship`` sections (``report`` is not changed).

    ``teacher_artifact``: the compiled teacher's record (``baseline.compile_teacher(...).record``);
    ``student_latency``: the student artifact's latency record (``kind``, ``ms``).
    """
    teacher = TeacherArtifactSection.from_dict(teacher_artifact)
    versus = compare_to_teacher(report, teacher, LatencyRecord.from_dict(student_latency))
    choice = choose_ship(ship, versus, teacher, report.gate.passed)
    choice.artifact = teacher.path if choice.choice == "teacher" else f"{report.target.name}/{report.artifact.path}"
    return teacher, versus, choice


def student_latency(report: Report) -> LatencyRecord:
    """The student artifact's latency record: the run record, else the measured p50 of the report."""
    if report.latency is not None:
        return report.latency
    measured = report.artifact.latency_ms
    if measured:
        return LatencyRecord(kind="measured", ms=measured["p50"],
                             how=f"measured here in {measured.get('runtime', report.artifact.backend)}, batch 1")
    return LatencyRecord(kind="none", note="not run here", how="no latency without the device")


def _lat_cell(ms, kind) -> str:
    if ms is None:
        return "<span class='muted'>none here</span>"
    return f"{explain.ms(ms)} <span class='muted'>({escape(str(kind))})</span>"


def _fits(value) -> str:
    return "—" if value is None else "yes" if value else "no"


def versus_table(matrix) -> str:
    rows, notes = [], []
    for r in matrix.results:
        rep = Report.from_dict(r.report)
        t, v, ship = rep.teacher_artifact, rep.versus_teacher or VersusSection(), rep.ship
        if t is None:
            continue
        s_lat = student_latency(rep)
        cells = (escape(r.target), escape(f"{t.precision or '—'} · {t.status or '—'}"), explain.pct(t.accuracy),
                 _lat_cell(t.latency_p50_ms, t.latency_kind), _lat_cell(s_lat.ms, s_lat.kind),
                 f"<b>{explain.ratio(v.speedup_vs_compiled_teacher)}</b>",
                 explain.ratio(v.speedup_vs_teacher_torch_eager), explain.points(v.accuracy_delta_points),
                 explain.ratio(v.size_ratio), _fits(v.teacher_fits), escape(ship.choice if ship else "—"))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return ""
    for r in matrix.results:
        rep = Report.from_dict(r.report)
        for sentence in (explain.headline(rep), explain.teacher_fits_sentence(rep), explain.ship_sentence(rep)):
            if sentence:
                notes.append(f"<li><b>{escape(r.target)}</b>: {escape(sentence)}</li>")
    return ("<h2>Versus the teacher compiled for the same runtime</h2><p class='muted'>The row to beat: the teacher "
            "itself compiled for each target (same backend, numeric format and calibration) and run like the "
            "student. Speed-up = teacher artifact p50 / student artifact p50 in the same runtime; the torch-eager "
            "ratio is secondary (different runtimes).</p><table><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in HEAD) + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            + (f"<ul>{''.join(notes)}</ul>" if notes else ""))


def search_explanation(report: Report) -> str:
    """Why the search chose its student (or why none fitted), and its finalists."""
    search = report.search
    if search is None:
        return ""
    out = [f"<p>{escape(s)}</p>" for s in explain.search_sentences(search)]
    rows = explain.finalist_rows(search)
    if rows:
        out.append("<table><thead><tr><th>finalist</th><th>score</th><th>predicted latency</th>"
                   "<th>artifact measured here</th><th>params</th><th>origin</th></tr></thead><tbody>" + "".join(
                       "<tr>" + "".join(f"<td>{escape(c)}</td>" for c in row) + "</tr>" for row in rows)
                   + "</tbody></table>")
    return "".join(out)


def plain(value) -> str:
    """A dict or list for people: ``key value, key value``, never Python's repr."""
    if isinstance(value, dict):
        return ", ".join(f"{k} {plain(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        return ", ".join(plain(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)
