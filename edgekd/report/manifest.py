"""``build/manifest.json``: what produced each artifact (hashes, versions, seeds, git revision, command),
and the per-target record of a target whose artifact was built but could not be run here."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekd._io import write_json, write_text
from edgekd.data.sources import update_sha256
from edgekd.distill.trainer import predict
from edgekd.hw.environment import environment, versions
from edgekd.report.builder import assemble, prediction_section, with_prediction
from edgekd.report.writers import markdown, reference_lines
from edgekd.schema.record import Report
from edgekd.schema.sections import Status
from edgekd.schema.student import card_of
from edgekd.targets import NumericFormat, load_recipe
from edgekd.validate import reference_check
from edgekd.validate.metrics import accuracy, compare, per_class_accuracy

MANIFEST_SCHEMA = "edgekd.manifest/1"
MANIFEST_FILENAME = "manifest.json"
# Every runtime or tool a backend may use; absent ones are recorded as null.
TOOLS = ("edgekd", "torch", "numpy", "onnx", "onnxruntime", "onnxruntime-qnn", "openvino", "nncf", "tensorrt",
         "polygraphy", "onnx-graphsurgeon", "coremltools", "executorch", "torchao", "ethos-u-vela",
         "ai-edge-litert", "scikit-learn", "matplotlib")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def state_sha256(model) -> str:
    """A hash of a torch model's parameters and buffers, in state-dict order."""
    h = hashlib.sha256()
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def data_sha256(data) -> str:
    h = hashlib.sha256()
    update_sha256(h, data.x)
    h.update(np.ascontiguousarray(data.y.numpy()).tobytes())
    return h.hexdigest()


def git_revision(folder: Path | None = None) -> dict:
    """The commit of the edgekd source tree and whether tracked files differ from it (None outside git)."""
    folder = folder or Path(__file__).resolve().parents[2]

    def git(*args):
        return subprocess.run(["git", "-C", str(folder), *args], capture_output=True, text=True, timeout=20)

    try:
        rev = git("rev-parse", "HEAD")
        if rev.returncode != 0:
            return {"revision": None, "dirty": None, "note": "not a git checkout"}
        dirty = git("status", "--porcelain", "--untracked-files=no").stdout.strip() != ""
        return {"revision": rev.stdout.strip(), "dirty": dirty}
    except (OSError, subprocess.SubprocessError) as exc:
        return {"revision": None, "dirty": None, "note": f"git not usable: {exc}"}


def artifact_files(folder: Path) -> dict[str, dict]:
    """sha256 and size of every file in an artifact folder except the reports (they hold timings)."""
    out = {}
    for path in sorted(Path(folder).rglob("*")):
        if path.is_file() and not path.name.startswith("report."):
            out[str(path.relative_to(folder))] = {"sha256": file_sha256(path), "bytes": path.stat().st_size}
    return out


def build_manifest(matrix, *, data, teacher, teacher_info, loss, settings, shared, command) -> dict:
    """The manifest of one ``build_all`` run; enough to tell what produced each artifact."""
    targets = {}
    for r in matrix.results:
        entry = {"status": r.status, "reason": r.reason, "share_key": None}
        if r.report is not None:
            rep = Report.from_dict(r.report)
            entry["backend"] = rep.target.backend
            entry["target_file"] = rep.target.source
            label = rep.run.shared_distillation if rep.run is not None else None
            entry["share_key"] = label or NumericFormat.model_validate(rep.target.format).key
        if r.artifact is not None:
            entry["folder"] = r.artifact.folder.name
            entry["artifact"] = Path(r.artifact.path).name
            entry["precision"] = r.artifact.precision
            entry["files"] = artifact_files(r.artifact.folder)
            entry["calibration"] = r.artifact.details.get("calibration")
            entry["reproducible"] = r.artifact.details.get("reproducible") or {
                "bit_identical": None, "why": f"not established for the {r.artifact.backend} backend"}
        targets[r.target] = entry
    return {
        "schema": MANIFEST_SCHEMA,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command or " ".join(shlex.quote(a) for a in sys.argv),
        "git": git_revision(),
        "seeds": {"build": settings["seed"], "calibration": _calibration_seeds(matrix)},
        "inputs": {"dataset": data.name, "train": {"samples": len(data.train), "sha256": data_sha256(data.train)},
                   "val": {"samples": len(data.val), "sha256": data_sha256(data.val)},
                   "teacher": {"arch": teacher_info.get("arch"), "source": teacher_info.get("source"),
                               "sha256": state_sha256(teacher)}},
        "settings": {**{k: v for k, v in settings.items() if k != "progress"},
                     "loss": {"name": type(loss).__name__, **loss.config()}},
        "shared_distillation": {k: {kk: vv for kk, vv in v.items() if kk != "history"} for k, v in shared.items()},
        "tools": versions(TOOLS),
        "environment": {k: v for k, v in environment().items() if k != "versions"},
        "seconds": matrix.seconds,
        "targets": targets,
    }


