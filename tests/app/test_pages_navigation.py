"""Moving between pages and reading the Compare page's charts, run headless with Streamlit's AppTest.

Choices made on a page must still be there after a visit to another page, and the charts must not mislead:
score bars start at zero and the confusion matrices share one colour scale.
"""

import json

import numpy as np
import pytest

from digitlab.insight import comparison
from tests.app.apptest import assert_no_exception, card_indices, confusion_specs, dashboard, page, plotly_specs


def test_the_explorers_filters_and_the_compare_cell_survive_a_visit_to_another_page(manifest, test_labels):
    app = dashboard()
    app.switch_page("pages/explore.py").run()
    app.selectbox(key="explore_true").set_value(4).run()
    app.selectbox(key="explore_order").set_value("index").run()
    app.button(key=f"inspect-{card_indices(app)[0]}").click().run()
    assert any("Test image #" in element.value for element in app.markdown)

    app.switch_page("pages/compare.py").run()
    app.selectbox(key="cell_true").set_value(7).run()
    app.selectbox(key="cell_predicted").set_value(2).run()
    app.switch_page("pages/explore.py").run()

    assert_no_exception(app)
    assert app.selectbox(key="explore_true").value == 4
    assert app.selectbox(key="explore_order").value == "index"
    assert not any("Test image #" in element.value for element in app.markdown), "the dialog stays closed"

    app.switch_page("pages/compare.py").run()

    assert_no_exception(app)
    assert (app.selectbox(key="cell_true").value, app.selectbox(key="cell_predicted").value) == (7, 2)


def error_heatmaps(app) -> list[dict]:
    """The trace of every confusion matrix that colours its mistakes (the first one greys the diagonal)."""
    return [spec["data"][1] for spec in confusion_specs(app)]


@pytest.mark.parametrize("normalised", [False, True])
def test_confusion_matrices_share_one_colour_scale(manifest, test_labels, normalised):
    app = page("compare").run()
    app.toggle(key="confusion_normalised").set_value(normalised).run()

    assert_no_exception(app)
    matrices = [np.asarray(entry.metrics.confusion_matrix, dtype=float) for entry in manifest.models.values()]
    if normalised:
        matrices = [comparison.row_normalised(matrix) for matrix in matrices]
    largest = max(float((matrix - np.diag(np.diag(matrix))).max()) for matrix in matrices)
    traces = error_heatmaps(app)
    assert len(traces) == len(manifest.models)
    assert [trace.get("zmax") for trace in traces] == pytest.approx([largest] * len(traces))
    assert all(trace["zmin"] == 0 for trace in traces)


def test_score_bars_show_what_each_score_lacks_on_an_axis_from_zero(manifest, test_labels):
    app = page("compare").run()

    assert_no_exception(app)
    specs = {spec["layout"]["title"]["text"]: spec for spec in plotly_specs(app) if spec["layout"].get("title")}
    accuracy = specs["Error rate (lower is better)"]
    (bars,) = accuracy["data"]
    expected = [1 - entry.accuracy for entry in manifest.models.values()]
    assert bars["y"] == pytest.approx(expected)
    assert accuracy["layout"]["yaxis"]["range"][0] == 0
    assert max(bars["y"]) <= accuracy["layout"]["yaxis"]["range"][1]

    (per_class,) = [spec for spec in plotly_specs(app) if spec["layout"].get("barmode") == "group"]
    assert per_class["layout"]["yaxis"]["range"][0] == 0
    recall = np.asarray(manifest.models[next(iter(manifest.models))].metrics.per_class["recall"], dtype=float)
    assert per_class["data"][0]["y"] == pytest.approx((1 - recall).tolist())


def legend_is_clear_of_the_toolbar(spec: dict, config: dict) -> bool:
    """Plotly's toolbar covers the top right corner: a chart with it shows its legend below the plot, or none."""
    layout = spec["layout"]
    has_legend = layout.get("showlegend", True) and len(spec["data"]) > 1
    return config.get("displayModeBar") is False or not has_legend or layout.get("legend", {}).get("y", 1) < 0


@pytest.mark.parametrize("name", ["compare", "dataset", "explore"])
def test_no_chart_toolbar_covers_a_legend(manifest, test_labels, name):
    app = page(name).run()

    assert_no_exception(app)
    charts = app.get("plotly_chart")
    assert charts
    for chart in charts:
        spec, config = json.loads(chart.proto.spec), json.loads(chart.proto.config or "{}")
        assert legend_is_clear_of_the_toolbar(spec, config), spec["layout"].get("title")
