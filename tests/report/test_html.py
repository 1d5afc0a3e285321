import re
from html import unescape

from edgekd.report.html import render, write_html


def _row(page: str, target: str) -> str:
    match = re.search(r"<tr><td><a href='#t-" + re.escape(target) + r"'>.*?</tr>", page, re.S)
    assert match, f"no summary row for {target}"
    return match.group(0)


def test_html_never_shows_a_not_run_target_as_passed(synthetic_matrix):
    page = render(synthetic_matrix)
    for target in ("rtx-gpu-tensorrt", "fake-npu"):
        row = _row(page, target)
        assert "badge passed" not in row
    assert "badge not-run-here" in _row(page, "rtx-gpu-tensorrt")
    assert "not run here: needs TensorRT and an NVIDIA GPU" in unescape(page)
    assert "not built here: backend 'fakenpu' not available" in unescape(page)


def test_html_labels_latency_as_measured_or_not_measured(synthetic_matrix):
    page = render(synthetic_matrix)
    assert "0.050 <span class='muted'>(measured)</span>" in _row(page, "x86-cpu-onnxruntime")
    assert "none: not measured on the device" in _row(page, "raspberry-pi-onnxruntime")


def test_html_verdict_is_not_ok_when_a_target_failed_its_gate(synthetic_matrix):
    assert "NOT OK" in render(synthetic_matrix)
    synthetic_matrix.results = [r for r in synthetic_matrix.results if r.status in ("passed", "not run here")]
    assert "NOT OK" not in render(synthetic_matrix)


def test_html_lists_kept_in_float_layers_with_their_reason(synthetic_matrix):
    assert "/fc/Gemm (most sensitive layer)" in unescape(render(synthetic_matrix))


def test_html_is_self_contained_with_inline_plots(synthetic_matrix, tmp_path):
    path = write_html(synthetic_matrix, tmp_path / "report.html")
    page = path.read_text()
    assert "<script" not in page and "<link" not in page
    assert not re.search(r"(src|href)=[\"']?(https?:|//)", page)
    assert page.count("<svg") == 3  # Pareto, per-class deltas, distillation (no search in this build)
    assert "No student search was run" in page
    ids = re.findall(r'\bid="([^"]+)"', page)
    assert len(ids) == len(set(ids)), "inlined SVGs must not share element ids"


def test_html_plots_the_search_cloud_from_the_search_log(synthetic_matrix, tmp_path):
    import json

    log = tmp_path / "x86-cpu-onnxruntime" / "search.jsonl"  # build_all: _search/<target searched for>/
    log.parent.mkdir()
    log.write_text("\n".join(json.dumps({"score": s, "latency_ms": l, "arch": {}}) for s, l in
                             [(1.0, 0.2), (2.0, 0.3), (None, 0.4)]) + "\n")
    synthetic_matrix.results[0].report["search"] = {"score": 2.0, "predicted_latency_ms": 0.3, "score_name": "diswot",
                                                    "log": str(log), "limits": {"budget_ms": 0.5}}
    page = render(synthetic_matrix)
    assert page.count("<svg") == 4 and "Student search [x86-cpu-onnxruntime]" in page
    assert "No student search was run" not in page
