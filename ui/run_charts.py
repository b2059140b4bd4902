"""Plotly figures for training runs: how accuracy and training time grow with the training set."""

from collections.abc import Sequence

import plotly.graph_objects as go

from digitlab.models.registry import REGISTRY
from ui.charts import model_colours

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
