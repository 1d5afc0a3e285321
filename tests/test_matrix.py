"""``edgekd.build_all`` / ``edgekd build --all``: shared distillation, per-target outcomes, manifest, report."""

import json
import re
from html import unescape
from pathlib import Path

import pytest
from typer.testing import CliRunner

from edgekd.capability import capability
from edgekd.cli import app
from edgekd.matrix import ERROR, FAILED, NOT_BUILT, NOT_RUN, PASSED, build_all
from edgekd.report.manifest import file_sha256
from edgekd.stages.student import share_groups
from edgekd.targets import list_targets, load_target

REPO_TARGETS = Path(__file__).resolve().parents[1] / "targets"
FAKE = ('name = "{name}"\nbackend = "{backend}"\ndevice = "cpu"\nops = ["conv"]\n'
        '[format]\nweights = "{weights}"\nactivations = "uint8"\n')
# ONNX Runtime CPU refuses fp16; same format as rtx-gpu-tensorrt, so it costs no extra distillation
ORT_FP16 = ('name = "ort-fp16"\nbackend = "onnxruntime"\ndevice = "cpu"\nops = ["conv"]\n[format]\n'
            'weights = "fp16"\nactivations = "fp16"\nweight_granularity = "per_tensor"\nactivation_symmetric = true\n')
SMALL = {"name": "resnet", "widths": (8, 16, 32)}  # keeps the suite's share small on busy CPUs


@pytest.mark.parametrize("path", sorted(REPO_TARGETS.glob("*.toml")), ids=lambda p: p.stem)
def test_target_file_validates_and_says_where_its_facts_come_from(path):
    target = load_target(path)
    assert target.name == path.stem and target.ops
    assert target.latency.budget_ms is not None and target.latency.model  # every device states both
    header = [line for line in path.read_text().splitlines() if line.startswith("#")]
    assert any("Facts" in line or "facts" in line for line in header), f"{path.name}: no comment naming its sources"


def test_share_groups_put_targets_of_one_numeric_format_together():
    groups = share_groups(list_targets())
    x86 = load_target("x86-cpu-onnxruntime")
    assert {"x86-cpu-onnxruntime", "raspberry-pi-onnxruntime"} <= {t.name for t in groups[x86.format.key]}
    assert [t.name for t in groups[load_target("rtx-gpu-tensorrt").format.key]] == ["rtx-gpu-tensorrt"]


def test_capability_of_raspberry_pi_validates_here_but_never_times_it_as_the_device(monkeypatch):
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    cap = capability(load_target("raspberry-pi-onnxruntime"))
    assert cap.build and cap.run and not cap.latency_here
    assert "not measured on the device" in cap.latency_reason and "aarch64" in cap.latency_reason


def test_capability_of_unregistered_backend_says_not_available(tmp_path):
    path = tmp_path / "fake-npu.toml"
    path.write_text(FAKE.format(name="fake-npu", backend="fakenpu", weights="int8"))
    cap = capability(load_target(path))
    assert not cap.build and not cap.run and "backend 'fakenpu' not available" in cap.build_reason


@pytest.fixture(scope="module")
def matrix(digits, digits_teacher, tmp_path_factory):
    """One small matrix: two int8 ONNX Runtime targets (shared), TensorRT fp16, an unbuildable and a failing one.

    One distillation in all: without QAT the given student's distillation does not depend on the format.
    """
    folder = tmp_path_factory.mktemp("targets")
    fake = folder / "fake-npu.toml"
    fake.write_text(FAKE.format(name="fake-npu", backend="fakenpu", weights="int8"))
    bad = folder / "ort-fp16.toml"
    bad.write_text(ORT_FP16)
    train, val, spec = digits
    out = tmp_path_factory.mktemp("build")
    targets = ["x86-cpu-onnxruntime", "raspberry-pi-onnxruntime", "rtx-gpu-tensorrt", fake, bad]
    return build_all(digits_teacher, train, val, targets=targets, out_dir=out, spec=spec, student=SMALL, epochs=2,
                     progress=False, latency_runs=10, command="pytest matrix")


