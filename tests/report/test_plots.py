import re

import pytest

pytest.importorskip("matplotlib")

from edgekd.report import plots  # noqa: E402


def test_pareto_front_keeps_only_points_nothing_beats():
    pts = [{"name": n, "accuracy": a, "latency_ms": l} for n, a, l in
           [("fast-bad", 0.90, 0.1), ("slow-good", 0.99, 1.0), ("dominated", 0.89, 0.5), ("mid", 0.95, 0.3)]]
    assert [p["name"] for p in plots.pareto_front(pts)] == ["fast-bad", "mid", "slow-good"]


def test_pareto_plot_is_deterministic_svg_and_skips_points_without_latency():
    pts = [{"name": "a", "accuracy": 0.9, "latency_ms": 0.2, "kind": "measured"},
           {"name": "b", "accuracy": 0.95, "latency_ms": 0.4, "kind": "predicted"},
           {"name": "c", "accuracy": 0.97, "latency_ms": None, "kind": "none"}]
    first, second = plots.pareto(pts, 0.98), plots.pareto(pts, 0.98)
    assert first.startswith("<svg") and first == second
    assert ">a<" in first and ">b<" in first and ">c<" not in first  # text stays text (svg.fonttype none)
    assert plots.pareto(pts[2:], 0.98) is None


def test_class_deltas_colour_points_below_the_teacher():
    svg = plots.class_deltas({"int8": [0.9, 1.0]}, [1.0, 1.0], ["zero", "one"])
    assert "-10.0" in svg and "+0.0" in svg and "zero" in svg


def test_search_cloud_needs_candidates_with_score_and_latency():
    assert plots.search_cloud({}) is None
    svg = plots.search_cloud({"candidates": [{"score": 1.0, "predicted_latency_ms": 0.3},
                                             {"score": 2.0, "latency_ms": 0.5}],
                              "chosen": {"score": 2.0, "latency_ms": 0.5}, "budget_ms": 0.6})
    assert svg.startswith("<svg") and "chosen" in svg


def test_distill_curves_plot_every_loss_term_and_accuracy():
    hist = [{"epoch": 1, "kd": 1.0, "ce": 0.5, "val_accuracy": 0.8}, {"epoch": 2, "kd": 0.5, "ce": 0.3,
                                                                        "val_accuracy": 0.9}]
    svg = plots.distill_curves({"int8": hist})
    assert "int8: kd" in svg and "int8: ce" in svg and plots.distill_curves({"x": []}) is None


def test_scope_ids_prefixes_ids_and_their_references():
    svg = '<svg><clipPath id="p1"/><g clip-path="url(#p1)"/><use xlink:href="#p1"/></svg>'
    out = plots.scope_ids(svg, "fig2")
    assert 'id="fig2-p1"' in out and "url(#fig2-p1)" in out and 'href="#fig2-p1"' in out and '"p1"' not in out


@pytest.mark.parametrize("accs, low, high", [([0.988, 0.989], None, None), ([0.999, 1.0], None, 100.0),
                                             ([0.5, 0.9], 0.0, None)])
def test_accuracy_limits_span_two_points_at_least_and_stay_within_0_and_100(accs, low, high):
    lo, hi = plots.accuracy_limits(accs)
    assert hi - lo >= 2.0 and 0.0 <= lo and hi <= 100.0
    assert lo <= min(accs) * 100 and hi >= max(accs) * 100
    if high is not None:
        assert hi == high


def test_class_deltas_write_white_labels_on_dark_cells_only():
    svg = plots.class_deltas({"int8": [0.5, 0.99]}, [1.0, 1.0], ["zero", "one"])
    labels = re.findall(r'<text[^>]*style="[^"]*fill: ?(#[0-9a-f]+|white|black)[^"]*"[^>]*>([^<]*)<', svg)
    colours = {text.strip(): fill for fill, text in labels}
    assert colours.get("-50.0") in ("#ffffff", "white")
    assert "-1.0" in svg and colours.get("-1.0", "black") in ("#000000", "black")  # matplotlib omits its default


def test_search_cloud_rings_the_finalists_and_marks_the_compiled_teacher():
    svg = plots.search_cloud({"candidates": [{"score": 1.0, "latency_ms": 0.3}, {"score": 2.0, "latency_ms": 0.5}],
                              "finalists": [{"score": 2.0, "latency_ms": 0.5}], "teacher_ms": 0.55,
                              "chosen": {"score": 2.0, "latency_ms": 0.5}, "budget_ms": 0.55})
    assert "finalists" in svg and "compiled teacher" in svg
