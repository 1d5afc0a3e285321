"""Sentences for people about the baseline, the ship decision and the search's choice (markdown and HTML share them).

Numbers are rounded here for reading; report.json keeps full precision.
"""

from __future__ import annotations

from edgekd.schema.record import Report, SearchSection

TEACHER_FITS = ("the teacher compiled for this target already fits; a student buys {speed} more speed at "
                "{points} points")


def ms(x) -> str:
    """Milliseconds for people: three significant digits, "—" when there is none."""
    if x is None:
        return "—"
    return f"{x:.3g} ms" if x >= 0.01 else f"{x * 1000:.3g} µs"


def pct(x) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def ratio(x) -> str:
    return "—" if x is None else f"{x:.2f}×" if x < 10 else f"{x:.1f}×"


def kib(n) -> str:
    return "—" if not n else f"{n / 1024:.1f} KiB"


def points(x) -> str:
    return "—" if x is None else f"{x:+.2f}"


def arch_text(arch) -> str:
    """``resnet depths 1-1-1 widths 16-32-64 relu``, never a Python dict."""
    if not isinstance(arch, dict):
        return str(arch)
    parts = [str(arch.get("name", "?"))]
    for key, value in arch.items():
        if key == "name":
            continue
        parts.append(f"{key} {'-'.join(str(v) for v in value)}" if isinstance(value, (list, tuple))
                     else f"{key} {value}" if key != "act" else str(value))
    return " ".join(parts)


def headline(report: Report) -> str | None:
    """The student artifact vs the teacher compiled for the same runtime, in one sentence."""
    versus, tart = report.versus_teacher, report.teacher_artifact
    if versus is None or tart is None:
        return None
    speed = versus.speedup_vs_compiled_teacher
    if speed is None:
        why = tart.reason or tart.latency_how or "no latency of both artifacts in the same runtime"
        return f"Speed-up vs the compiled teacher: not known here ({why})."
    basis = "measured" if versus.speedup_basis == "measured" else "predicted"
    how = f"{ratio(speed)} faster than" if speed >= 1 else f"{ratio(1 / speed)} slower than"
    text = (f"Student artifact is {how} the teacher compiled for the same runtime ({basis}), "
            f"{points(versus.accuracy_delta_points)} points of top-1, {_size_words(versus.size_ratio)} on disk.")
    if versus.speedup_vs_teacher_torch_eager is not None:
        text += (f" Secondary: {ratio(versus.speedup_vs_teacher_torch_eager)} vs the teacher in torch eager "
                 "(not the same runtime).")
    return text


def _size_words(r) -> str:
    if r is None:
        return "size unknown"
    return f"{ratio(r)} smaller" if r >= 1 else f"{ratio(1 / r)} larger"


def teacher_fits_sentence(report: Report) -> str | None:
    versus = report.versus_teacher
    if versus is None or not versus.teacher_fits:
        return None
    speed = versus.speedup_vs_compiled_teacher
    if speed is not None and speed < 1:
        return (f"the teacher compiled for this target already fits; a student is {ratio(1 / speed)} slower "
                f"at {points(versus.accuracy_delta_points)} points")
    return TEACHER_FITS.format(speed=ratio(speed) if speed is not None else "an unknown",
                               points=points(versus.accuracy_delta_points))


def ship_sentence(report: Report) -> str | None:
    ship = report.ship
    if ship is None:
        return None
    return f"Ships: the {ship.choice} artifact `{ship.artifact}` ({ship.reason})."


def search_sentences(search: SearchSection | None) -> list[str]:
    """Why the search chose its student (or why none fitted), with its finalists."""
    if search is None:
        return []
    lim = search.constraints or {}
    bounds = [f"fewer than {lim['teacher_params']:,} parameters (the teacher's)"] if lim.get("teacher_params") else []
    if lim.get("latency_limit_ms") is not None:
        bounds.append(f"predicted latency ≤ {ms(lim['latency_limit_ms'])} (target budget "
                      f"{ms(lim.get('target_budget_ms'))}, compiled teacher {ms(lim.get('teacher_latency_ms'))})")
    elif lim:
        bounds.append(f"no latency bound ({lim.get('teacher_latency_why_none')})")
    if search.outcome == "none-fits" and search.finalists:  # found, then refuted by measurement
        return [f"Search found no student that beats the teacher: {search.why}. Fell back to the "
                f"default student `{arch_text(search.arch)}`; the ship rule decides."]
    if search.outcome == "none-fits":
        return [f"Search found no student that beats the teacher ({'; '.join(bounds)}): {search.why}. "
                f"Fell back to the {(search.fallback or 'default student').replace('-', ' ')} "
                f"`{arch_text(search.arch)}`."]
    out = [f"Student searched ({search.space}, score {search.score_name}): "
           f"`{arch_text(search.arch)}`, predicted {ms(search.predicted_latency_ms)}; "
           f"{search.proposals} proposals, {search.rejected} rejected, "
           f"{search.seconds or 0:.1f} s" + (f"; constraints: {'; '.join(bounds)}." if bounds else ".")]
    fin = search.finalists or []
    if fin:
        margin = fin[0]["score"] - fin[1]["score"] if len(fin) > 1 else None
        chosen_by = search.chosen_by or "highest score among the candidates meeting every constraint"
        out.append(f"It won on the {chosen_by}"
                   + (f"; {margin:.3g} above the next finalist's score" if margin is not None else "")
                   + " (the default student family is always among the candidates).")
    return out


def finalist_rows(search: SearchSection | None) -> list[tuple[str, ...]]:
    """(architecture, score, predicted latency, measured artifact latency, parameters, origin) per finalist."""
    return [(arch_text(f["arch"]), f"{f['score']:.4g}", ms(f.get("predicted_latency_ms")),
             ms(f.get("measured_artifact_ms")) if "measured_artifact_ms" in f else "not measured",
             f"{f['params']:,}", "default family" if f.get("phase") == "include" else "evolved")
            for f in (search.finalists if search is not None else None) or []]
