"""What this machine can do for a target (build, run, time it as the device would) and how a
target's latency is labelled in its report: measured here, predicted by its latency model, or none."""

from __future__ import annotations

import platform
import re
from dataclasses import dataclass

from edgekd.backends.base import BACKENDS, backend_entry, get_backend
from edgekd.hw.model import report_prediction
from edgekd.schema.record import LatencyRecord, Report
from edgekd.schema.sections import Prediction, within_budget
from edgekd.targets import Target


@dataclass(frozen=True)
class Capability:
    """What this machine can do for a target: build its artifact, run it, time it as the device would."""

    target: str
    backend: str
    build: bool
    build_reason: str
    run: bool
    run_reason: str
    latency_here: bool
    latency_reason: str


def capability(target: Target) -> Capability:
    """Whether ``target`` can be built, validated and timed on this machine, with the reason when not."""
    name = target.backend
    if name not in BACKENDS:
        why = f"backend {name!r} not available (no edgekd backend module registered for it)"
        return Capability(target.name, name, False, why, False, why, False, why)
    try:
        backend = get_backend(name)
    except ImportError as exc:
        why = f"backend {name!r} not available ({exc}); pip install 'edgekd[{backend_entry(name).extra}]'"
        return Capability(target.name, name, False, why, False, why, False, why)
    can_build, build_reason = backend.can_compile()
    run, run_reason = backend.is_available_for(target)  # per target: a backend may run on a CPU here, not an NPU
    host = platform.machine()
    if run and target.arch and target.arch not in (host, _ALIASES.get(host)):
        return Capability(target.name, name, can_build, build_reason, True, "", False,
                          f"not measured on the device (it is {target.arch}, this machine is {host}; the same "
                          f"{name} artifact runs here, so accuracy is validated here)")
    if run and target.latency.model != "measured":
        return Capability(target.name, name, can_build, build_reason, True, "", False,
                          f"not measured on the device (the {name} runtime runs here, but this machine is not the "
                          f"device: the target's latency model is {target.latency.model!r})")
    latency_reason = "" if run else f"not measured on the device: {_PREFIX.sub('', run_reason)}"
    return Capability(target.name, name, can_build, build_reason, run, run_reason, run, latency_reason)


_ALIASES = {"x86_64": "amd64", "AMD64": "x86_64", "arm64": "aarch64", "aarch64": "arm64"}


def latency_record(report: Report | dict, cap: Capability, target: Target) -> dict:
    """:func:`latency_section` as report.json's ``run.latency`` dict."""
    return latency_section(report, cap, target).to_dict()


def latency_section(report: Report | dict, cap: Capability, target: Target) -> LatencyRecord:
    """Latency with its kind (measured here on the device, predicted, or none) and whether it fits the budget.

    Reads ``report`` (its measured latency, its prediction, the compiler's estimate); changes nothing.
    """
    record = _latency(Report.from_dict(report), cap, target)
    budget = target.latency.budget_ms
    record["budget_ms"] = budget
    # judged on a measurement or a prediction (record["kind"] says which); None: no figure to judge
    record["within_budget"] = within_budget(record.get("ms"), budget)
    return LatencyRecord.from_dict(record)


def _latency(report: Report, cap: Capability, target: Target) -> dict:
    art = report.artifact
    measured = art.latency_ms if cap.latency_here else None
    pred = prediction(report, target)
    model = pred.latency_model or {}
    if measured:
        return {"kind": "measured", "ms": measured["p50"], "p90_ms": measured["p90"],
                "how": f"measured here in {measured['runtime']}, batch 1",
                "predicted_ms": pred.latency_predicted_ms, "model": model}
    compiler = art.details.get("predicted_latency_ms") or {}
    if compiler.get("ms") is not None and compiler["ms"] == compiler["ms"]:  # the compiler's estimate of this artifact
        return {"kind": "predicted", "ms": float(compiler["ms"]), "note": cap.latency_reason,
                "how": f"predicted: {compiler.get('source', 'compiler estimate')} of this artifact",
                "predicted_ms": pred.latency_predicted_ms, "model": model}
    if pred.latency_predicted_ms is not None:
        return {"kind": "predicted", "ms": float(pred.latency_predicted_ms), "note": cap.latency_reason,
                "how": f"predicted by the {model.get('kind')} latency model of {target.name}", "model": model}
    why = model.get("reason") or "; ".join(model.get("warnings") or []) or f"no latency model for {target.name}"
    return {"kind": "none", "ms": None, "note": cap.latency_reason or "not measured", "how": why, "model": model,
            **({"flops_proxy_mmac": pred.flops_proxy_mmac} if pred.flops_proxy_mmac is not None else {})}


def prediction(report: Report, target: Target) -> Prediction:
    """The report's prediction of the student's latency; computed (not stored) when the report has none."""
    if report.artifact.prediction is not None:
        return report.artifact.prediction
    return Prediction.from_dict(report_prediction(report, target))


_PREFIX = re.compile(r"^\s*(?:[\w.-]+(?: \w+)?: )?not (?:run|built) here:\s*", re.IGNORECASE)
_PATH = re.compile(r"\"?(?:/[^\s\"'/:;,()]+){2,}/?\"?")
_CUT = re.compile(r"\s*(?:Error: |Exception from |Traceback \(|\bat /)")


def short_reason(text: str | None, limit: int = 100) -> str:
    """One short line for a people-facing "why not": no "not run here:" prefix (the status says
    it), no file paths (their base name instead), no exception dump after "Error:", at most
    ``limit`` characters ending on a clause. Keep the full text beside it (``details``)."""
    text = " ".join((text or "").split())
    while _PREFIX.match(text):
        text = _PREFIX.sub("", text, count=1)
    text = _PATH.sub(lambda m: m.group(0).strip('"/').rsplit("/", 1)[-1], text)
    text = _CUT.split(text, maxsplit=1)[0].rstrip(" :;,")
    if len(text) <= limit:
        return text
    head = text[:limit]
    for stop in (". ", "; ", " (", ", ", " "):
        cut = head.rfind(stop)
        if cut >= limit // 2 or stop == " ":
            head = head[:cut]
            break
    head = head.rstrip(" ,;(") + "…"
    return head + ")" * (head.count("(") - head.count(")"))  # close what the cut left open
