"""Inside the models for one drawing: the CNN's feature maps, the MLP's hidden units, the SVM's support vectors.

The arrays come from ``digitlab.insight.layers``; this module only draws them.
"""

import itertools
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from digitlab.insight.attribution import heat_overlay
from digitlab.insight.layers import CNNView, FeatureMaps, MLPView, SupportVectorView, channel_drivers, layer_views
from digitlab.models.neural import CNNClassifier
from ui.charts import COMPACT_CONFIG, PALETTE, probability_bars, selected_points
from ui.images import enlarge

WEIGHT_WIDTH = 84
# Channels per row of a block's grid, and the grid's height: two rows of eight fit a phone and a desktop.
GRID_COLUMNS = 8
GRID_HEIGHT = 190
TABS = {"cnn": "CNN: feature maps", "mlp": "MLP: hidden units", "svm": "SVM: support vectors"}


def show_inside(image: np.ndarray, models: dict[str, Any], key: str) -> None:
    """A tab per model family that has a view: what its layers make of ``image`` (a 28x28 input)."""
    views = layer_views(models, image)
    shown = {name: view for name, view in (("cnn", views.cnn), ("mlp", views.mlp), ("svm", views.svm)) if view}
    for reason in views.unavailable.values():
        st.caption(reason)
    if not shown:
        st.info("None of the loaded models has a view of its inside.")
        return
    tabs = dict(zip(shown, st.tabs([TABS[name] for name in shown]), strict=True))
    if views.cnn is not None:
        with tabs["cnn"]:
            network = next(model for model in models.values() if isinstance(model, CNNClassifier))
            show_cnn(views.cnn, network, image, key)
    if views.mlp is not None:
        with tabs["mlp"]:
            show_mlp(views.mlp, key)
    if views.svm is not None:
        with tabs["svm"]:
            show_svm(views.svm)


def scaled(maps: np.ndarray) -> np.ndarray:
    """Activations as 0-255 grey levels, all maps of one layer on one scale so that their strengths compare."""
    top = float(maps.max())
    return maps / top * 255 if top > 0 else np.zeros_like(maps)


def show_cnn(view: CNNView, model: CNNClassifier, image: np.ndarray, key: str) -> None:
    st.caption(
        "Each small picture is one channel of a convolution block: where in your drawing that channel's pattern "
        "fires (bright) or not (dark). The strongest channels come first; deeper blocks see larger, coarser "
        "patterns. Click or tap a channel to see which pixels drive it."
    )
    choice_key = channel_choice_key(key)
    choices = [(block.layer, int(channel)) for block in view.blocks for channel in block.channels]
    # A click reruns the page before the grids are drawn again, so reading it first lets them frame it at once.
    for block in view.blocks:
        follow_channel_click(block.layer, st.session_state.get(grid_key(block, key)), key)
    # Another drawing has other strongest channels: a choice that is no longer offered goes back to the first.
    if st.session_state.get(choice_key) not in choices:
        st.session_state.pop(choice_key, None)
    chosen = st.session_state.get(choice_key, choices[0])
    for block in view.blocks:
        st.plotly_chart(
            channel_grid(block, chosen[1] if chosen[0] == block.layer else None),
            on_select="rerun",
            selection_mode="points",
            config=COMPACT_CONFIG,
            key=grid_key(block, key),
        )
    show_channel_drivers(choices, {block.layer: block.number for block in view.blocks}, model, image, key)
    dense_column, output_column = st.columns(2)
    with dense_column:
        if view.dense is None:
            st.markdown("**Dense layer** · none: this network goes straight from its last block to the output")
        else:
            st.markdown(f"**Dense layer** · {len(view.dense)} units after ReLU")
            st.plotly_chart(unit_bars(view.dense), config=COMPACT_CONFIG, key=f"inside-dense-{key}")
    with output_column:
        st.markdown("**Output** · the probability of each digit")
        st.plotly_chart(
            probability_bars(view.probabilities, PALETTE[2]), config=COMPACT_CONFIG, key=f"inside-output-{key}"
        )


