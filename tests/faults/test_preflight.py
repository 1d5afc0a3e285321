"""Every bad build input fails up front: ConfigError (exit 2 in the CLI), before training, nothing written."""

from __future__ import annotations

import math
import os
import re
import sys
import time
from pathlib import Path

import pytest

import edgekd
from edgekd.errors import ConfigError, DataError, IntegrityError

from conftest import tiny_data, tiny_model

ROOT = Path(__file__).resolve().parents[2]
BASE = (ROOT / "targets" / "x86-cpu-onnxruntime.toml").read_text(encoding="utf-8")
FAST = dict(student={"name": "resnet", "depths": (1, 1), "widths": (4, 8)}, epochs=1, search=False, progress=False,
            latency_runs=2)

BAD_SETTINGS = [
    ("epochs", -1), ("epochs", 0), ("epochs", 1.5), ("epochs", True), ("epochs", "3"), ("epochs", 10**9),
    ("batch_size", 0), ("batch_size", -8), ("batch_size", 10**9), ("batch_size", None),
    ("lr", math.nan), ("lr", math.inf), ("lr", -1e-3), ("lr", 0.0), ("lr", "fast"), ("lr", 1e6),
    ("seed", -1), ("seed", 2**70), ("seed", 1.5), ("seed", None),
    ("calib_size", -5), ("calib_size", 0), ("calib_size", 7), ("calib_size", 10**12), ("calib_size", 8.0),
    ("val_fraction", 0.0), ("val_fraction", 1.0), ("val_fraction", math.nan), ("val_fraction", -0.2),
    ("latency_runs", 0), ("latency_runs", -3),
    ("student", {"name": "resnet", "widths": (100_000, 8)}), ("student", {"name": "resnet", "widths": (1e5,)}),
    ("student", {"name": "resnet", "depths": (math.nan, 1)}), ("student", {"name": "resnet", "widths": (4, 1e300)}),
]


def _fast_build(out, **kw):
    x, y = tiny_data(96)
    return edgekd.build(tiny_model(), train=(x, y), out_dir=out, **{**FAST, **kw})


@pytest.fixture()
def no_training(monkeypatch):
    """Fail the test if any training starts: the check must come first."""
    import edgekd.stages.distill as distill_stage
    import edgekd.stages.teacher as teacher_stage

    def trained(*a, **k):
        raise AssertionError("training started before the input was checked")

    monkeypatch.setattr(distill_stage, "fit", trained)
    monkeypatch.setattr(teacher_stage, "fit", trained)


@pytest.mark.parametrize("name,value", BAD_SETTINGS, ids=[f"{n}={v!r}"[:40] for n, v in BAD_SETTINGS])
def test_build_refuses_bad_setting_before_writing(tmp_path, no_training, name, value):
    out = tmp_path / "out"
    with pytest.raises((ConfigError, DataError), match=re.escape(name)):
        _fast_build(out, **{name: value})
    assert not out.exists()


@pytest.mark.parametrize("name,value", BAD_SETTINGS[::3], ids=[f"{n}={v!r}"[:40] for n, v in BAD_SETTINGS[::3]])
def test_build_all_refuses_bad_setting_before_writing(tmp_path, name, value):
    out = tmp_path / "out"
    x, y = tiny_data(96)
    with pytest.raises((ConfigError, DataError)):
        edgekd.build_all(tiny_model(), train=(x, y), targets=["x86-cpu-onnxruntime"], out_dir=out,
                         **{**FAST, name: value})
    assert not out.exists()


def _target_file(tmp_path, name="x86-cpu-onnxruntime", **sub) -> Path:
    text = BASE
    for old, new in sub.items():
        text = re.sub(old, new, text, count=1, flags=re.M)
    path = tmp_path / "targets" / f"{name}.toml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


