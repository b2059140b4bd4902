"""Plotly figures for the dashboard, each model drawn in the same colour on every page."""

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from digitlab.checks.time_to_accuracy import FamilyCurves
from digitlab.insight.calibration import BIN_COUNT
from digitlab.models.detector import ScoreHistogram

# Okabe-Ito colours: distinguishable with colour-vision deficiencies and on a projector.
PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
MUTED = "#B8BCC6"
# Dark enough to read as a line of its own beside a model's colour, as the baselines are drawn.
REFERENCE_GREY = "#6B7280"
DIGITS = list(range(10))
# Plotly's toolbar is noise on the small charts; the large ones keep it for zooming and saving.
COMPACT_CONFIG = {"displayModeBar": False}
# The toolbar sits over the top right corner of a chart, so legends go below the plot, where nothing covers them.
LEGEND_BELOW = {"orientation": "h", "y": -0.3, "yanchor": "top", "x": 0}


def model_colours(names: Sequence[str]) -> dict[str, str]:
    """A stable colour per model, in the order the models are listed."""
    return {name: PALETTE[position % len(PALETTE)] for position, name in enumerate(names)}


def readable_number(value: float) -> str:
    """Three significant digits without scientific notation: 1,629, 26.2, 0.477, 0.00036."""
    if abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 1:
        return f"{value:.3g}"
    return f"{value:.2g}"


def short_name(model: str) -> str:
    """The label a model gets where space is short, such as under a bar: its registry name in capitals."""
    return model.upper()


def selected_points(event) -> list[dict]:
    """The points a plotly chart's selection event holds (clicked, boxed or lassoed); none when there is no event."""
    return (event or {}).get("selection", {}).get("points", [])


def _compact(figure: go.Figure, height: int, **layout: Any) -> go.Figure:
    figure.update_layout(height=height, margin={"l": 8, "r": 8, "t": 36, "b": 8}, **layout)
    return figure


def probability_bars(probabilities: Sequence[float], colour: str) -> go.Figure:
    """Ten bars of one model's class probabilities, the chosen digit in the model's colour."""
    values = np.asarray(probabilities, dtype=float)
    chosen = int(values.argmax())
    figure = go.Figure(
        go.Bar(
            x=DIGITS,
            y=values,
            marker_color=[colour if digit == chosen else MUTED for digit in DIGITS],
            text=[f"{value:.0%}" if value >= 0.05 else "" for value in values],
            textposition="outside",
            textfont={"size": 11},
            cliponaxis=False,
            hovertemplate="digit %{x}: %{y:.2%}<extra></extra>",
        )
    )
    figure.update_xaxes(tickmode="array", tickvals=DIGITS, fixedrange=True, title=None)
    figure.update_yaxes(range=[0, 1.15], tickformat=".0%", fixedrange=True, showticklabels=False, title=None)
    figure = _compact(figure, 130, showlegend=False)
    figure.update_layout(margin={"t": 16})
    return figure


def shortfall_title(label: str) -> str:
    """The title of a chart of what a score lacks to be perfect: the error rate for the accuracy, by its own name."""
    if label.lower() == "accuracy":
        return "Error rate (lower is better)"
    return f"{label}: what it lacks to 100 % (lower is better)"