def block_title(block: FeatureMaps) -> str:
    """``Block 1 · 16 strongest of 32 channels, 24x24 each``."""
    height, width = block.maps.shape[1:]
    return (
        f"Block {block.number} · {len(block.channels)} strongest of {block.total_channels} channels, "
        f"{height}x{width} each"
    )


def grid_corners(count: int, height: int, width: int) -> tuple[list[tuple[int, int]], tuple[int, int]]:
    """Where each of ``count`` maps goes in a grid of up to ``GRID_COLUMNS`` per row: (top, left) corners, and the
    grid's (height, width), with room under each row for the channel labels, which keep their size however small
    a phone draws the maps."""
    columns = min(GRID_COLUMNS, count)
    gap_x, gap_y = max(1, width // 6), max(4, round(height * 0.4))
    corners = [
        (row * (height + gap_y), column * (width + gap_x))
        for row, column in (divmod(position, columns) for position in range(count))
    ]
    rows = -(-count // columns)
    return corners, (rows * (height + gap_y), columns * (width + gap_x) - gap_x)


def channel_grid(block: FeatureMaps, selected: int | None) -> go.Figure:
    """One block's channel maps side by side, labelled, each clickable, the ``selected`` channel framed.

    Plotly reports clicks on points but not on heat map cells, so nine invisible points over each map carry its
    channel: a click anywhere on a map lands near one of them.
    """
    maps = scaled(block.maps)
    _, height, width = maps.shape
    corners, size = grid_corners(len(maps), height, width)
    mosaic = np.full(size, np.nan)
    targets_x, targets_y, targets = [], [], []
    figure = go.Figure()
    for (top, left), channel_map, channel, strength in zip(corners, maps, block.channels, block.strength, strict=True):
        mosaic[top : top + height, left : left + width] = channel_map
        for across, down in itertools.product((1 / 6, 1 / 2, 5 / 6), repeat=2):
            targets_x.append(left - 0.5 + across * width)
            targets_y.append(top - 0.5 + down * height)
            targets.append([int(channel), float(strength)])
        figure.add_annotation(
            x=left - 0.5 + width / 2,
            y=top + height - 0.5,
            text=f"ch {channel}",
            showarrow=False,
            yanchor="top",
            font={"size": 10, "color": "#555"},
        )
        if channel == selected:
            figure.add_shape(
                type="rect",
                x0=left - 0.5,
                x1=left + width - 0.5,
                y0=top - 0.5,
                y1=top + height - 0.5,
                line={"color": PALETTE[2], "width": 3},
            )
    figure.add_heatmap(
        z=mosaic, colorscale=[[0, "black"], [1, "white"]], zmin=0, zmax=255, showscale=False, hoverinfo="skip"
    )
    figure.add_scatter(
        x=targets_x,
        y=targets_y,
        mode="markers",
        marker={"size": 14, "opacity": 0},
        selected={"marker": {"opacity": 0}},
        unselected={"marker": {"opacity": 0}},
        customdata=targets,
        hovertemplate="channel %{customdata[0]}: mean activation %{customdata[1]:.2f}<extra></extra>",
        showlegend=False,
    )
    hidden = {"visible": False, "fixedrange": True}
    figure.update_xaxes(range=[-1, size[1]], **hidden)
    figure.update_yaxes(range=[size[0], -1], scaleanchor="x", **hidden)
    figure.update_layout(
        title={"text": block_title(block), "font": {"size": 14}},
        height=GRID_HEIGHT,
        margin={"l": 4, "r": 4, "t": 32, "b": 4},
        clickmode="event+select",
        plot_bgcolor="rgba(0,0,0,0)",
    )
    return figure


def grid_key(block: FeatureMaps, key: str) -> str:
    return f"inside-{block.layer}-{key}"


def channel_choice_key(key: str) -> str:
    """The session key of the chosen (layer, channel), which the grids' clicks and the list both set."""
    return f"inside-channel-{key}"


def follow_channel_click(layer: str, event, key: str) -> None:
    """Choose a newly clicked channel of ``layer`` for the pixels-that-drive-it view.

    The grid keeps reporting its last click on every rerun; only a click that differs from the one already
    followed changes the choice, so choosing another channel in the list afterwards sticks.
    """
    points = selected_points(event)
    clicked = [point["customdata"] for point in points if point.get("customdata")]
    last_key = f"inside-channel-clicked-{key}-{layer}"
    if not clicked:
        st.session_state.pop(last_key, None)
        return
    choice = (layer, int(clicked[0][0]))
    if choice != st.session_state.get(last_key):
        st.session_state[last_key] = choice
        st.session_state[channel_choice_key(key)] = choice


def show_channel_drivers(
    choices: list[tuple[str, int]], numbers: dict[str, int], model: CNNClassifier, image: np.ndarray, key: str
) -> None:
    """The input pixels that drive the chosen channel most, over the drawing; ``numbers`` gives each block's."""
    layer, channel = st.selectbox(
        "Which pixels drive a channel?",
        choices,
        format_func=lambda choice: f"Block {numbers[choice[0]]}, channel {choice[1]}",
        key=channel_choice_key(key),
        help="The gradient of the channel's mean activation with respect to each pixel: red to yellow pixels, "
        "made brighter, would make the channel fire more. Clicking a channel above chooses it here too.",
    )
    drivers = channel_drivers(model, image, layer, channel)
    st.image(heat_overlay(image, drivers, scale=5), width=140, caption=f"What drives channel {channel}")


def unit_bars(values: np.ndarray) -> go.Figure:
    """A bar per unit of a layer, its height the unit's activation (after ReLU, so never negative)."""
    figure = go.Figure(go.Bar(y=values, marker_color=PALETTE[2], hovertemplate="unit %{x}: %{y:.2f}<extra></extra>"))
    figure.update_layout(
        height=200,
        margin={"l": 8, "r": 8, "t": 8, "b": 8},
        xaxis={"title": {"text": "unit", "standoff": 4}},
        yaxis={"title": {"text": "activation", "standoff": 4}},
    )
    return figure


def diverging(weights: np.ndarray, scale: int = 3) -> np.ndarray:
    """Weights as an RGB picture: red where a bright pixel excites the unit, blue where it inhibits it."""
    top = float(np.abs(weights).max()) or 1.0
    strength = np.clip(weights / top, -1.0, 1.0)[..., None]
    white = np.ones((*weights.shape, 3))
    red, blue = np.array([0.84, 0.19, 0.15]), np.array([0.13, 0.4, 0.67])
    colour = np.where(strength > 0, white + strength * (red - 1), white - strength * (blue - 1))
    pixels = (colour * 255).round().astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def show_mlp(view: MLPView, key: str) -> None:
    active = int((view.activations > 0).sum())
    st.caption(
        f"The first hidden layer has {len(view.activations):,} units; {active:,} of them fire for your drawing. "
        f"Below, the units that push hardest towards **{view.chosen}** (activation times how much the unit moves "
        "the digit's score), each drawn as the input weights it looks for: red pixels excite it, blue ones hold "
        "it back."
    )
    st.plotly_chart(unit_bars(view.activations), config=COMPACT_CONFIG, key=f"inside-mlp-activations-{key}")
    st.image(
        [diverging(unit.weights) for unit in view.units],
        caption=[f"unit {unit.index} · {unit.contribution:+.2f}" for unit in view.units],
        width=WEIGHT_WIDTH,
    )


def show_svm(view: SupportVectorView) -> None:
    towards = "the chosen digit" if view.decision >= 0 else "the rival"
    st.caption(
        f"The SVM's closest duel for this drawing is **{view.chosen} against {view.rival}** (decision value "
        f"{view.decision:+.2f}, for {towards}). It weighs every stored training example (support vector) by how "
        "similar your drawing is to it (the kernel) times how much that example counts (its dual coefficient); "
        f"these are the examples that weigh most, positive for {view.chosen}, negative for {view.rival}."
    )
    st.image(
        [enlarge(vector * 255, 3) for vector in view.images],
        caption=[f"a {label} · {weight:+.2f}" for label, weight in zip(view.labels, view.weights, strict=True)],
        width=WEIGHT_WIDTH,
    )
    st.caption("Each support vector is drawn as the deskewed, PCA-compressed image the SVM stores, not the original.")