BAD_TARGET_EDITS = {
    "threads-1e20": {r"^threads = 1$": "threads = 1e20"},
    "threads-huge-int": {r"^threads = 1$": "threads = 100000000000000000000"},
    "threads-0": {r"^threads = 1$": "threads = 0"},
    "budget-inf": {r"^budget_ms = 0.5": "budget_ms = inf"},
    "budget-nan": {r"^budget_ms = 0.5": "budget_ms = nan"},
    "budget-negative": {r"^budget_ms = 0.5": "budget_ms = -1.0"},
    "budget-zero": {r"^budget_ms = 0.5": "budget_ms = 0.0"},
    "latency-batch-0": {r"^batch = 1$": "batch = 0"},
    "static-batch-neg": {r'^batch = "dynamic"': 'batch = "static"\nstatic_batch = -3'},
    "static-batch-huge": {r'^batch = "dynamic"': 'batch = "static"\nstatic_batch = 1000000000000'},
    "gate-drop-nan": {r"^max_accuracy_drop = 1.0": "max_accuracy_drop = nan"},
    "gate-drop-neg": {r"^max_accuracy_drop = 1.0": "max_accuracy_drop = -1.0"},
    "recipe-unknown": {r'^recipe = "minmax-256"': 'recipe = "no-such-recipe"'},
    "recipe-escape": {r'^recipe = "minmax-256"': 'recipe = "../../../../etc/hostname"'},
    "recipe-abs": {r'^recipe = "minmax-256"': 'recipe = "/etc/hostname"'},
    "recipe-toml": {r'^recipe = "minmax-256"': 'recipe = "minmax-256.toml"'},
    "backend-unknown": {r'^backend = "onnxruntime"': 'backend = "tflite-gpu"'},
    "backend-escape": {r'^backend = "onnxruntime"': 'backend = "../../evil"'},
    "unknown-key": {r'^device = "cpu"': 'device = "cpu"\ncolour = "blue"'},
    "ops-empty": {r"^ops = \[.*\]$": "ops = []"},
    "format-unknown": {r'^weights = "int8"': 'weights = "int3"'},
}


@pytest.mark.parametrize("edit", sorted(BAD_TARGET_EDITS))
def test_build_refuses_bad_target_file_before_writing(tmp_path, no_training, edit):
    path = _target_file(tmp_path, **BAD_TARGET_EDITS[edit])
    out = tmp_path / "out"
    with pytest.raises(ConfigError):
        _fast_build(out, target=str(path))
    assert not out.exists()


BAD_TOML = {
    "not-utf8": b'name = "x86-cpu-onnxruntime"\ndescription = "\xff\xfe"\n',
    "nested": b"a = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "syntax": b"name = \n",
    "empty": b"",
    "binary": bytes(range(256)),
}


@pytest.mark.parametrize("kind", sorted(BAD_TOML))
def test_load_target_refuses_unreadable_toml(tmp_path, kind):
    path = tmp_path / "x86-cpu-onnxruntime.toml"
    path.write_bytes(BAD_TOML[kind])
    with pytest.raises(ConfigError):
        edgekd.load_target(path)


def test_build_refuses_out_that_is_a_file(tmp_path, no_training):
    out = tmp_path / "out"
    out.write_text("not a folder")
    with pytest.raises(ConfigError):
        _fast_build(out)
    assert out.read_text() == "not a folder"


def test_build_refuses_out_under_a_file(tmp_path, no_training):
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError):
        _fast_build(tmp_path / "file" / "out")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_build_refuses_read_only_out(tmp_path, no_training):
    out = tmp_path / "out"
    out.mkdir(mode=0o555)
    with pytest.raises(ConfigError):
        _fast_build(out)


@pytest.mark.parametrize("out", ["", None, 3])
def test_build_refuses_non_path_out(no_training, out):
    with pytest.raises(ConfigError):
        _fast_build(out)


def test_build_refuses_unknown_target_name(tmp_path, no_training):
    with pytest.raises(ConfigError):
        _fast_build(tmp_path / "out", target="no-such-device")
    assert not (tmp_path / "out").exists()


# the command line: one line, exit 2, no traceback (unless --debug) -------------------------------------------

def _cli(monkeypatch, capsys, *args):
    from edgekd import cli

    monkeypatch.setattr(sys, "argv", ["edgekd", *args])
    started = time.perf_counter()
    with pytest.raises(SystemExit) as info:
        cli.main()
    return info.value.code, capsys.readouterr().err, time.perf_counter() - started