def metric_bars(rows: Sequence[dict], key: str, label: str, colours: dict[str, str], *, log: bool, percent: bool):
    """One bar per model for a single figure, on a log axis when the values span orders of magnitude.

    Scores near 100 % are drawn as what they lack to 100 % (for the accuracy, the error rate) on an axis from
    zero: bars of the scores themselves would either look equal or, on an axis starting near the lowest score,
    make a difference of a few tenths of a point look like half the bar.
    """
    shown = [row for row in rows if row.get(key) is not None]
    values = [row[key] for row in shown]
    heights = [1 - value for value in values] if percent else values
    text = [f"{height:.2%}" if percent else readable_number(height) for height in heights]
    hover = f"{label} %{{customdata[1]:.2%}}, %{{text}} short of 100 %" if percent else "%{text}"
    figure = go.Figure(
        go.Bar(
            x=[short_name(row["model"]) for row in shown],
            y=heights,
            customdata=[[row["title"], value] for row, value in zip(shown, values, strict=True)],
            marker_color=[colours[row["model"]] for row in shown],
            text=text,
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{customdata[0]}: " + hover + "<extra></extra>",
        )
    )
    title = shortfall_title(label) if percent else label
    # Labels often end in their unit's brackets ("(ms)"), so the scale follows after a comma, not in more brackets.
    title = f"{title}, log scale" if log else title
    figure.update_xaxes(fixedrange=True)
    figure.update_yaxes(
        type="log" if log else "linear",
        # On a log axis only the powers of ten are labelled; the values sit on the bars.
        dtick=1 if log else None,
        tickformat=".1%" if percent else None,
        title=None,
        fixedrange=True,
    )
    if not log:
        # Bars are read by their length, so the axis starts at zero; the headroom keeps the labels inside.
        figure.update_yaxes(range=[0, max(heights, default=0) * 1.2 or 1])
    return _compact(figure, 320, title={"text": title, "font": {"size": 15}}, showlegend=False)


def per_class_bars(rows: Sequence[dict], metric: str, label: str, colours: dict[str, str]) -> go.Figure:
    """Grouped bars: for each digit, one bar per model, of what its score lacks to 100 % on an axis from zero."""
    figure = go.Figure()
    models = list(dict.fromkeys(row["model"] for row in rows))
    for model in models:
        own = [row for row in rows if row["model"] == model]
        figure.add_bar(
            x=[row["digit"] for row in own],
            y=[1 - row[metric] for row in own],
            customdata=[row[metric] for row in own],
            name=own[0]["title"],
            marker_color=colours[model],
            hovertemplate=f"{own[0]['title']}<br>digit %{{x}}: {label} %{{customdata:.2%}}, %{{y:.2%}} short of 100 %"
            "<extra></extra>",
        )
    highest = max((1 - row[metric] for row in rows), default=0)
    figure.update_xaxes(tickmode="array", tickvals=DIGITS, title="digit")
    figure.update_yaxes(range=[0, highest * 1.1 or 1], tickformat=".1%", title=shortfall_title(label))
    return _compact(figure, 400, barmode="group", legend=LEGEND_BELOW)


def largest_mistake(matrix: np.ndarray) -> float:
    """The largest off-diagonal value of a confusion matrix: its commonest mistake."""
    errors = np.asarray(matrix, dtype=float).copy()
    np.fill_diagonal(errors, 0)
    return float(errors.max())


