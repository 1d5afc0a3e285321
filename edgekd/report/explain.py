"""Sentences for people about the baseline, the ship decision and the search's choice (markdown and HTML share them).

Numbers are rounded here for reading; report.json keeps full precision.
"""

from __future__ import annotations

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


def headline(report: dict) -> str | None:
    """The student artifact vs the teacher compiled for the same runtime, in one sentence."""
    versus, tart = report.get("versus_teacher"), report.get("teacher_artifact")
    if not versus or not tart:
        return None
    speed = versus.get("speedup_vs_compiled_teacher")
    if speed is None:
        why = tart.get("reason") or tart.get("latency_how") or "no latency of both artifacts in the same runtime"
        return f"Speed-up vs the compiled teacher: not known here ({why})."
    basis = "measured" if versus.get("speedup_basis") == "measured" else "predicted"
    how = f"{ratio(speed)} faster than" if speed >= 1 else f"{ratio(1 / speed)} slower than"
    text = (f"Student artifact is {how} the teacher compiled for the same runtime ({basis}), {points(versus.get('accuracy_delta_points'))} points of top-1, "
            f"{_size_words(versus.get('size_ratio'))} on disk.")
    eager = versus.get("speedup_vs_teacher_torch_eager")
    if eager is not None:
        text += f" Secondary: {ratio(eager)} vs the teacher in torch eager (not the same runtime)."
    return text


def _size_words(r) -> str:
    if r is None:
        return "size unknown"
    return f"{ratio(r)} smaller" if r >= 1 else f"{ratio(1 / r)} larger"


def teacher_fits_sentence(report: dict) -> str | None:
    versus = report.get("versus_teacher") or {}
    if not versus.get("teacher_fits"):
        return None
    speed = versus.get("speedup_vs_compiled_teacher")
    if speed is not None and speed < 1:
        return (f"the teacher compiled for this target already fits; a student is {ratio(1 / speed)} slower "
                f"at {points(versus.get('accuracy_delta_points'))} points")
    return TEACHER_FITS.format(speed=ratio(speed) if speed is not None else "an unknown",
                               points=points(versus.get("accuracy_delta_points")))


def ship_sentence(report: dict) -> str | None:
    ship = report.get("ship")
    if not ship:
        return None
    return f"Ships: the {ship['choice']} artifact `{ship['artifact']}` ({ship['reason']})."


def search_sentences(search: dict | None) -> list[str]:
    """Why the search chose its student (or why none fitted), with its finalists."""
    if not search:
        return []
    lim = search.get("constraints") or {}
    bounds = [f"fewer than {lim['teacher_params']:,} parameters (the teacher's)"] if lim.get("teacher_params") else []
    if lim.get("latency_limit_ms") is not None:
        bounds.append(f"predicted latency ≤ {ms(lim['latency_limit_ms'])} (target budget "
                      f"{ms(lim.get('target_budget_ms'))}, compiled teacher {ms(lim.get('teacher_latency_ms'))})")
    elif lim:
        bounds.append(f"no latency bound ({lim.get('teacher_latency_why_none')})")
    out = []
    if search.get("outcome") == "none-fits" and search.get("finalists"):  # found, then refuted by measurement
        out.append(f"Search found no student that beats the teacher: {search.get('why')}. Fell back to the "
                   f"default student `{arch_text(search.get('arch'))}`; the ship rule decides.")
        return out
    if search.get("outcome") == "none-fits":
        out.append(f"Search found no student that beats the teacher ({'; '.join(bounds)}): {search.get('why')}. "
                   f"Fell back to the {search.get('fallback', 'default student').replace('-', ' ')} "
                   f"`{arch_text(search.get('arch'))}`.")
        return out
    out.append(f"Student searched ({search.get('space')}, score {search.get('score_name')}): "
               f"`{arch_text(search.get('arch'))}`, predicted {ms(search.get('predicted_latency_ms'))}; "
               f"{search.get('proposals')} proposals, {search.get('rejected')} rejected, "
               f"{search.get('seconds', 0):.1f} s" + (f"; constraints: {'; '.join(bounds)}." if bounds else "."))
    fin = search.get("finalists") or []
    if fin:
        margin = fin[0]["score"] - fin[1]["score"] if len(fin) > 1 else None
        chosen_by = search.get("chosen_by") or "highest score among the candidates meeting every constraint"
        out.append(f"It won on the {chosen_by}"
                   + (f"; {margin:.3g} above the next finalist's score" if margin is not None else "")
                   + " (the default student family is always among the candidates).")
    return out


def finalist_rows(search: dict | None) -> list[tuple[str, ...]]:
    """(architecture, score, predicted latency, measured artifact latency, parameters, origin) per finalist."""
    return [(arch_text(f["arch"]), f"{f['score']:.4g}", ms(f.get("predicted_latency_ms")),
             ms(f.get("measured_artifact_ms")) if "measured_artifact_ms" in f else "not measured",
             f"{f['params']:,}", "default family" if f.get("phase") == "include" else "evolved")
            for f in (search or {}).get("finalists") or []]
