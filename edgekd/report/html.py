"""``build/report.html``: one self-contained page for a matrix build (inline CSS and SVG, no scripts).

Readable offline: nothing is fetched. Every target appears with its status; a target that was not
run here shows the reason and is never shown as passed.
"""

from __future__ import annotations

import json
from html import escape
from pathlib import Path

from edgekd._io import write_text
from edgekd.report import explain, plots, versus
from edgekd.schema.record import Report, SearchSection
from edgekd.schema.sections import ArtifactSection, Status

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:2rem auto;max-width:1180px;
 padding:0 1rem;color:#1d1d1f}
h1{font-size:1.6rem;margin-bottom:.2rem}h2{margin-top:2.2rem;border-bottom:1px solid #ddd;padding-bottom:.2rem}
table{border-collapse:collapse;width:100%;font-size:13px}th,td{padding:.3rem .5rem;border-bottom:1px solid #eee;
 text-align:right;vertical-align:top}th{background:#f6f6f8}td:first-child,th:first-child{text-align:left}
.badge{display:inline-block;padding:.05rem .45rem;border-radius:.6rem;font-size:12px;font-weight:600;
 white-space:nowrap}.passed{background:#d9f2dd;color:#1b6b2a}.failed,.error{background:#fbdcdc;color:#9b1c1c}
.not-run-here{background:#fff1cc;color:#7a5300}.not-built-here{background:#e8e8ee;color:#444}
.muted{color:#6e6e73}.reason{font-size:12px;color:#6e6e73;text-align:left;min-width:14rem;max-width:26rem;
 overflow-wrap:anywhere}p,li{overflow-wrap:anywhere}figure{margin:1rem 0}
figcaption{font-size:12px;color:#6e6e73}figure svg{max-width:100%;height:auto}code{font-size:12px}
.verdict{font-size:1.1rem;font-weight:600}details{margin:.4rem 0}
"""


def write_html(matrix, path: Path) -> Path:
    """Render ``matrix`` (a :class:`~edgekd.matrix.MatrixResult`) to ``path``; returns the path."""
    return write_text(path, render(matrix))


def render(matrix) -> str:
    manifest = matrix.manifest or {}
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>edgekd build report</title>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'><style>{_CSS}</style></head><body>",
             _header(matrix, manifest), _summary(matrix), versus.versus_table(matrix), _plots(matrix),
             _details(matrix), _provenance(manifest),
             "</body></html>"]
    return "\n".join(parts)


def _fmt_pct(x) -> str:
    return "—" if x is None else f"{x * 100:.2f}%"


def _badge(status: Status | str) -> str:
    status = str(status)
    return f"<span class='badge {status.replace(' ', '-')}'>{escape(status)}</span>"


def _header(matrix, manifest: dict) -> str:
    counts = {s: len(matrix.by_status(s)) for s in Status}
    verdict = "every target built; every target validated here passed its gate" if matrix.ok else \
        "NOT OK: some target failed its gate, failed to build, or could not be built here"
    inputs = manifest.get("inputs", {})
    teacher = inputs.get("teacher", {})
    first = next((Report.from_dict(r.report) for r in matrix.results if r.report), None)
    teacher_acc = _fmt_pct(first.teacher.accuracy) if first else "—"
    return (f"<h1>edgekd build report</h1><p class='muted'>{escape(str(manifest.get('created', '')))} · "
            f"<code>{escape(str(manifest.get('command', '')))}</code></p>"
            f"<p class='verdict'>{escape(verdict)}</p><p>" + " · ".join(
                f"{_badge(s)} {n}" for s, n in counts.items() if n) + "</p>"
            f"<p>Dataset <b>{escape(str(inputs.get('dataset', '—')))}</b> "
            f"({inputs.get('train', {}).get('samples', '—')} train / "
            f"{inputs.get('val', {}).get('samples', '—')} val); "
            f"teacher <b>{escape(str(teacher.get('arch', '—')))}</b> ({escape(str(teacher.get('source', '')))}), "
            f"val top-1 {teacher_acc} in torch. Build time {matrix.seconds:.1f} s.</p>"
            "<p class='muted'>Statuses: <i>passed</i>/<i>failed</i> — the artifact ran here in its own runtime and "
            "met / missed its gate; <i>not run here</i> — the artifact was built but its runtime or device is not "
            "on this machine (never counted as passed); <i>not built here</i> — this machine lacks the backend; "
            "<i>error</i> — building or validating raised.</p>")


def _latency_cell(report: Report | None) -> str:
    lat = report.latency if report is not None else None
    if lat is not None and lat.kind in ("measured", "predicted") and lat.ms is not None:
        return f"{explain.ms(lat.ms)} <span class='muted'>({lat.kind})</span>"
    if report is None:
        return "—"
    return "<span class='muted' title='not measured on the device'>none: not on the device</span>"


def _budget_cell(report: Report | None) -> str:
    if report is None:
        return "—"
    lat = report.latency
    budget = lat.budget_ms if lat is not None and lat.budget_ms is not None else report.artifact.latency_budget_ms
    if budget is None:
        return "—"
    within = lat.within_budget if lat is not None else None
    if within is None:
        return f"{budget} <span class='muted'>(not checked)</span>"
    basis = "predicted" if lat.kind == "predicted" else "measured"
    return f"{budget} <span class='muted'>({'within' if within else 'OVER'}, {basis})</span>"


def _summary(matrix) -> str:
    head = ("target", "backend · device", "precision", "status", "artifact top-1", "fp32 student", "teacher",
            "agree w/ teacher", "latency ms (b1 p50)", "budget ms", "size KiB", "gate / reason")
    rows = []
    for r in matrix.results:
        rep = Report.from_dict(r.report) if r.report else None
        shown = rep or Report()
        art, tgt = shown.artifact, shown.target
        size = f"{art.size_bytes / 1024:.1f}" if art.size_bytes else "—"
        rows.append("<tr>" + "".join(f"<td>{c}</td>" for c in (
            f"<a href='#t-{escape(r.target)}'>{escape(r.target)}</a>",
            escape(f"{tgt.backend or '—'} · {tgt.device or '—'}"),
            escape(str(art.precision or "—")),
            _badge(r.status), _accuracy_cell(art), _fmt_pct(shown.student.accuracy),
            _fmt_pct(shown.teacher.accuracy), _fmt_pct(art.agreement_teacher),
            _latency_cell(rep), _budget_cell(rep), size,
            f"<div class='reason'>{escape(_gate_text(r, shown))}</div>")) + "</tr>")
    return ("<h2>Targets</h2><table><thead><tr>" + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"
            + "".join(rows) + "</tbody></table>")


def _gate_text(r, report: Report) -> str:
    if r.status == Status.PASSED:
        return (f"passed: {report.gate.accuracy_drop_points:.2f} points below the teacher "
                f"(allowed {report.gate.max_accuracy_drop})")
    return r.reason or str(r.status)


def _plot_data(matrix) -> dict:
    points, series, histories, searches = [], {}, {}, {}
    teacher_pc, labels, teacher_acc = [], [], None
    for r in matrix.results:
        if not r.report:
            continue
        rep = Report.from_dict(r.report)
        teacher_acc = rep.teacher.accuracy
        teacher_pc = rep.teacher.per_class_accuracy or teacher_pc
        labels = rep.dataset.classes or labels
        key = (matrix.manifest.get("targets", {}).get(r.target) or {}).get("share_key") or r.target
        lat, art, tart = versus.student_latency(rep), rep.artifact, rep.teacher_artifact
        if tart is not None and tart.accuracy is not None and tart.latency_p50_ms is not None:
            points.append({"name": f"{r.target}: teacher artifact", "accuracy": tart.accuracy, "teacher": True,
                           "latency_ms": tart.latency_p50_ms, "kind": tart.latency_kind})
        if art.accuracy is not None:
            series[f"{r.target} ({art.precision})"] = art.per_class_accuracy or []
            points.append({"name": r.target, "accuracy": art.accuracy, "latency_ms": lat.ms, "kind": lat.kind})
        elif art.reference_check:  # device absent: its int8 graph's accuracy in a reference runtime
            points.append({"name": f"{r.target} (reference run)", "accuracy": art.reference_check["accuracy"],
                           "latency_ms": lat.ms, "kind": lat.kind})
        series.setdefault(f"fp32 student [{key}]", rep.student.per_class_accuracy or [])
        histories.setdefault(key, rep.distillation.history)
        if rep.search is not None:
            log = rep.search.log  # one search per format group, named by the target it ran for
            points_of = search_points(rep.search)
            points_of["teacher_ms"] = (rep.search.constraints or {}).get("teacher_latency_ms")
            searches.setdefault(Path(log).parent.name if log else key, points_of)
    return {"points": points, "series": series, "histories": histories, "searches": searches,
            "teacher_pc": teacher_pc, "labels": labels, "teacher_acc": teacher_acc}


def search_points(summary: SearchSection | dict) -> dict:
    """The search's candidates (from its JSON Lines log) and the chosen student, for the cloud plot."""
    summary = SearchSection.from_dict(summary)
    candidates = list(summary.candidates or [])
    if not candidates and summary.log and Path(summary.log).exists():
        for line in Path(summary.log).read_text().splitlines():
            rec = json.loads(line) if line.strip() else {}
            if rec.get("score") is not None and rec.get("latency_ms") is not None:
                candidates.append({"score": rec["score"], "latency_ms": rec["latency_ms"]})
    chosen = summary.chosen or {"score": summary.score, "predicted_latency_ms": summary.predicted_latency_ms}
    finalists = [{"score": f["score"], "latency_ms": f.get("predicted_latency_ms")} for f in summary.finalists or []]
    kind = summary.latency_kind
    flops = kind == "flops"  # no latency model: the search ranked by MMACs, which a ms budget cannot be drawn on
    budget = (summary.limits or {}).get("budget_ms", summary.budget_ms)
    return {"candidates": candidates, "chosen": chosen, "finalists": finalists,
            "score_name": summary.score_name or "score",
            "budget_ms": None if flops else budget,
            "latency_label": "FLOPs proxy (MMAC, not ms: no latency model)" if flops else
            f"predicted latency (ms{', ' + kind if kind else ''})"}


def _figure(svg: str | None, caption: str, index: int, empty: str) -> str:
    if svg is None:
        return f"<p class='muted'>{escape(empty)}</p>"
    return f"<figure>{plots.scope_ids(svg, f'fig{index}')}<figcaption>{escape(caption)}</figcaption></figure>"


def _plots(matrix) -> str:
    ok, why = plots.available()
    if not ok:
        return f"<h2>Plots</h2><p class='muted'>{escape(why)}</p>"
    d = _plot_data(matrix)
    no_lat = [p["name"] for p in d["points"] if p["latency_ms"] is None]
    out = ["<h2>Accuracy vs latency</h2>", _figure(
        plots.pareto(d["points"], d["teacher_acc"]),
        "Artifact top-1 vs batch-1 latency per target; filled: measured here in the target's runtime, hollow: "
        "predicted. Latencies measured on different machines are not comparable. \"(reference run)\": the device "
        "is absent; its accuracy is the same int8 graph's in a reference runtime here."
        + (f" No latency for: {', '.join(no_lat)} (not measured on the device, no latency model)." if no_lat else ""),
        1, "No target has a measured or predicted latency: nothing to plot.")]
    out += ["<h2>Per-class accuracy vs the teacher</h2>", _figure(
        plots.class_deltas(d["series"], d["teacher_pc"], d["labels"]),
        "Per-class top-1 minus the teacher's, in points, on the validation data: each validated artifact, and "
        "the fp32 student (torch) of each shared distillation.", 2, "No per-class data.")]
    clouds = [_figure(plots.search_cloud(s), f"Student search [{k}]: score vs predicted latency of every scored "
                      "candidate, the finalists ringed, the chosen student starred, the compiled teacher's latency "
                      "dotted.", 3 + i, f"Student search [{k}]: no scored candidates with a latency in its log.")
              for i, (k, s) in enumerate(d["searches"].items())]
    out += ["<h2>Student search</h2>", *(clouds or ["<p class='muted'>No student search was run for this build "
                                                    "(the student was given or the default).</p>"])]
    out += ["<h2>Distillation</h2>", _figure(
        plots.distill_curves(d["histories"]), "Per-epoch training loss terms and fp32 student validation top-1, one "
        "colour per shared distillation (targets with the same numeric format share one).", 99, "No history.")]
    return "\n".join(out)


def _details(matrix) -> str:
    out = ["<h2>Per target</h2>"]
    for r in matrix.results:
        out.append(f"<h3 id='t-{escape(r.target)}'>{escape(r.target)} {_badge(r.status)}</h3>")
        if r.reason:
            out.append(f"<p>{escape(r.reason)}</p>")
        if not r.report:
            continue
        rep = Report.from_dict(r.report)
        art, lat = rep.artifact, versus.student_latency(rep)
        kept = art.details.get("kept_float") or []
        out.append("<ul>" + "".join(f"<li>{x}</li>" for x in (
            f"Artifact <code>{escape(art.path)}</code>, {escape(art.precision)}, {art.size_bytes / 1024:.1f} "
            f"KiB; numeric format <code>{escape(_fmt_format(rep.target.format))}</code>.",
            f"Latency: {escape(_latency_text(lat))}.",
            "Kept in float: " + (escape(", ".join(f"{k.get('layer')} ({k.get('reason')})" for k in kept)) or "none")
            + ".",
            f"Agreement with the fp32 student: {_fmt_pct(art.agreement_student)}; mean KL to the teacher "
            f"{art.kl_teacher:.4f}." if art.kl_teacher is not None else _reference_text(art),
            f"Calibration: {escape(versus.plain(art.details.get('calibration') or 'none'))}.",
        )) + "</ul>")
        ops = art.details.get("runtime_ops") or art.details.get("exported_ops")
        if ops:
            out.append(f"<details><summary>Operators</summary><code>{escape(versus.plain(ops))}</code></details>")
        out.append(versus.search_explanation(rep))
    return "\n".join(out)


def _accuracy_cell(art: ArtifactSection) -> str:
    """The artifact's top-1; where its device is absent, the reference run's, marked as such."""
    check = art.reference_check if art.accuracy is None else None
    if not check:
        return _fmt_pct(art.accuracy)
    return (f"{_fmt_pct(check['accuracy'])}<br><span class='muted' title='{escape(check['runtime'])}'>"
            "reference run, not the device</span>")


def _reference_text(art: ArtifactSection) -> str:
    check = art.reference_check
    if not check:
        return "Artifact not run here: no accuracy."
    gate = check.get("within_accuracy_gate")
    verdict = "" if gate is None else (" — within the accuracy gate" if gate else " — outside the accuracy gate")
    return escape(f"Artifact not run here. Reference check, not the device: {check['runtime']}: top-1 "
                  f"{check['accuracy'] * 100:.2f}% ({check['accuracy_drop_points']:.2f} points below the teacher"
                  f"{verdict}), agreement with the teacher {check['agreement_teacher'] * 100:.2f}%, with the fp32 "
                  f"student {_fmt_pct(check.get('agreement_student'))}.")


def _fmt_format(fmt: dict) -> str:
    return (f"w{fmt['weights']}/a{fmt['activations']}, {fmt['weight_granularity']}, "
            f"{'symmetric' if fmt['activation_symmetric'] else 'asymmetric'} activations")


def _latency_text(lat) -> str:
    if lat.kind == "measured":
        return f"{explain.ms(lat.ms)} p50 ({lat.how})"
    if lat.kind == "predicted":
        return f"{explain.ms(lat.ms)} predicted ({lat.how}); {lat.note or ''}"
    return f"none — {lat.note or 'not measured'} ({lat.how or ''})"


def _provenance(manifest: dict) -> str:
    if not manifest:
        return ""
    git = manifest.get("git", {})
    tools = ", ".join(f"{k} {v}" for k, v in manifest.get("tools", {}).items() if v)
    env = manifest.get("environment", {})
    rows = "".join(f"<tr><td>{escape(name)}</td><td><code>{escape(f)}</code></td><td><code>{info['sha256'][:16]}…"
                   f"</code></td><td>{info['bytes']}</td></tr>"
                   for name, t in manifest.get("targets", {}).items() for f, info in (t.get("files") or {}).items())
    dirty = " (uncommitted changes)" if git.get("dirty") else ""
    rebuild = "".join(f"<li>{escape(name)}: {escape(_rebuild_text(t['reproducible']))}</li>"
                      for name, t in manifest.get("targets", {}).items() if t.get("reproducible"))
    return (f"<h2>Provenance</h2><p>git {escape(str(git.get('revision')))}{dirty}"
            f"; seeds {escape(versus.plain(manifest.get('seeds')))}; {escape(str(env.get('cpu')))} ({env.get('cpus')} CPUs), "
            f"Python {escape(str(env.get('python')))}.</p><p class='muted'>{escape(tools)}</p>"
            "<details><summary>Artifact files (sha256; full hashes in manifest.json)</summary><table><thead><tr>"
            "<th>target</th><th>file</th><th>sha256</th><th>bytes</th></tr></thead><tbody>" + rows
            + "</tbody></table></details>"
            + (f"<p>Same seed, inputs, tool versions and machine, built again:</p><ul>{rebuild}</ul>" if rebuild else ""))


def _rebuild_text(rep: dict) -> str:
    if rep.get("bit_identical") is True:
        return "bit-identical artifact files" + (f" ({rep['how']})" if rep.get("how") else "")
    if rep.get("bit_identical") is False:
        return f"not bit-identical: {rep.get('why', '')}"
    return f"unknown: {rep.get('why', '')}"
