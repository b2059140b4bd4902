"""Inside the models for one drawing: the CNN's feature maps, the MLP's hidden units, the SVM's support vectors.

The arrays come from ``digitlab.insight.layers``; this module only draws them.
"""

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from digitlab.insight.attribution import heat_overlay
from digitlab.insight.layers import CNNView, MLPView, SupportVectorView, channel_drivers, layer_views
from digitlab.models.neural import CNNClassifier
from ui.charts import COMPACT_CONFIG, PALETTE, probability_bars
from ui.images import enlarge

MAP_WIDTH = 64
WEIGHT_WIDTH = 84
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
        "patterns."
    )
    for block in view.blocks:
        st.markdown(
            f"**{block.layer.split('_')[0].replace('block', 'Block ')}** · {len(block.channels)} strongest of "
            f"{block.total_channels} channels, {block.maps.shape[1]}x{block.maps.shape[2]} each"
        )
        scale = max(1, MAP_WIDTH // block.maps.shape[2])
        st.image(
            [enlarge(channel_map, scale) for channel_map in scaled(block.maps)],
            caption=[f"ch {channel}" for channel in block.channels],
            width=MAP_WIDTH,
        )
    show_channel_drivers(view, model, image, key)
    dense_column, output_column = st.columns(2)
    with dense_column:
        st.markdown(f"**Dense layer** · {len(view.dense)} units after ReLU")
        st.plotly_chart(unit_bars(view.dense), config=COMPACT_CONFIG, key=f"inside-dense-{key}")
    with output_column:
        st.markdown("**Output** · the probability of each digit")
        st.plotly_chart(
            probability_bars(view.probabilities, PALETTE[2]), config=COMPACT_CONFIG, key=f"inside-output-{key}"
        )


def show_channel_drivers(view: CNNView, model: CNNClassifier, image: np.ndarray, key: str) -> None:
    """The input pixels that drive a chosen channel most, over the drawing."""
    choices = [(block.layer, int(channel)) for block in view.blocks for channel in block.channels]
    layer, channel = st.selectbox(
        "Which pixels drive a channel?",
        choices,
        format_func=lambda choice: f"{choice[0].split('_')[0].replace('block', 'Block ')}, channel {choice[1]}",
        key=f"inside-channel-{key}",
        help="The gradient of the channel's mean activation with respect to each pixel: red to yellow pixels, "
        "made brighter, would make the channel fire more.",
    )
    drivers = channel_drivers(model, image, layer, channel)
    st.image(heat_overlay(image, drivers, scale=5), width=140, caption=f"What drives channel {channel}")


def unit_bars(values: np.ndarray) -> go.Figure:
    figure = go.Figure(go.Bar(y=values, marker_color=PALETTE[2], hovertemplate="unit %{x}: %{y:.2f}<extra></extra>"))
    figure.update_layout(
        height=180, margin={"l": 8, "r": 8, "t": 8, "b": 8}, xaxis={"title": None}, yaxis={"title": None}
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