def confusion_heatmap(
    matrix: np.ndarray,
    title: str,
    *,
    shares: bool,
    selected: tuple[int, int] | None = None,
    darkest: float | None = None,
):
    """A 10x10 heatmap, true digits down and predicted digits across, with a number in every cell.

    The diagonal (correct answers) would swamp the colour scale, so colours
    show only the mistakes and the diagonal is drawn in a neutral tone.
    ``darkest`` is the value drawn in the darkest red (by default this
    matrix's largest mistake); matrices shown side by side share it, so that
    one shade means one number in all of them.
    An invisible marker sits on every cell so that clicking a cell selects it.
    """
    values = np.asarray(matrix, dtype=float)
    errors = values.copy()
    np.fill_diagonal(errors, np.nan)
    # Empty cells stay blank so that the mistakes stand out; hovering still gives their value.
    text = [[(f"{value:.1%}" if shares else f"{value:,.0f}") if value else "" for value in row] for row in values]
    for digit in DIGITS:
        text[digit][digit] = f"<b>{values[digit][digit]:.1%}</b>" if shares else f"<b>{values[digit][digit]:,.0f}</b>"
    darkest = (darkest if darkest is not None else largest_mistake(values)) or 1.0
    # Numbers on the darkest reds are written in white so they stay readable.
    ink = np.where(np.nan_to_num(errors) > 0.55 * darkest, "#FFFFFF", "#1F2430").ravel().tolist()
    figure = go.Figure()
    figure.add_heatmap(
        z=np.where(np.eye(10, dtype=bool), 1.0, np.nan),
        x=DIGITS,
        y=DIGITS,
        colorscale=[[0, "#DDE3EA"], [1, "#DDE3EA"]],
        showscale=False,
        hoverinfo="skip",
    )
    figure.add_heatmap(
        z=errors,
        x=DIGITS,
        y=DIGITS,
        colorscale="Reds",
        zmin=0,
        zmax=darkest,
        showscale=False,
        hoverinfo="skip",
    )
    figure.add_scatter(
        x=np.tile(DIGITS, 10),
        y=np.repeat(DIGITS, 10),
        mode="markers+text",
        text=[cell for row in text for cell in row],
        textfont={"size": 10, "color": ink},
        marker={"size": 26, "opacity": 0, "symbol": "square"},
        # A selection must not fade the other cells' numbers, which plotly does to unselected points by default.
        selected={"marker": {"opacity": 0}},
        unselected={"marker": {"opacity": 0}},
        customdata=values.ravel(),
        hovertemplate=(
            "true %{y}, predicted %{x}: %{customdata:.1%}<extra></extra>"
            if shares
            else "true %{y}, predicted %{x}: %{customdata:,.0f} images<extra></extra>"
        ),
        showlegend=False,
    )
    if selected is not None:
        true_digit, predicted_digit = selected
        figure.add_shape(
            type="rect",
            x0=predicted_digit - 0.5,
            x1=predicted_digit + 0.5,
            y0=true_digit - 0.5,
            y1=true_digit + 0.5,
            line={"color": "#1F2430", "width": 3},
        )
    # The cells are square by shrinking the plot, not by widening an axis past the digits, which left a band of
    # nothing between the predicted digits and the first row.
    axes = {
        "tickmode": "array",
        "tickvals": DIGITS,
        "fixedrange": True,
        "showgrid": False,
        "zeroline": False,
        "constrain": "domain",
    }
    # The predicted digits run along the bottom, as in scikit-learn's ConfusionMatrixDisplay: along the top, their
    # axis title or its stand-in ran into the chart's title on a phone or into the digits on a wide screen.
    figure.update_xaxes(title="predicted digit", side="bottom", range=[-0.5, 9.5], automargin=True, **axes)
    figure.update_yaxes(
        title="true digit", range=[9.5, -0.5], scaleanchor="x", automargin=True, constraintoward="top", **axes
    )
    return _compact(figure, 420, title={"text": title, "font": {"size": 15}}, clickmode="event+select")


def training_curves(rows: Sequence[dict], title: str, colour: str) -> go.Figure:
    """Loss and accuracy per epoch side by side, training solid and validation dashed."""
    figure = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy"), horizontal_spacing=0.14)
    for column, quantity in enumerate(("loss", "accuracy"), start=1):
        for split, dash in (("train", "solid"), ("validation", "dash")):
            own = [row for row in rows if row["quantity"] == quantity and row["split"] == split]
            figure.add_scatter(
                x=[row["epoch"] for row in own],
                y=[row["value"] for row in own],
                mode="lines+markers",
                name=split,
                legendgroup=split,
                showlegend=column == 1,
                line={"color": colour, "dash": dash},
                row=1,
                col=column,
            )
    figure.update_xaxes(title="epoch", dtick=1 if len({row["epoch"] for row in rows}) <= 12 else None)
    # One decimal: a network's accuracy curve often lies within one percent, where whole percents repeat one tick.
    figure.update_yaxes(tickformat=".1%", row=1, col=2)
    figure.update_annotations(font={"size": 12})
    figure = _compact(
        figure, 340, title={"text": title, "font": {"size": 15}}, legend={"orientation": "h", "y": -0.28, "x": 0}
    )
    # The chart title needs its own line above the two panels' titles.
    figure.update_layout(margin={"t": 64})
    return figure


