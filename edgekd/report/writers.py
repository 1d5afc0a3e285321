"""report.json (the record) and report.md (the same, for people) of one build, both from the typed :class:`Report`."""

from __future__ import annotations

from pathlib import Path

from edgekd._io import write_json, write_text
from edgekd.report import explain
from edgekd.report.builder import assemble, dataset_section, target_section, validation_pieces
from edgekd.schema.record import REPORT_SCHEMA, Report, TeacherArtifactSection
from edgekd.schema.sections import TEACHER_RUN, GateSection, Status

__all__ = ["REPORT_SCHEMA", "build_report", "markdown", "target_and_dataset", "write_reports"]


def build_report(*, target, artifact, validation, gate, data, teacher_info, student, loss, config, history,
                 resumed_from, seconds, search: dict | None = None) -> dict:
    """report.json of a validated artifact (or of one ``validate`` found it could not run): :func:`assemble`'s."""
    return assemble(target=target, data=data, teacher_info=teacher_info, student=student, artifact=artifact,
                    gate=gate, loss=loss, config=config, history=history, resumed_from_epoch=resumed_from,
                    seconds=seconds, search=search, **validation_pieces(validation)).to_dict()


def target_and_dataset(target, data) -> dict:
    """The ``target`` and ``dataset`` sections every report starts with."""
    return {"target": target_section(target).to_dict(), "dataset": dataset_section(data).to_dict()}


def _pct(x) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _ms(lat: dict | None) -> str:
    return "—" if not lat else f"{lat['p50']:.3f} / {lat['p90']:.3f}"


def _budget_word(within: bool | None) -> str:
    return "not measured on the device" if within is None else "within" if within else "EXCEEDED"


def _gate_line(g: GateSection) -> str:
    if g.status == Status.NOT_RUN:
        return "**Gate: NOT RUN HERE** — the artifact was built but not run on its device (never counted as passed)."
    return (f"**Gate: {'PASSED' if g.passed else 'FAILED'}** — accuracy drop {g.accuracy_drop_points:.2f} "
            f"points vs the teacher (allowed {g.max_accuracy_drop:.2f}).")


def markdown(report: Report | dict) -> str:
    rep = Report.from_dict(report)
    t, s, a, g, d = rep.teacher, rep.student, rep.artifact, rep.gate, rep.dataset
    lines = [
        f"# edgekd build: {rep.target.name}",
        "",
        f"Backend **{rep.target.backend}** on **{rep.target.device}**, "
        f"artifact `{a.path}` ({a.precision}, {a.size_bytes / 1024:.1f} KiB). "
        f"Dataset `{d.name}`: {d.train} train / {d.val} val samples.",
        "",
        _gate_line(g),
        *[f"- {reason}" for reason in g.reasons],
        "",
        "| model | runtime | top-1 | agreement w/ teacher | latency b1 p50 / p90 (ms) |",
        "|---|---|---|---|---|",
        f"| teacher `{t.arch}` | torch eager | {_pct(t.accuracy)} | — | {_ms(t.latency_ms)} |",
        f"| student fp32 | torch eager | {_pct(s.accuracy)} | {_pct(s.agreement_teacher)} | {_ms(s.latency_ms)} |",
        f"| artifact {a.precision} | {a.backend} | {_pct(a.accuracy)} | {_pct(a.agreement_teacher)} | "
        f"{_ms(a.latency_ms)} |",
        *_teacher_artifact_row(rep.teacher_artifact),
        "",
        *[f"- **{x}**" for x in (explain.headline(rep), explain.teacher_fits_sentence(rep),
                                 explain.ship_sentence(rep)) if x],
    ]
    if a.kl_teacher is not None:
        lines.append(f"- Artifact agreement with the fp32 student: {_pct(a.agreement_student)}; "
                     f"mean KL to the teacher {a.kl_teacher:.4f} nats; logit cosine {a.cosine_teacher:.4f}.")
    lines += reference_lines(a.reference_check)
    if a.latency_ms and t.latency_ms:
        lat_a, lat_t = a.latency_ms, t.latency_ms
        lines.append(f"- Secondary: artifact p50 vs the teacher in torch eager (not the same runtime): "
                     f"{lat_t['p50'] / lat_a['p50']:.1f}× ({lat_a['threads']} thread(s), batch 1, {lat_a['runs']} "
                     "timed runs each, same run).")
    lines += _prediction_lines(a)
    kept = a.details.get("kept_float", [])
    lines.append(f"- Layers kept in float: {', '.join(k['layer'] + ' (' + k['reason'] + ')' for k in kept) or 'none'}.")
    hist = rep.distillation.history
    if hist:
        lines += ["", f"Distillation: {rep.distillation.loss['name']}, {len(hist)} epochs, final val "
                      f"accuracy {_pct(hist[-1].get('val_accuracy'))}."]
    lines += _search_lines(rep)
    env = rep.environment
    lines += ["", f"Measured on {env['cpu']} ({env['cpus']} CPUs), Python {env['python']}, "
                  + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + "."]
    return "\n".join(lines) + "\n"