def test_build_all_distills_once_for_every_format_when_not_quantization_aware(matrix):
    shared = matrix.manifest["shared_distillation"]
    assert len(shared) == 1
    (info,) = shared.values()
    assert info["targets"] == ["x86-cpu-onnxruntime", "raspberry-pi-onnxruntime", "fake-npu", "rtx-gpu-tensorrt",
                               "ort-fp16"]
    assert sorted(info["formats"]) == sorted({load_target("x86-cpu-onnxruntime").format.key,
                                              load_target("rtx-gpu-tensorrt").format.key})
    x86, rtx = matrix["x86-cpu-onnxruntime"], matrix["rtx-gpu-tensorrt"]
    assert x86.report["distillation"]["history"] == rtx.report["distillation"]["history"]
    assert x86.report["student"]["accuracy"] == rtx.report["student"]["accuracy"]


def test_distill_groups_split_by_format_only_when_quantization_aware():
    from edgekd.stages.student import Plan, distill_groups
    from edgekd.models import create_student

    def plan(name):
        target = load_target(name)
        return Plan(target.format.key, [target], target, create_student("resnet", (1, 8, 8), 10))

    plans = [plan("x86-cpu-onnxruntime"), plan("rtx-gpu-tensorrt"), plan("raspberry-pi-onnxruntime")]
    plans[2].key = plans[0].key  # as share_groups would have put the Pi with x86
    assert len(distill_groups(plans, qat=False)) == 1
    qat = distill_groups(plans, qat=True)
    assert sorted(len(g) for g in qat.values()) == [1, 2]
    other = plan("x86-cpu-onnxruntime")
    other.model = create_student("resnet", (1, 8, 8), 10, widths=(8, 16, 32))
    assert len(distill_groups([plans[0], other], qat=False)) == 2  # different students never share


def test_build_all_validates_runnable_targets_and_gates_them_by_their_numbers(matrix):
    for name in ("x86-cpu-onnxruntime", "raspberry-pi-onnxruntime"):
        r = matrix[name]
        assert r.status in (PASSED, FAILED) and r.built
        drop = (r.report["teacher"]["accuracy"] - r.report["artifact"]["accuracy"]) * 100
        assert (r.status == PASSED) == (drop <= r.report["gate"]["max_accuracy_drop"])
        assert r.report["artifact"]["agreement_student"] >= 0.9  # int8 tracks its own fp32 student
    assert matrix["x86-cpu-onnxruntime"].report["run"]["latency"]["kind"] == "measured"
    pi = matrix["raspberry-pi-onnxruntime"].report
    assert pi["run"]["latency"]["kind"] != "measured" and "latency_ms" not in pi["artifact"]
    assert "not measured on the device" in pi["run"]["latency"]["note"]


def test_build_all_keeps_going_past_unbuildable_and_failing_targets(matrix):
    assert matrix["fake-npu"].status == NOT_BUILT
    assert matrix["fake-npu"].reason.startswith("not built here: backend 'fakenpu' not available")
    bad = matrix["ort-fp16"]
    assert bad.status == ERROR and "compile failed" in bad.reason and "fp16" in bad.reason
    rtx = matrix["rtx-gpu-tensorrt"]
    if rtx.status != PASSED:  # where TensorRT and a GPU exist, the engine may really run and pass
        assert rtx.status in (NOT_RUN, FAILED)
    if rtx.status == NOT_RUN:
        assert rtx.built and rtx.report["gate"]["passed"] is None and rtx.report["run"]["status"] == NOT_RUN
        assert (matrix.out_dir / "rtx-gpu-tensorrt" / "report.json").exists()
    assert not matrix.ok