def class_distribution(rows: Sequence[dict], colours: dict[str, str]) -> go.Figure:
    """Grouped bars of each digit's share of every split, with its image count on hover."""
    figure = go.Figure()
    for split in dict.fromkeys(row["split"] for row in rows):
        own = [row for row in rows if row["split"] == split]
        figure.add_bar(
            x=[row["digit"] for row in own],
            y=[row["share"] for row in own],
            customdata=[row["count"] for row in own],
            name=split,
            marker_color=colours[split],
            hovertemplate=f"{split}, digit %{{x}}: %{{y:.2%}} (%{{customdata:,}} images)<extra></extra>",
        )
    figure.update_xaxes(tickmode="array", tickvals=DIGITS, title="digit")
    figure.update_yaxes(tickformat=".0%", title="share of the split")
    return _compact(figure, 380, barmode="group", legend=LEGEND_BELOW)


def intensity_histogram(histograms: dict[str, tuple[np.ndarray, np.ndarray]], colours: dict[str, str], log: bool):
    """Each split's share of pixels per intensity range, the splits' bars side by side."""
    figure = go.Figure()
    for split, (counts, edges) in histograms.items():
        total = max(1, int(counts.sum()))
        figure.add_bar(
            x=(edges[:-1] + edges[1:]) / 2 - 0.5,
            y=counts / total,
            name=split,
            marker_color=colours[split],
            customdata=np.stack([edges[:-1], edges[1:] - 1], axis=1),
            hovertemplate=f"{split}, values %{{customdata[0]}}-%{{customdata[1]}}: %{{y:.2%}}<extra></extra>",
        )
    figure.update_xaxes(title="pixel value (0 = black background, 255 = full ink)", range=[-4, 260])
    figure.update_yaxes(title="share of pixels", type="log" if log else "linear", tickformat=".1%" if not log else None)
    return _compact(figure, 380, barmode="group", bargap=0.15, legend=LEGEND_BELOW)


def digit_score_chart(histogram: ScoreHistogram, score: float, threshold: float) -> go.Figure:
    """Where one image's digit score falls against the scores of validation digits and non-digits.

    Each kind is drawn as its share per bin, so the two shapes compare
    whatever their counts; the threshold and this image's score are lines.
    """
    edges = np.asarray(histogram.edges)
    centres = (edges[:-1] + edges[1:]) / 2
    figure = go.Figure()
    for counts, name, colour in (
        (histogram.digits, "real digits (validation)", PALETTE[2]),
        (histogram.non_digits, "letters, symbols, doodles (validation)", PALETTE[5]),
    ):
        shares = np.asarray(counts, dtype=float) / max(1, sum(counts))
        figure.add_bar(
            x=centres,
            y=shares,
            name=name,
            marker_color=colour,
            opacity=0.6,
            hovertemplate="score %{x}: %{y:.1%}<extra>" + name + "</extra>",
        )
    shown = float(np.clip(score, edges[0], edges[-1]))
    figure.add_vline(x=threshold, line_dash="dot", line_color="#555", annotation_text="threshold")
    figure.add_vline(x=shown, line_width=3, line_color=PALETTE[7], annotation_text="this image")
    # The legend goes above the bars: below them, on a phone, its two lines ran into the axis title.
    figure.update_layout(
        barmode="overlay", bargap=0, legend={"orientation": "h", "yanchor": "bottom", "y": 1.12, "x": 0}
    )
    figure.update_xaxes(title="digit score (higher: more like a digit)", fixedrange=True)
    figure.update_yaxes(tickformat=".0%", fixedrange=True, title=None)
    return _compact(figure, 280)


