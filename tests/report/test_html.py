import re
from html import unescape

from edgekd.report.html import render, write_html
from edgekd.schema.sections import Status


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
    assert "0.05 ms <span class='muted'>(measured)</span>" in _row(page, "x86-cpu-onnxruntime")
    assert "none: not on the device" in _row(page, "raspberry-pi-onnxruntime")


def test_html_verdict_is_not_ok_when_a_target_failed_its_gate(synthetic_matrix):
    assert "NOT OK" in render(synthetic_matrix)
    synthetic_matrix.results = [r for r in synthetic_matrix.results if r.status in (Status.PASSED, Status.NOT_RUN)]
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


def _text(page: str) -> str:
    page = re.sub(r"<svg.*?</svg>", "", page, flags=re.S)
    return unescape(re.sub(r"<[^>]+>", " ", re.sub(r"<style.*?</style>", "", page, flags=re.S)))


def test_html_shows_the_compiled_teacher_and_both_speedups(synthetic_matrix):
    page = render(synthetic_matrix)
    table = page[page.index("Versus the teacher compiled"):]
    row = re.search(r"<tr><td>x86-cpu-onnxruntime</td>.*?</tr>", table, re.S).group(0)
    cells = [unescape(re.sub(r"<[^>]+>", "", c)) for c in re.findall(r"<td>(.*?)</td>", row)]
    assert cells[3] == "0.105 ms (measured)" and cells[4] == "0.05 ms (measured)"
    assert cells[5] == "2.10×" and cells[6] == "9.12×"  # vs compiled teacher (headline), vs torch eager
    assert cells[9] == "yes" and cells[10] == "student"


def test_html_rounds_numbers_for_people_and_shows_no_python_values(synthetic_matrix, search_summary):
    synthetic_matrix.results[0].report["search"] = search_summary
    text = _text(render(synthetic_matrix))
    assert not re.search(r"\d\.\d{5,}", text), re.search(r".{40}\d\.\d{5,}.{20}", text)
    assert "None" not in text and "{'" not in text and "(1, 1, 1)" not in text
    assert "resnet depths 1-1-1 widths 8-16-32 relu" in text and "default family" in text