def test_matrix_ok_counts_not_run_targets_neither_as_passed_nor_as_failures(matrix):
    from edgekd.matrix import MatrixResult, TargetResult

    runnable = [r for r in matrix.results if r.status in (PASSED, FAILED)]
    not_run = TargetResult("somewhere-else", NOT_RUN, "not run here: needs a device")
    assert MatrixResult([*runnable, not_run], matrix.out_dir).ok == all(r.status == PASSED for r in runnable)
    assert not MatrixResult([TargetResult("x", NOT_BUILT, "not built here: ...")], matrix.out_dir).ok
    assert not_run.passed is False


def test_manifest_records_hashes_versions_seeds_and_revision(matrix):
    manifest = json.loads(matrix.manifest_path.read_text())
    assert manifest["command"] == "pytest matrix" and manifest["seeds"]["build"] == 0
    assert manifest["tools"]["onnxruntime"] and manifest["tools"]["torch"]
    assert "revision" in manifest["git"] and len(manifest["inputs"]["teacher"]["sha256"]) == 64
    entry = manifest["targets"]["x86-cpu-onnxruntime"]
    for name, info in entry["files"].items():
        assert file_sha256(matrix.out_dir / entry["folder"] / name) == info["sha256"]
    assert {"model.onnx", "preprocess.json"} <= set(entry["files"])
    assert manifest["targets"]["fake-npu"]["status"] == NOT_BUILT and "files" not in manifest["targets"]["fake-npu"]


def test_report_html_lists_every_target_and_every_not_run_reason(matrix):
    html = matrix.html_path.read_text()
    assert html.startswith("<!DOCTYPE html>") and "<script" not in html and "<link" not in html
    assert not re.search(r"(src|href)=[\"']?(https?:|//)", html)  # self-contained: nothing to fetch
    text = unescape(html)
    for r in matrix.results:
        assert r.target in text and r.reason in text
    assert html.count("<svg") >= 3  # Pareto, per-class deltas, distillation curves


def test_build_all_skips_distillation_when_no_target_of_a_format_can_be_built(digits, digits_teacher, tmp_path):
    fake = tmp_path / "fake-npu.toml"
    fake.write_text(FAKE.format(name="fake-npu", backend="fakenpu", weights="int4"))
    train, val, spec = digits
    m = build_all(digits_teacher, train, val, targets=[fake], out_dir=tmp_path / "out", spec=spec, progress=False)
    assert m["fake-npu"].status == NOT_BUILT and not m.ok
    assert "skipped" in next(iter(m.manifest["shared_distillation"].values()))
    assert (tmp_path / "out" / "report.html").exists() and not (tmp_path / "out" / "_work").exists()


def test_build_all_is_reproducible_bit_for_bit(digits, digits_teacher, tmp_path):
    train, val, spec = digits
    hashes = []
    for run in ("a", "b"):
        m = build_all(digits_teacher, train, val, targets=["x86-cpu-onnxruntime"], out_dir=tmp_path / run,
                      spec=spec, student=SMALL, epochs=1, progress=False, latency_runs=5, html=False)
        files = m.manifest["targets"]["x86-cpu-onnxruntime"]["files"]
        hashes.append({name: files[name]["sha256"] for name in ("model.onnx", "model.fp32.onnx")})
        assert m.manifest["targets"]["x86-cpu-onnxruntime"]["reproducible"]["bit_identical"] is True
    assert hashes[0] == hashes[1]


def test_cli_build_rejects_all_together_with_target():
    result = CliRunner().invoke(app, ["build", "--all", "--target", "x86-cpu-onnxruntime"])
    assert result.exit_code == 2


def test_cli_build_rejects_unknown_target_before_any_work(tmp_path):
    result = CliRunner().invoke(app, ["build", "--target", "no-such-device", "--out", str(tmp_path)])
    assert result.exit_code == 2 and not any(tmp_path.iterdir())


def test_cli_targets_lists_what_builds_and_validates_here():
    result = CliRunner().invoke(app, ["targets"])
    assert result.exit_code == 0
    for t in list_targets():
        assert t.name in result.output
    assert result.output.count("build here:") == len(list_targets())


