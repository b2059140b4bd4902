"""The "why" views: heat maps of what drove each answer, training look-alikes, the test-set map and label issues."""

from typing import Any

import numpy as np
import streamlit as st

from digitlab.errors import DataUnavailableError, DigitlabError
from digitlab.insight.artefact import Insight
from digitlab.insight.attribution import METHODS, heat_overlay
from digitlab.insight.label_issues import LabelIssues
from ui import insight_resources, resources
from ui.images import enlarge, montage

HEAT_SCALE = 6
# Pixels across one heat map on screen: large enough to see which strokes light up, three or four to a row.
HEAT_WIDTH = 160


@st.cache_data(show_spinner=False)
def colour_scale() -> np.ndarray:
    """A strip of the heat maps' colours, from no support on the left to the strongest on the right."""
    ramp = np.tile(np.linspace(0.0, 1.0, 28, dtype=np.float32), (28, 1))
    return heat_overlay(np.zeros((28, 28), dtype=np.float32), ramp, scale=HEAT_SCALE)[: 2 * HEAT_SCALE]


def show_why(
    image: np.ndarray, models: dict[str, Any], titles: dict[str, str], answers: dict[str, int] | None = None
) -> None:
    """For every loaded model, heat maps of the pixels that drove its answer, laid over the 28x28 input.

    ``answers`` are the digits the page showed for each model, where it read the image itself.
    """
    st.caption(
        "Red to yellow marks the pixels that most support each model's answer. "
        + " ".join(f"**{name}**:{detail}." for name, detail in (text.split(":", 1) for text in METHODS.values()))
    )
    with st.container(horizontal=True, vertical_alignment="center", gap="small"):
        st.caption("no support")
        st.image(colour_scale(), width=HEAT_WIDTH)
        st.caption("strongest support (each map is scaled to its own strongest pixel)")
    grid = st.grid(columns="auto", min_column_width=HEAT_WIDTH + 16, gap="xsmall", border=True)
    for name, model in models.items():
        digit, maps, seconds = insight_resources.heat_maps(name, model, image, (answers or {}).get(name))
        for method, heat in maps.items():
            with grid.cell():
                st.image(heat_overlay(image, heat, scale=HEAT_SCALE), width=HEAT_WIDTH)
                st.markdown(f"**{titles.get(name, name)}** reads **{digit}**  \n:gray[{method} · {seconds:.2f} s]")


def show_look_alikes(index: int, label: int, digits: list[int], insight: Insight | None, reason: str | None) -> None:
    """The nearest training images of the true digit and of each digit a model read instead."""
    if insight is None:
        st.info(f"Look-alikes are not available. {reason}", icon=":material/info:")
        return
    try:
        train_images, _ = resources.mnist("train")
    except DigitlabError as error:
        reason = error.advice if isinstance(error, DataUnavailableError) else str(error)
        st.info(f"Look-alikes need the MNIST training images. {reason}", icon=":material/folder_off:")
        return
    if index >= len(insight.neighbours):
        st.info("The stored look-alikes do not cover this image; recompute them.", icon=":material/info:")
        return
    st.caption(f"Nearest training images in the {insight.about.get('source_model', 'CNN')}'s feature space.")
    for digit in dict.fromkeys([label, *digits]):
        neighbours = insight.neighbours[index, digit]
        role = "labelled digit" if digit == label else "read instead"
        st.markdown(f"Training **{digit}s** nearest to it ({role}):")
        st.image(enlarge(montage(train_images[neighbours], columns=len(neighbours)), 2), width="stretch")


def show_label_issue_grid(
    images: np.ndarray,
    labels: np.ndarray,
    issues: LabelIssues,
    probabilities: dict[str, np.ndarray],
    titles: dict[str, str],
    count: int,
) -> None:
    """The ``count`` most suspect test labels, each with every model's answer as the evidence."""
    grid = st.grid(columns="auto", min_column_width=170, gap="xsmall", border=True)
    for rank, index in enumerate(issues.ranking[:count].tolist(), start=1):
        label, suggested = int(labels[index]), int(issues.suggested[index])
        lines = [
            f"**{rank}.** test image #{index}",
            f"labelled **{label}**, models read **:red[{suggested}]**"
            + (" · flagged by confident learning" if issues.confidently_flagged[index] else ""),
            f":gray[margin {issues.margin[index]:+.2f}]",
        ]
        for name, values in probabilities.items():
            lines.append(f":gray[{titles.get(name, name)}: {int(values[index].argmax())} ({values[index].max():.0%})]")
        with grid.cell():
            st.image(enlarge(images[index], 3), width=84)
            st.markdown("  \n".join(lines))
