"""``build/manifest.json``: what produced each artifact (hashes, versions, seeds, git revision, command),
and the per-target record of a target whose artifact was built but could not be run here."""

from __future__ import annotations

import hashlib
import shlex
import subprocess
import sys
from dataclasses import asdict
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from edgekd._io import write_json, write_text
from edgekd.report.environment import environment, versions
from edgekd.report.writers import REPORT_SCHEMA, markdown

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
    h = hashlib.sha256(np.ascontiguousarray(data.x.numpy()).tobytes())
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
            entry["backend"] = r.report["target"]["backend"]
            entry["target_file"] = r.report["target"].get("source")
            entry["share_key"] = (r.report.get("run") or {}).get("shared_distillation") or _share_key(r.report)
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


def _share_key(report: dict) -> str:
    from edgekd.targets import NumericFormat

    return NumericFormat.model_validate(report["target"]["format"]).key


def _calibration_seeds(matrix) -> dict:
    seeds = {}
    for r in matrix.results:
        calib = (r.artifact.details.get("calibration") or {}) if r.artifact is not None else {}
        if calib.get("recipe"):
            from edgekd.targets import load_recipe

            seeds[calib["recipe"]] = load_recipe(calib["recipe"]).seed
    return seeds


def write_manifest(manifest: dict, out_dir: Path) -> Path:
    return write_json(Path(out_dir) / MANIFEST_FILENAME, manifest)


def partial_report(*, target, artifact, data, teacher_logits, teacher_info, trained, loss, config, reason,
                   seconds) -> dict:
    """report.json of a target built here but not run: teacher and fp32 student measured, artifact not."""
    from edgekd.distill.trainer import predict
    from edgekd.report.environment import environment as env
    from edgekd.report.writers import target_and_dataset
    from edgekd.validate.metrics import accuracy, compare, per_class_accuracy

    from edgekd.validate import reference_check

    y = data.val.y.numpy()
    student_logits = predict(trained.model, data.val.x).numpy()
    student = trained.model
    check = reference_check(artifact, data.val.x.numpy(), y, teacher_logits, student_logits,
                            target.gate.max_accuracy_drop)
    return {
        "schema": REPORT_SCHEMA,
        **target_and_dataset(target, data),
        "teacher": {**teacher_info, "accuracy": accuracy(teacher_logits, y),
                    "per_class_accuracy": per_class_accuracy(teacher_logits, y, teacher_logits.shape[1])},
        "student": {"arch": getattr(student, "edgekd_arch", None),
                    "params": sum(p.numel() for p in student.parameters()),
                    **compare(student_logits, y, teacher_logits, None)},
        "artifact": {"path": Path(artifact.path).name, "backend": artifact.backend, "precision": artifact.precision,
                     "size_bytes": artifact.size_bytes, "files": artifact.files, "sha256": artifact.sha256, "static_batch": artifact.static_batch,
                     "details": artifact.details, "latency_budget_ms": target.latency.budget_ms,
                     "within_budget": None, "validated": False,
                     **({"reference_check": check} if check is not None else {})},
        "distillation": {"loss": {"name": type(loss).__name__, **loss.config()}, "config": asdict(config),
                         "history": trained.history, "resumed_from_epoch": trained.resumed_from_epoch},
        "search": getattr(student, "edgekd_search", None),
        "gate": {"passed": None, "status": "not run here", "reasons": [reason],
                 "max_accuracy_drop": target.gate.max_accuracy_drop, "min_agreement": target.gate.min_agreement},
        "seconds": seconds,
        "environment": env(),
    }


def write_target_reports(report: dict, folder: Path) -> None:
    """report.json and report.md of one target of a matrix build, including its run status."""
    write_json(Path(folder) / "report.json", report)
    run = report.get("run", {})
    lat = run.get("latency", {})
    if report["gate"]["passed"] is None:
        text = (f"# edgekd build: {report['target']['name']}\n\n**{run.get('status', 'not run here').upper()}**: "
                f"{'; '.join(report['gate']['reasons'])}.\n\nArtifact `{report['artifact']['path']}` "
                f"({report['artifact']['precision']}, {report['artifact']['size_bytes'] / 1024:.1f} KiB) was built "
                f"but not run; fp32 student top-1 {report['student']['accuracy'] * 100:.2f}% vs teacher "
                f"{report['teacher']['accuracy'] * 100:.2f}% (torch).\n")
    else:
        text = markdown(report)
    if lat and lat.get("kind") != "measured":
        text += f"\nLatency: {lat.get('note') or ''} ({lat.get('how')}).\n"
    write_text(Path(folder) / "report.md", text)
