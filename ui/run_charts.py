"""Plotly figures for training runs: how accuracy and training time grow with the training set, and sweeps."""

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from digitlab.lab import sweeps
from digitlab.models.registry import REGISTRY
from ui.charts import MUTED, model_colours

# The same colour per family as on the rest of the dashboard; dashes tell the settings of one family apart.
FAMILY_COLOURS = model_colours(list(REGISTRY))
DASHES = ("solid", "dash", "dot", "dashdot", "longdash")


def size_tick(size: int) -> str:
    """A training-set size as a short tick label: ``500``, ``1k``, ``2.5k``, ``60k``."""
    if size < 1_000:
        return f"{size:,}"
    return f"{size / 1_000:g}k"


def learning_curves(rows: Sequence[dict], key: str, label: str, *, percent: bool) -> go.Figure:
    """One line per family and settings: ``key`` against the number of training images, on a log x axis."""
    figure = go.Figure()
    dashes: dict[str, int] = {}
    value_format = ".2%" if percent else ".1f"
    for curve in dict.fromkeys(row["curve"] for row in rows):
        own = [row for row in rows if row["curve"] == curve]
        family = own[0]["family"]
        dash = DASHES[dashes.setdefault(family, 0) % len(DASHES)]
        dashes[family] += 1
        figure.add_scatter(
            x=[row["train_size"] for row in own],
            y=[row[key] for row in own],
            customdata=[row["run"] for row in own],
            mode="lines+markers",
            name=curve,
            line={"color": FAMILY_COLOURS.get(family), "dash": dash},
            hovertemplate=f"run #%{{customdata}}: %{{x:,}} images, %{{y:{value_format}}}<extra>{curve}</extra>",
        )
    # Ticks at the sizes that were trained on, in words: plotly's own log ticks read "5, 1000, 2, 5, 10k".
    sizes = sorted({row["train_size"] for row in rows})
    figure.update_xaxes(
        type="log", title="training images", tickvals=sizes, ticktext=[size_tick(size) for size in sizes]
    )
    figure.update_yaxes(title=None, tickformat=".1%" if percent else None)
    figure.update_layout(
        height=360,
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        title={"text": label, "font": {"size": 15}},
        legend={"orientation": "h", "y": -0.3, "x": 0},
    )
    return figure


def _hover_values(result: sweeps.SweepResult, point: sweeps.SweepPoint) -> str:
    return ", ".join(
        f"{sweeps.SWEEPABLE[name]} {sweeps.format_value(name, point.settings[name])}" for name in result.settings
    )


def sweep_curve(result: sweeps.SweepResult, colour: str) -> go.Figure:
    """A one-setting sweep: test accuracy (and, dotted, training time) against the swept values, a marker per run."""
    (name,) = result.settings
    done = result.succeeded
    figure = make_subplots(specs=[[{"secondary_y": True}]])
    figure.add_scatter(
        x=[point.settings[name] for point in done],
        y=[point.accuracy for point in done],
        customdata=[point.run_id for point in done],
        text=[_hover_values(result, point) for point in done],
        mode="lines+markers",
        marker={"size": 11},
        line={"color": colour},
        name="test accuracy",
        hovertemplate="run #%{customdata}: %{text}<br>test accuracy %{y:.2%}<extra></extra>",
    )
    figure.add_scatter(
        x=[point.settings[name] for point in done],
        y=[point.training_seconds for point in done],
        customdata=[point.run_id for point in done],
        mode="lines+markers",
        line={"color": MUTED, "dash": "dot"},
        name="training time (s)",
        hovertemplate="run #%{customdata}: %{y:.1f} s<extra>training time</extra>",
        secondary_y=True,
    )
    values = result.sweep.axes[name]
    figure.update_xaxes(
        type="log" if name in sweeps.LOG_SCALE else "linear",
        title=sweeps.SWEEPABLE[name],
        tickvals=values,
        ticktext=[sweeps.format_value(name, value) for value in values],
    )
    figure.update_yaxes(title="test accuracy", tickformat=".1%", secondary_y=False)
    figure.update_yaxes(title="training (s)", showgrid=False, rangemode="tozero", secondary_y=True)
    figure.update_layout(
        height=360,
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        title={"text": result.title(), "font": {"size": 15}},
        legend={"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0},
        clickmode="event+select",
    )
    return figure


def sweep_heatmap(result: sweeps.SweepResult) -> go.Figure:
    """A two-setting sweep: test accuracy in a grid, each cell labelled with its run; a cell without an accuracy
    (a run still in line, training, failed or cancelled) is uncoloured and labelled with the run's status."""
    first, second = result.settings
    columns = [sweeps.format_value(first, value) for value in result.sweep.axes[first]]
    rows = [sweeps.format_value(second, value) for value in result.sweep.axes[second]]
    grid = result.grid()
    accuracies = [[point.accuracy if point else None for point in row] for row in grid]
    labels = [[_cell_label(point) for point in row] for row in grid]
    figure = go.Figure(
        go.Heatmap(
            x=columns,
            y=rows,
            z=accuracies,
            text=labels,
            texttemplate="%{text}",
            colorscale="Viridis",
            colorbar={"title": "accuracy", "tickformat": ".1%", "thickness": 12},
            hoverinfo="skip",
        )
    )
    # Heat map cells cannot be selected in the browser; a marker per run over each cell makes a click pick the run.
    placed = [(x, y, point) for y, row in zip(rows, grid, strict=True) for x, point in zip(columns, row, strict=True)]
    placed = [(x, y, point) for x, y, point in placed if point is not None]
    figure.add_scatter(
        x=[x for x, _, _ in placed],
        y=[y for _, y, _ in placed],
        customdata=[point.run_id for _, _, point in placed],
        text=[_cell_hover(result, point) for _, _, point in placed],
        mode="markers",
        marker={"size": 28, "symbol": "square", "opacity": 0.01, "color": "white"},
        hovertemplate="%{text}<extra></extra>",
        showlegend=False,
    )
    figure.update_xaxes(title=sweeps.SWEEPABLE[first], type="category")
    figure.update_yaxes(title=sweeps.SWEEPABLE[second], type="category")
    figure.update_layout(
        height=120 + 56 * len(rows),
        margin={"l": 8, "r": 8, "t": 36, "b": 8},
        title={"text": result.title(), "font": {"size": 15}},
        clickmode="event+select",
    )
    return figure


def _cell_label(point: sweeps.SweepPoint | None) -> str:
    if point is None:
        return ""
    if point.accuracy is None:
        return f"{point.status}<br>#{point.run_id}"
    return f"{point.accuracy:.2%}<br>#{point.run_id}"


def _cell_hover(result: sweeps.SweepResult, point: sweeps.SweepPoint) -> str:
    outcome = f"test accuracy {point.accuracy:.2%}" if point.accuracy is not None else point.status
    return f"run #{point.run_id}: {_hover_values(result, point)}<br>{outcome}"