def reliability_chart(rows: Sequence[dict], titles: dict[str, str], colours: dict[str, str]) -> go.Figure:
    """Reliability diagram: per bin of confidence, the share of right answers, one line per model.

    ``rows`` are ``digitlab.insight.calibration.reliability_rows``. A calibrated model's line follows the
    dashed diagonal; a line below it is overconfident. A point's size grows with its bin's image count, which
    hovering it gives with the bin's range.
    """
    figure = go.Figure()
    figure.add_scatter(
        x=[0, 1],
        y=[0, 1],
        mode="lines",
        name="perfectly calibrated",
        line={"color": MUTED, "dash": "dash"},
        hoverinfo="skip",
    )
    for model in dict.fromkeys(row["model"] for row in rows):
        own = [row for row in rows if row["model"] == model]
        figure.add_scatter(
            x=[row["confidence"] for row in own],
            y=[row["accuracy"] for row in own],
            mode="lines+markers",
            name=titles.get(model, model),
            line={"color": colours[model], "width": 1.5},
            # Bins of a few images swing between 0 and 100 %; the point's size says how many images it stands for.
            marker={"size": [4 + 3 * np.log10(row["count"]) for row in own]},
            customdata=[[row["low"], row["high"], row["count"]] for row in own],
            hovertemplate=f"{titles.get(model, model)}<br>"
            "confidence %{customdata[0]:.0%}-%{customdata[1]:.0%}: %{customdata[2]:,} images<br>"
            "mean confidence %{x:.1%}, right %{y:.1%}<extra></extra>",
        )
    axis = {"range": [0, 1.03], "tickformat": ".0%", "fixedrange": True}
    figure.update_xaxes(title="confidence (the top digit's probability)", **axis)
    figure.update_yaxes(title="share of right answers", **axis)
    return _compact(
        figure,
        440,
        title={"text": f"Reliability ({BIN_COUNT} bins of confidence)", "font": {"size": 15}},
        legend=LEGEND_BELOW,
    )


def time_to_accuracy_chart(curves: FamilyCurves, colour: str) -> go.Figure:
    """Test accuracy against training seconds: the quick recipe solid, Keras' example dashed, the lines to reach
    dotted. The accuracy axis starts at 95 %, as its title says, so that the last percent can be told apart."""
    figure = go.Figure()
    for curve, dash in ((curves.quick, "solid"), (curves.reference, "dash")):
        figure.add_scatter(
            x=curve.seconds,
            y=curve.accuracy,
            mode="lines+markers",
            name=f"{curve.label} ({curve.epochs} epochs)",
            line={"color": colour if dash == "solid" else REFERENCE_GREY, "dash": dash},
            marker={"size": 4},
            hovertemplate="%{x:.0f} s: %{y:.2%}<extra></extra>",
        )
    milestone = curves.comparison["milestone"]
    final = curves.reference.final_accuracy
    # The lines to reach are named in the legend: a label on the plot sat on one curve or the other, as both curves
    # run close to these lines at one end or the other.
    end = max(max(curves.quick.seconds), max(curves.reference.seconds))
    for accuracy, label, dash in (
        (final, f"the example's final accuracy ({final:.2%})", "dot"),
        (milestone, f"{milestone:.0%} accuracy", "longdashdot"),
    ):
        figure.add_scatter(
            x=[0, end],
            y=[accuracy, accuracy],
            mode="lines",
            name=label,
            line={"color": MUTED, "dash": dash, "width": 1},
            hoverinfo="skip",
        )
    figure.update_xaxes(title="training seconds", rangemode="tozero")
    figure.update_yaxes(title="test accuracy (axis from 95 %)", tickformat=".1%", range=[0.95, 1.0])
    return _compact(
        figure,
        380,
        title={"text": f"{curves.family.upper()}: time to accuracy", "font": {"size": 15}},
        legend=LEGEND_BELOW,
    )