def test_ethos_u55_builds_in_the_matrix_and_reports_a_labelled_reference_check(digits, digits_teacher, tmp_path):
    from rich.console import Console

    from edgekd.backends.base import get_backend
    from edgekd.report.console import matrix_table

    ok, why = get_backend("ethosu").can_compile()
    if not ok:
        pytest.skip(why)
    train, val, spec = digits
    m = build_all(digits_teacher, train, val, targets=["ethos-u55"], out_dir=tmp_path, spec=spec, student=SMALL,
                  epochs=1, progress=False, latency_runs=5)
    r = m["ethos-u55"]
    assert r.status == NOT_RUN and r.built and m.ok  # built, never counted as passed, does not fail the build
    art = r.report["artifact"]
    check = art["reference_check"]
    assert "not the NPU" in check["runtime"] and check["samples"] == len(val)
    assert check["agreement_student"] >= 0.95 and isinstance(check["within_accuracy_gate"], bool)
    lat = r.report["run"]["latency"]
    assert lat["kind"] == "predicted" and "Vela" in lat["how"] and lat["ms"] > 0
    assert set(m.manifest["targets"]["ethos-u55"]["files"]) >= {"model_vela.tflite", "model.int8.tflite"}
    seconds = r.report["run"]["seconds"]  # the target's own stage and the shared one, apart
    assert seconds["compile_and_validate"] > 0 and seconds["shared_distillation"] > 0
    assert "reference run" in m.html_path.read_text()
    console = Console(record=True, width=250)
    console.print(matrix_table(m))
    assert "(reference run)" in console.export_text()


def test_intel_npu_and_jetson_get_a_labelled_reference_run_of_their_int8_graph(digits, digits_teacher, tmp_path):
    train, val, spec = digits
    m = build_all(digits_teacher, train, val, targets=["intel-npu-openvino", "jetson-orin-tensorrt",
                                                       "rtx-gpu-tensorrt"],
                  out_dir=tmp_path, spec=spec, student=SMALL, epochs=2, progress=False, latency_runs=5, html=False)
    for name, words in (("intel-npu-openvino", "not the NPU"), ("jetson-orin-tensorrt", "not TensorRT")):
        r = m[name]
        if r.status != NOT_RUN:  # an NPU or a GPU with TensorRT here: validated for real instead
            continue
        check = r.report["artifact"]["reference_check"]
        assert words in check["runtime"] and check["agreement_student"] >= 0.9, name
    rtx = m["rtx-gpu-tensorrt"]
    if rtx.status == NOT_RUN:  # fp16: no quantized graph to check, so no reference claimed
        assert "reference_check" not in rtx.report["artifact"]


def test_each_format_group_reports_its_own_search_even_when_the_distillation_is_shared(digits, digits_teacher,
                                                                                     tmp_path):
    from edgekd.backends.base import get_backend

    if not get_backend("ethosu").can_compile()[0]:
        pytest.skip(get_backend("ethosu").can_compile()[1])
    train, val, spec = digits
    m = build_all(digits_teacher, train, val, targets=["ethos-u55", "x86-cpu-onnxruntime"], out_dir=tmp_path,
                  spec=spec, epochs=1, progress=False, latency_runs=5)
    kinds = {r.target: r.report["search"]["latency_kind"] for r in m.results}
    assert kinds["ethos-u55"] == "vela" and kinds["x86-cpu-onnxruntime"] != "vela"  # each its own latency model
    for r in m.results:
        assert r.report["run"]["seconds"]["shared_search"] == r.report["search"]["seconds"]
    assert m.html_path.read_text().count("Student search [") == 2


