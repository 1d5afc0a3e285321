"""report.json (the record) and report.md (the same, for people) of one build."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

from edgekd._io import write_json, write_text
from edgekd.report import explain
from edgekd.report.environment import environment

REPORT_SCHEMA = "edgekd.report/1"


def build_report(*, target, artifact, validation, gate, data, teacher_info, student, loss, config, history,
                 resumed_from, seconds, search: dict | None = None) -> dict:
    art = validation["artifact"]
    budget = target.latency.budget_ms
    latency = art.get("latency_ms", {})
    return {
        "schema": REPORT_SCHEMA,
        **target_and_dataset(target, data),
        "teacher": {**teacher_info, **validation["teacher"]},
        "student": {"arch": student.edgekd_arch, "params": sum(p.numel() for p in student.parameters()),
                    **validation["student"]},
        "artifact": {**art, "path": Path(artifact.path).name, "files": artifact.files, "sha256": artifact.sha256,
                     "static_batch": artifact.static_batch, "details": artifact.details,
                     "latency_budget_ms": budget,
                     "within_budget": None if budget is None or not latency else latency["p50"] <= budget},
        "distillation": {"loss": {"name": type(loss).__name__, **loss.config()}, "config": asdict(config),
                         "history": history, "resumed_from_epoch": resumed_from,
                         "qat": getattr(student, "edgekd_qat", None)},  # format, layers, who taught QAT
        "gate": gate,
        "seconds": seconds,
        "environment": environment(),
        "search": search,  # None: the student was given (or search=False)
    }


def target_and_dataset(target, data) -> dict:
    """The ``target`` and ``dataset`` sections every report starts with."""
    return {
        "target": {"name": target.name, "backend": target.backend, "device": target.device,
                   "format": target.format.model_dump(), "source": target.source_path},
        "dataset": {"name": data.name, "train": len(data.train), "val": len(data.val),
                    "input_shape": list(data.train.input_shape), "classes": list(data.spec.labels)},
    }


def _pct(x) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _ms(lat: dict | None) -> str:
    return "—" if not lat else f"{lat['p50']:.3f} / {lat['p90']:.3f}"


def _budget_word(within: bool | None) -> str:
    return "not measured on the device" if within is None else "within" if within else "EXCEEDED"


def _gate_line(g: dict) -> str:
    if g.get("status") == "not run here":
        return "**Gate: NOT RUN HERE** — the artifact was built but not run on its device (never counted as passed)."
    return (f"**Gate: {'PASSED' if g['passed'] else 'FAILED'}** — accuracy drop {g['accuracy_drop_points']:.2f} "
            f"points vs the teacher (allowed {g['max_accuracy_drop']:.2f}).")


def markdown(report: dict) -> str:
    t, s, a, g = report["teacher"], report["student"], report["artifact"], report["gate"]
    lines = [
        f"# edgekd build: {report['target']['name']}",
        "",
        f"Backend **{report['target']['backend']}** on **{report['target']['device']}**, "
        f"artifact `{a['path']}` ({a['precision']}, {a['size_bytes'] / 1024:.1f} KiB). "
        f"Dataset `{report['dataset']['name']}`: {report['dataset']['train']} train / "
        f"{report['dataset']['val']} val samples.",
        "",
        _gate_line(g),
        *[f"- {reason}" for reason in g["reasons"]],
        "",
        "| model | runtime | top-1 | agreement w/ teacher | latency b1 p50 / p90 (ms) |",
        "|---|---|---|---|---|",
        f"| teacher `{t['arch']}` | torch eager | {_pct(t['accuracy'])} | — | {_ms(t.get('latency_ms'))} |",
        f"| student fp32 | torch eager | {_pct(s['accuracy'])} | {_pct(s['agreement_teacher'])} | "
        f"{_ms(s.get('latency_ms'))} |",
        f"| artifact {a['precision']} | {a['backend']} | {_pct(a['accuracy'])} | {_pct(a['agreement_teacher'])} | "
        f"{_ms(a.get('latency_ms'))} |",
        *_teacher_artifact_row(report.get("teacher_artifact")),
        "",
        *[f"- **{x}**" for x in (explain.headline(report), explain.teacher_fits_sentence(report),
                                 explain.ship_sentence(report)) if x],
    ]
    if a.get("kl_teacher") is not None:
        lines.append(f"- Artifact agreement with the fp32 student: {_pct(a.get('agreement_student'))}; "
                     f"mean KL to the teacher {a['kl_teacher']:.4f} nats; logit cosine {a['cosine_teacher']:.4f}.")
    check = a.get("reference_check")
    if check:
        lines.append(f"- Reference check, not the device ({check['runtime']}): top-1 {_pct(check['accuracy'])}, "
                     f"{check['accuracy_drop_points']:.2f} points below the teacher"
                     + ("" if check.get("within_accuracy_gate") is None else
                        " (within the accuracy gate)" if check["within_accuracy_gate"] else
                        " (outside the accuracy gate)")
                     + f"; agreement with the teacher {_pct(check['agreement_teacher'])}, with the fp32 student "
                     f"{_pct(check.get('agreement_student'))}.")
    lat_a, lat_t = a.get("latency_ms"), t.get("latency_ms")
    if lat_a and lat_t:
        lines.append(f"- Secondary: artifact p50 vs the teacher in torch eager (not the same runtime): "
                     f"{lat_t['p50'] / lat_a['p50']:.1f}× ({lat_a['threads']} thread(s), batch 1, {lat_a['runs']} "
                     "timed runs each, same run).")
    if a.get("latency_predicted_ms") is not None:
        err = a["latency_model"].get("error_vs_measured_pct")
        lines.append(f"- Predicted latency ({a['latency_model']['kind']} model): {a['latency_predicted_ms']:.3f} ms"
                     + ("" if err is None else f", {err:+.1f}% vs the measured p50")
                     + (" (input size outside the fitted ones: extrapolated)" if a["latency_model"].get("extrapolated")
                        else "") + ".")
    if a.get("latency_budget_ms") is not None:
        lines.append(f"- Latency budget {a['latency_budget_ms']} ms: "
                     f"{_budget_word(a['within_budget'])}.")
    kept = a["details"].get("kept_float", [])
    lines.append(f"- Layers kept in float: {', '.join(k['layer'] + ' (' + k['reason'] + ')' for k in kept) or 'none'}.")
    hist = report["distillation"]["history"]
    if hist:
        lines += ["", f"Distillation: {report['distillation']['loss']['name']}, {len(hist)} epochs, final val "
                      f"accuracy {_pct(hist[-1].get('val_accuracy'))}."]
    srch = report.get("search")
    if srch:
        lines += ["", *explain.search_sentences(srch)]
        rows = explain.finalist_rows(srch)
        if rows:
            lines += ["", "| finalist | score | predicted latency | artifact measured here | params | origin |",
                      "|---|---|---|---|---|---|", *[f"| `{r[0]}` | " + " | ".join(r[1:]) + " |" for r in rows]]
        if srch.get("log"):
            lines += ["", f"Search log `{srch['log']}`, plot `{srch.get('plot')}`."]
    env = report["environment"]
    lines += ["", f"Measured on {env['cpu']} ({env['cpus']} CPUs), Python {env['python']}, "
                  + ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v) + "."]
    return "\n".join(lines) + "\n"


def _teacher_artifact_row(t: dict | None) -> list[str]:
    """The row to beat: the teacher compiled for the same target and run in its runtime."""
    if not t:
        return []
    if t.get("status") != "run here":
        lat = explain.ms(t.get("latency_p50_ms")) + (f" ({t['latency_kind']})" if t.get("latency_p50_ms") else "")
        return [f"| teacher artifact {t.get('precision', '')} | {t.get('backend')} | {t['status']}: "
                f"{t.get('reason', '')} | — | {lat} |"]
    lat = t.get("latency_ms")
    return [f"| **teacher artifact {t['precision']}** (row to beat) | {t['backend']} | {_pct(t['accuracy'])} | "
            f"{_pct(t.get('agreement_teacher'))} | {_ms(lat) if lat else explain.ms(t.get('latency_p50_ms'))} |"]


def write_reports(report: dict, folder: Path) -> None:
    write_json(Path(folder) / "report.json", report)
    write_text(Path(folder) / "report.md", markdown(report))