def _calibration_seeds(matrix) -> dict:
    seeds = {}
    for r in matrix.results:
        calib = (r.artifact.details.get("calibration") or {}) if r.artifact is not None else {}
        if calib.get("recipe"):
            seeds[calib["recipe"]] = load_recipe(calib["recipe"]).seed
    return seeds


def write_manifest(manifest: dict, out_dir: Path) -> Path:
    return write_json(Path(out_dir) / MANIFEST_FILENAME, manifest)


def not_run_pieces(*, target, artifact, data, teacher_logits, student) -> dict:
    """:func:`~edgekd.report.builder.assemble`'s figures for an artifact built here but not run: the teacher
    and the fp32 student measured in torch, the artifact's graph in a reference runtime where its backend has one."""
    y = data.val.y.numpy()
    student_logits = predict(student, data.val.x).numpy()
    return {"teacher_metrics": {"accuracy": accuracy(teacher_logits, y),
                                "per_class_accuracy": per_class_accuracy(teacher_logits, y, teacher_logits.shape[1])},
            "student_metrics": compare(student_logits, y, teacher_logits, None),
            "reference_check": reference_check(artifact, data.val.x.numpy(), y, teacher_logits, student_logits,
                                               target.gate.max_accuracy_drop)}


def partial_report(*, target, artifact, data, teacher_logits, teacher_info, trained, loss, config, reason,
                   seconds) -> dict:
    """report.json of a target built here but not run (:func:`not_run_pieces`, the latency model's prediction)."""
    report = assemble(target=target, data=data, teacher_info=teacher_info, student=trained.model, artifact=artifact,
                      not_run=reason, loss=loss, config=config, history=trained.history,
                      resumed_from_epoch=trained.resumed_from_epoch, seconds=seconds,
                      search=card_of(trained.model).search,
                      **not_run_pieces(target=target, artifact=artifact, data=data, teacher_logits=teacher_logits,
                                       student=trained.model))
    return with_prediction(report, prediction_section(report, target)).to_dict()


def write_target_reports(report: Report | dict, folder: Path) -> None:
    """report.json and report.md of one target of a matrix build, including its run status."""
    rep = Report.from_dict(report)
    write_json(Path(folder) / "report.json", rep.to_dict())
    lat = rep.latency
    if rep.gate.passed is None:
        status = rep.run.status if rep.run is not None and rep.run.status is not None else Status.NOT_RUN
        text = (f"# edgekd build: {rep.target.name}\n\n**{str(status).upper()}**: "
                f"{'; '.join(rep.gate.reasons)}.\n\nArtifact `{rep.artifact.path}` "
                f"({rep.artifact.precision}, {rep.artifact.size_bytes / 1024:.1f} KiB) was built "
                f"but not run; fp32 student top-1 {rep.student.accuracy * 100:.2f}% vs teacher "
                f"{rep.teacher.accuracy * 100:.2f}% (torch).\n")
        text += "".join(f"\n{line}\n" for line in reference_lines(rep.artifact.reference_check))
    else:
        text = markdown(rep)
    if lat is not None and lat.kind != "measured":
        text += f"\nLatency: {lat.note or ''} ({lat.how}).\n"
    write_text(Path(folder) / "report.md", text)