CLI_BAD = {
    "out-is-file": lambda tmp: ["build", "--out", str(_touch(tmp / "f")), "--epochs", "1"],
    "calib-size-neg": lambda tmp: ["build", "--out", str(tmp / "o"), "--calib-size", "-5"],
    "seed-neg": lambda tmp: ["build", "--out", str(tmp / "o"), "--seed", "-1"],
    "seed-huge": lambda tmp: ["build", "--out", str(tmp / "o"), "--seed", str(2**70)],
    "distill-huge-widths": lambda tmp: ["distill", "--dataset", "digits", "--student", "resnet", "--out",
                                        str(tmp / "o"), "--student-opt", "widths=[100000,100000,100000]"],
    "distill-seed-neg": lambda tmp: ["distill", "--dataset", "digits", "--out", str(tmp / "o"), "--seed", "-1"],
    "search-seed-neg": lambda tmp: ["search", "--out", str(tmp / "o"), "--seed", "-1"],
    "search-seed-huge": lambda tmp: ["search", "--out", str(tmp / "o"), "--seed", str(2**33)],
    "target-unknown": lambda tmp: ["build", "--out", str(tmp / "o"), "--target", "nope"],
    "target-bad-threads": lambda tmp: ["build", "--out", str(tmp / "o"), "--target",
                                       str(_target_file(tmp, **BAD_TARGET_EDITS["threads-1e20"]))],
    "target-recipe-escape": lambda tmp: ["build", "--out", str(tmp / "o"), "--target",
                                         str(_target_file(tmp, **BAD_TARGET_EDITS["recipe-escape"]))],
}


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


@pytest.mark.parametrize("case", sorted(CLI_BAD))
def test_cli_bad_input_is_one_line_exit_2_nothing_written(tmp_path, monkeypatch, capsys, no_training, case):
    code, err, seconds = _cli(monkeypatch, capsys, *CLI_BAD[case](tmp_path))
    assert code == 2
    assert "Traceback" not in err and len([l for l in err.splitlines() if l.strip()]) >= 1
    assert not (tmp_path / "o").exists()
    assert seconds < 30


def test_cli_main_prints_edgekd_error_as_one_line_exit_2(monkeypatch, capsys):
    from edgekd import cli

    def fail():
        raise IntegrityError("model.onnx: sha256 does not match")

    monkeypatch.setattr(cli, "app", fail)
    monkeypatch.setattr(sys, "argv", ["edgekd", "build"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_cli_main_with_debug_raises_the_error(monkeypatch):
    from edgekd import cli

    def fail():
        raise ConfigError("bad")

    monkeypatch.setattr(cli, "app", fail)
    monkeypatch.setattr(sys, "argv", ["edgekd", "--debug", "build"])
    with pytest.raises(ConfigError):
        cli.main()
    assert "--debug" not in sys.argv


def test_cli_main_full_disk_is_one_line(monkeypatch, capsys):
    import errno

    from edgekd import cli

    def full():
        raise OSError(errno.ENOSPC, "No space left on device", "/mnt/out/model.onnx")

    monkeypatch.setattr(cli, "app", full)
    monkeypatch.setattr(sys, "argv", ["edgekd", "build"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and "/mnt/out/model.onnx" in err and "Traceback" not in err


@pytest.mark.parametrize("error", [FileExistsError(17, "File exists", "/x/out/build.log"),
                                   PermissionError(13, "Permission denied", "/x/out"),
                                   NotADirectoryError(20, "Not a directory", "/x/file/out")])
def test_cli_main_os_error_on_a_path_is_one_line_exit_2(monkeypatch, capsys, error):
    from edgekd import cli

    def fail():
        raise error

    monkeypatch.setattr(cli, "app", fail)
    monkeypatch.setattr(sys, "argv", ["edgekd", "build"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2 and error.filename in err and "Traceback" not in err


@pytest.mark.parametrize("code", ["ENOSPC", "EDQUOT"])
def test_atomic_write_full_disk_is_output_error_naming_file_and_leaves_no_temp(tmp_path, code):
    import errno

    from edgekd._io import atomic_write
    from edgekd.errors import OutputError

    def full(path):
        path.write_bytes(b"partial")
        raise OSError(getattr(errno, code), "No space left on device")

    target = tmp_path / "model.onnx"
    with pytest.raises(OutputError, match=re.escape(str(target))):
        atomic_write(target, full)
    assert list(tmp_path.iterdir()) == []


def test_atomic_write_other_os_error_passes_through(tmp_path):
    from edgekd._io import atomic_write

    def denied(path):
        raise PermissionError(13, "Permission denied", str(path))

    with pytest.raises(PermissionError):
        atomic_write(tmp_path / "x.json", denied)
