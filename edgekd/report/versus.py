"""report.html's "versus the compiled teacher" section: the row to beat per target, the ship decision and why
the search chose its student. Rounded for people; report.json keeps full precision."""

from __future__ import annotations

from html import escape

from edgekd.report import explain

HEAD = ("target", "teacher artifact", "teacher top-1", "teacher latency", "student latency",
        "speed-up vs compiled teacher", "speed-up vs torch eager (secondary)", "Δ top-1 (points)", "size ratio",
        "teacher already fits", "ships")


def student_latency(report: dict) -> dict:
    """The student artifact's latency record: the matrix's run record, else the measured p50 of the report."""
    lat = (report.get("run") or {}).get("latency")
    if lat:
        return lat
    art = report.get("artifact") or {}
    measured = art.get("latency_ms")
    if measured:
        return {"kind": "measured", "ms": measured["p50"],
                "how": f"measured here in {measured.get('runtime', art.get('backend'))}, batch 1"}
    return {"kind": "none", "ms": None, "note": "not run here", "how": "no latency without the device"}


def _lat_cell(ms, kind) -> str:
    if ms is None:
        return "<span class='muted'>none here</span>"
    return f"{explain.ms(ms)} <span class='muted'>({escape(str(kind))})</span>"


def _fits(value) -> str:
    return "—" if value is None else "yes" if value else "no"


def versus_table(matrix) -> str:
    rows = []
    for r in matrix.results:
        rep = r.report or {}
        t, v, ship = rep.get("teacher_artifact"), rep.get("versus_teacher") or {}, rep.get("ship") or {}
        if not t:
            continue
        s_lat = student_latency(rep)
        status = t.get("status", "—")
        cells = (escape(r.target), escape(f"{t.get('precision') or '—'} · {status}"), explain.pct(t.get("accuracy")),
                 _lat_cell(t.get("latency_p50_ms"), t.get("latency_kind")), _lat_cell(s_lat.get("ms"), s_lat.get("kind")),
                 f"<b>{explain.ratio(v.get('speedup_vs_compiled_teacher'))}</b>",
                 explain.ratio(v.get("speedup_vs_teacher_torch_eager")), explain.points(v.get("accuracy_delta_points")),
                 explain.ratio(v.get("size_ratio")), _fits(v.get("teacher_fits")), escape(ship.get("choice", "—")))
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    if not rows:
        return ""
    notes = []
    for r in matrix.results:
        rep = r.report or {}
        for sentence in (explain.headline(rep), explain.teacher_fits_sentence(rep), explain.ship_sentence(rep)):
            if sentence:
                notes.append(f"<li><b>{escape(r.target)}</b>: {escape(sentence)}</li>")
    return ("<h2>Versus the teacher compiled for the same runtime</h2><p class='muted'>The row to beat: the teacher "
            "itself compiled for each target (same backend, numeric format and calibration) and run like the "
            "student. Speed-up = teacher artifact p50 / student artifact p50 in the same runtime; the torch-eager "
            "ratio is secondary (different runtimes).</p><table><thead><tr>"
            + "".join(f"<th>{h}</th>" for h in HEAD) + "</tr></thead><tbody>" + "".join(rows) + "</tbody></table>"
            + (f"<ul>{''.join(notes)}</ul>" if notes else ""))


def search_explanation(report: dict) -> str:
    """Why the search chose its student (or why none fitted), and its finalists."""
    search = report.get("search")
    if not search:
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
