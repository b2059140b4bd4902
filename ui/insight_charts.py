"""The test-set map: every test image as a dot coloured by its label, each model's mistakes marked on top."""

import numpy as np
import plotly.graph_objects as go

from ui.charts import PALETTE, selected_points

# Ten well-separated colours for the ten labels (plotly's "D3" qualitative scale).
DIGIT_COLOURS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf",
)  # fmt: skip
MISTAKE_SYMBOLS = ("x-thin-open", "circle-open", "diamond-open", "square-open", "cross-thin-open")


def test_map_figure(
    coordinates: np.ndarray, labels: np.ndarray, mistakes: dict[str, np.ndarray], titles: dict[str, str]
) -> go.Figure:
    """One trace per label and one per model's mistakes; each point carries its test index as customdata."""
    figure = go.Figure()
    for digit in range(10):
        members = np.flatnonzero(labels == digit)
        figure.add_trace(
            go.Scattergl(
                x=coordinates[members, 0],
                y=coordinates[members, 1],
                mode="markers",
                name=f"label {digit}",
                marker={"size": 3, "color": DIGIT_COLOURS[digit], "opacity": 0.6},
                customdata=members,
                hovertemplate=f"test #%{{customdata}} · label {digit}<extra></extra>",
            )
        )
    for position, (name, indices) in enumerate(mistakes.items()):
        figure.add_trace(
            go.Scattergl(
                x=coordinates[indices, 0],
                y=coordinates[indices, 1],
                mode="markers",
                name=f"{titles.get(name, name)} wrong ({len(indices)})",
                marker={
                    "size": 9,
                    "symbol": MISTAKE_SYMBOLS[position % len(MISTAKE_SYMBOLS)],
                    "color": PALETTE[position % len(PALETTE)],
                    "line": {"width": 1.5, "color": PALETTE[position % len(PALETTE)]},
                },
                customdata=indices,
                text=[f"label {labels[index]}" for index in indices],
                hovertemplate=f"test #%{{customdata}} · %{{text}} · {titles.get(name, name)} wrong<extra></extra>",
            )
        )
    figure.update_xaxes(visible=False)
    figure.update_yaxes(visible=False, scaleanchor="x")
    figure.update_layout(
        height=680,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        dragmode="lasso",
        # Below the map, where plotly's toolbar (top right) does not cover it.
        legend={"itemsizing": "constant", "orientation": "h", "y": -0.02, "yanchor": "top", "x": 0},
        clickmode="event+select",
    )
    return figure


def selected_test_indices(event) -> np.ndarray | None:
    """The test indices of the points selected on the map, or None when nothing is selected."""
    points = selected_points(event)
    indices = [point["customdata"] for point in points if "customdata" in point]
    indices = [index[0] if isinstance(index, list) else index for index in indices]
    return np.unique(np.asarray(indices, dtype=np.int64)) if indices else None