def reference_lines(check: dict | None) -> list[str]:
    """The reference check (the same graph in a reference runtime, where the device is absent), for people."""
    if not check:
        return []
    within = check.get("within_accuracy_gate")
    return [f"- Reference check, not the device ({check['runtime']}): top-1 {_pct(check['accuracy'])}, "
            f"{check['accuracy_drop_points']:.2f} points below the teacher"
            + ("" if within is None else " (within the accuracy gate)" if within else " (outside the accuracy gate)")
            + f"; agreement with the teacher {_pct(check['agreement_teacher'])}, with the fp32 student "
            f"{_pct(check.get('agreement_student'))}."]


def _prediction_lines(a) -> list[str]:
    lines = []
    p = a.prediction
    if p is not None and p.latency_predicted_ms is not None:
        err = p.latency_model.get("error_vs_measured_pct")
        lines.append(f"- Predicted latency ({p.latency_model['kind']} model): {p.latency_predicted_ms:.3f} ms"
                     + ("" if err is None else f", {err:+.1f}% vs the measured p50")
                     + (" (input size outside the fitted ones: extrapolated)" if p.latency_model.get("extrapolated")
                        else "") + ".")
    if a.latency_budget_ms is not None:
        lines.append(f"- Latency budget {a.latency_budget_ms} ms: {_budget_word(a.within_budget)}.")
    return lines


def _search_lines(rep: Report) -> list[str]:
    srch = rep.search
    if srch is None or not srch.to_dict():
        return []
    lines = ["", *explain.search_sentences(srch)]
    rows = explain.finalist_rows(srch)
    if rows:
        lines += ["", "| finalist | score | predicted latency | artifact measured here | params | origin |",
                  "|---|---|---|---|---|---|", *[f"| `{r[0]}` | " + " | ".join(r[1:]) + " |" for r in rows]]
    if srch.log:
        lines += ["", f"Search log `{srch.log}`, plot `{srch.plot}`."]
    return lines


def _teacher_artifact_row(t: TeacherArtifactSection | None) -> list[str]:
    """The row to beat: the teacher compiled for the same target and run in its runtime."""
    if t is None or not t.to_dict():
        return []
    if t.status != TEACHER_RUN:
        lat = explain.ms(t.latency_p50_ms) + (f" ({t.latency_kind})" if t.latency_p50_ms else "")
        return [f"| teacher artifact {t.precision or ''} | {t.backend} | {t.status}: "
                f"{t.reason or ''} | — | {lat} |"]
    timed = (t.speed_gate or {}).get("p50_ms") or {}
    faster = (f"; the faster of its builds here: int8 {explain.ms(timed['int8'])}, fp32 {explain.ms(timed['fp32'])}"
              if {"int8", "fp32"} <= set(timed) else "")
    return [f"| **teacher artifact {t.precision}** (row to beat{faster}) | {t.backend} | {_pct(t.accuracy)} | "
            f"{_pct(t.agreement_teacher)} | {_ms(t.latency_ms) if t.latency_ms else explain.ms(t.latency_p50_ms)} |"]


def write_reports(report: Report | dict, folder: Path) -> None:
    rep = Report.from_dict(report)
    write_json(Path(folder) / "report.json", rep.to_dict())
    write_text(Path(folder) / "report.md", markdown(rep))