def test_latency_record_says_whether_a_measured_or_predicted_latency_fits_the_budget():
    from edgekd.capability import Capability, latency_record

    target = load_target("ethos-u55")  # 1.0 ms budget, Vela-predicted
    cap = Capability(target.name, "ethosu", True, "", False, "no board", False, "no board")
    report = {"artifact": {"details": {"predicted_latency_ms": {"ms": 1.5, "source": "Vela estimate"}},
                           "latency_model": {}, "latency_predicted_ms": None}}
    record = latency_record(report, cap, target)
    assert record["kind"] == "predicted" and record["budget_ms"] == 1.0 and record["within_budget"] is False
    report["artifact"]["details"]["predicted_latency_ms"]["ms"] = 0.4
    assert latency_record(report, cap, target)["within_budget"] is True


def test_build_all_compiles_the_teacher_for_every_built_target_as_the_row_to_beat(matrix):
    x86 = matrix["x86-cpu-onnxruntime"].report
    t = x86["teacher_artifact"]
    assert t["status"] == "run here" and t["latency_kind"] == "measured" and t["precision"] in ("int8", "fp32")
    assert (matrix.out_dir / t["path"]).exists() and matrix["x86-cpu-onnxruntime"].teacher_artifact is not None
    versus = x86["versus_teacher"]
    assert versus["speedup_vs_compiled_teacher"] == pytest.approx(t["latency_p50_ms"] / x86["run"]["latency"]["ms"])
    assert versus["speedup_basis"] == "measured"
    # auto-ship: the student when faster, unless it fails the accuracy gate the compiled teacher passes (a
    # search that times its finalists on a loaded machine can pick a student that does)
    student_lost_gate = x86["gate"]["passed"] is False and t["passes_accuracy_gate"]
    assert x86["ship"]["choice"] == ("student" if versus["student_faster"] and not student_lost_gate else "teacher")
    pi = matrix["raspberry-pi-onnxruntime"].report  # runs here for accuracy, but this CPU is not the Pi
    assert pi["teacher_artifact"]["status"] == "run here" and pi["teacher_artifact"]["latency_kind"] != "measured"
    assert pi["versus_teacher"]["speedup_vs_compiled_teacher"] is None
    rtx = matrix["rtx-gpu-tensorrt"]
    if rtx.status == NOT_RUN:  # the teacher is built for the GPU too, and not run here either
        assert rtx.report["teacher_artifact"]["status"] == "not run here"
        assert (matrix.out_dir / rtx.report["teacher_artifact"]["path"]).exists()
    built = {r.target for r in matrix.results if r.teacher_artifact is not None}
    assert {p.name for p in (matrix.out_dir / "teacher").iterdir()} == built  # one teacher compile per target
    assert "fake-npu" not in built


def test_report_html_and_markdown_show_the_compiled_teacher_row(matrix):
    text = unescape(matrix.html_path.read_text())
    assert "Versus the teacher compiled for the same runtime" in text
    md = (matrix.out_dir / "x86-cpu-onnxruntime" / "report.md").read_text()
    assert f"teacher artifact {matrix['x86-cpu-onnxruntime'].report['teacher_artifact']['precision']}" in md


def test_cli_build_rejects_an_unknown_ship_choice_before_any_work(tmp_path):
    result = CliRunner().invoke(app, ["build", "--ship", "both", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2 and "--ship" in result.output
    assert not (tmp_path / "out").exists()


def test_cli_summary_is_plain_and_complete_when_stdout_is_not_a_terminal(matrix):
    import io

    from edgekd.report.console import MATRIX_COLUMNS, print_summary

    out = io.StringIO()  # not a tty
    print_summary(matrix, out)
    text = out.getvalue()
    assert "─" not in text and "…" not in text and "\x1b[" not in text  # no box, no cut cells, no colour
    header = text.splitlines()[1]
    assert all(col in header for col in MATRIX_COLUMNS)
    for r in matrix.results:
        assert r.target in text
    x86 = next(line for line in text.splitlines() if line.startswith("x86-cpu-onnxruntime"))
    speed = matrix["x86-cpu-onnxruntime"].report["versus_teacher"]["speedup_vs_compiled_teacher"]
    assert (f"{speed:.2f}×" if speed < 10 else f"{speed:.1f}×") in x86
