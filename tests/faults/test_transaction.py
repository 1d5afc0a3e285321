"""A killed or failed rebuild never leaves a report claiming success; one build per output folder at a time."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

import edgekd
from edgekd import outdir
from edgekd.errors import LockedError

from conftest import tiny_data, tiny_model

TARGET = "x86-cpu-onnxruntime"
FAST = dict(target=TARGET, student={"name": "resnet", "depths": (1, 1), "widths": (4, 8)}, epochs=1, search=False,
            progress=False, latency_runs=2)
HERE = Path(__file__).resolve().parent
# where each step of a build lives, by the name tests inject a failure into
STAGE_MODULE = {"fit": "edgekd.stages.distill", "compile_model": "edgekd.stages.deliver",
                "validate": "edgekd.stages.deliver", "write_target_reports": "edgekd.stages.deliver"}


def _inject(monkeypatch, stage: str, replacement) -> None:
    import importlib

    monkeypatch.setattr(importlib.import_module(STAGE_MODULE[stage]), stage, replacement)


def _build(out, **kw):
    x, y = tiny_data(96)
    return edgekd.build(tiny_model(), train=(x, y), out_dir=out, **{**FAST, **kw})


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """One finished build, copied by each test (a build takes seconds; a copy, milliseconds)."""
    out = tmp_path_factory.mktemp("template") / "out"
    _build(out)
    return out


@pytest.fixture()
def built(template, tmp_path):
    out = tmp_path / "out"
    shutil.copytree(template, out, symlinks=True)
    return out


def _reports(out: Path) -> list[Path]:
    return sorted(p for p in out.rglob("report.*") if not p.name.endswith(outdir.SUPERSEDED))


def _state(out: Path) -> dict | None:
    path = out / outdir.STATE
    return json.loads(path.read_text()) if path.exists() else None


def test_build_leaves_no_state_file_after_success(built):
    assert _state(built) is None
    assert (built / TARGET / "report.json").exists()


@pytest.mark.parametrize("stage", ["validate", "write_target_reports"])
def test_failed_rebuild_leaves_no_report_and_says_failed(built, monkeypatch, stage):
    def boom(*a, **k):
        raise RuntimeError(f"injected failure in {stage}")

    _inject(monkeypatch, stage, boom)
    with pytest.raises(RuntimeError):
        _build(built)
    assert _reports(built) == []  # nothing left that could claim the old gate result for this build
    assert _state(built)["state"] == "failed" and _state(built)["targets"] == [TARGET]


@pytest.mark.parametrize("stage", ["fit", "compile_model"])
def test_rebuild_failing_before_replacing_the_artifact_keeps_the_old_build(built, monkeypatch, stage):
    before = {p: p.read_bytes() for p in built.rglob("*") if p.is_file()}

    def boom(*a, **k):
        raise RuntimeError(f"injected failure in {stage}")

    _inject(monkeypatch, stage, boom)
    with pytest.raises(RuntimeError):
        _build(built)
    after = {p: p.read_bytes() for p in built.rglob("*") if p.is_file() and "_work" not in p.parts}
    assert after == {p: b for p, b in before.items() if "_work" not in p.parts}  # reports and artifact as they were
    assert _state(built) is None and not (built / outdir.LOCK).exists()


def test_build_failing_on_bad_input_in_a_new_folder_leaves_nothing(tmp_path):
    out = tmp_path / "new"
    x, _ = tiny_data(96)
    with pytest.raises(edgekd.DataError):
        edgekd.build(tiny_model(classes=5), train=(x, np.arange(96) % 3), out_dir=out, **FAST)  # 5 outputs, 3 labels
    assert not out.exists()


def test_interrupted_rebuild_says_failed(built, monkeypatch):
    def interrupt(*a, **k):
        raise KeyboardInterrupt

    _inject(monkeypatch, "validate", interrupt)
    with pytest.raises(KeyboardInterrupt):
        _build(built)
    assert _reports(built) == [] and _state(built)["state"] == "failed"


def test_lock_refuses_second_holder_naming_pid(tmp_path):
    first = outdir.OutputLock(tmp_path).acquire()
    try:
        with pytest.raises(LockedError) as info:
            outdir.OutputLock(tmp_path).acquire()
        assert info.value.pid == os.getpid()
    finally:
        first.release()
    outdir.OutputLock(tmp_path).acquire().release()  # free again once released


def test_build_into_locked_folder_fails_at_once_writing_nothing(built):
    before = {p: p.stat().st_mtime_ns for p in built.rglob("*")}
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import sys, time
        sys.path.insert(0, {str(HERE.parents[1])!r})
        from edgekd.outdir import OutputLock
        OutputLock({str(built)!r}).acquire()
        print("locked", flush=True)
        time.sleep(60)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.perf_counter()
        with pytest.raises(LockedError) as info:
            _build(built)
        assert info.value.pid == holder.pid
        assert time.perf_counter() - started < 5  # at once, not after training
    finally:
        holder.kill()
        holder.wait()
    after = {p: p.stat().st_mtime_ns for p in built.rglob("*") if p.name != outdir.LOCK}
    assert after == {p: t for p, t in before.items() if p.name != outdir.LOCK}


def test_lock_left_by_dead_process_is_taken_over(tmp_path):
    (tmp_path / outdir.LOCK).write_text("999999999\n")  # no live holder: the kernel holds no flock on it
    with outdir.BuildTransaction(tmp_path, []):
        assert (tmp_path / outdir.LOCK).read_text().strip() == str(os.getpid())
    assert _state(tmp_path) is None


def test_transaction_supersedes_old_reports_before_work(built):
    with outdir.BuildTransaction(built, [TARGET]):
        assert _reports(built) == []
        assert (built / TARGET / ("report.json" + outdir.SUPERSEDED)).exists()
        assert _state(built)["state"] == "in progress"


def test_stale_staging_folder_is_cleaned_on_next_build(built):
    stale = built / f".{TARGET}.abc123"
    stale.mkdir()
    outdir.mark_created(stale)
    (stale / "model.onnx").write_bytes(b"half")
    user = built / ".my-notes.d"
    user.mkdir()  # a dotted folder edgekd did not make is left alone
    with outdir.BuildTransaction(built, [TARGET]):
        pass
    assert not stale.exists() and user.exists()


def _kill_script(out: Path, stage: str) -> str:
    return textwrap.dedent(f"""
        import os, signal, sys
        sys.path.insert(0, {str(HERE)!r}); sys.path.insert(0, {str(HERE.parents[1])!r})
        import importlib, edgekd
        from conftest import tiny_data, tiny_model
        module = importlib.import_module({STAGE_MODULE[stage]!r})
        real = getattr(module, {stage!r})
        def die(*a, **k):
            if {stage!r} == "write_target_reports":
                real(*a, **k)  # the reports are written, then the kill comes before the build finishes
            os.kill(os.getpid(), signal.SIGKILL)
        setattr(module, {stage!r}, die)
        x, y = tiny_data(96)
        edgekd.build(tiny_model(), train=(x, y), out_dir={str(out)!r}, **{FAST!r})
        """)


@pytest.mark.slow
@pytest.mark.parametrize("stage", ["fit", "compile_model", "validate"])
def test_killed_rebuild_leaves_no_report_claiming_success(built, stage):
    proc = subprocess.run([sys.executable, "-c", _kill_script(built, stage)], capture_output=True, timeout=300)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    assert _reports(built) == []
    assert _state(built)["state"] == "in progress"
    with outdir.BuildTransaction(built, [TARGET]):  # the dead build's lock is free
        pass


@pytest.mark.slow
def test_failed_build_all_rebuild_leaves_no_passed_report_beside_error_manifest(tmp_path, monkeypatch):
    x, y = tiny_data(96)
    kw = dict(targets=[TARGET], student=FAST["student"], epochs=1, search=False, progress=False, latency_runs=2)
    out = tmp_path / "out"
    edgekd.build_all(tiny_model(), train=(x, y), out_dir=out, **kw)
    assert (out / TARGET / "report.json").exists()

    def boom(*a, **k):
        raise RuntimeError("injected distillation failure")

    _inject(monkeypatch, "fit", boom)
    result = edgekd.build_all(tiny_model(), train=(x, y), out_dir=out, **kw)
    assert result[TARGET].status == "error"
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["targets"][TARGET]["status"] == "error"
    assert not (out / TARGET / "report.json").exists()  # the old "passed/failed" record is only *.superseded
    assert (out / TARGET / ("report.json" + outdir.SUPERSEDED)).exists()
    assert _state(out) is None  # build_all finished: its manifest is the truth
