"""Robustness on the dashboard: the Compare page's heat map and attack curves, the Draw page's smallest flips."""

import hashlib
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.insight.attacks import smallest_flips
from digitlab.insight.corruptions import SEVERITIES
from digitlab.insight.robustness import (
    ATTACK_EPSILONS,
    ROBUSTNESS_NAME,
    TRANSFER_ATTACK,
    Robustness,
    load_robustness,
)
from digitlab.models.neural import KerasClassifier
from digitlab.persistence import MANIFEST_NAME
from ui import resources, tables
from ui.charts import LEGEND_BELOW, short_name
from ui.images import enlarge
from ui.prediction_view import reading_sizes_note

FLIPS_KEY = "smallest-flips"


@st.cache_data(show_spinner=False, max_entries=2)
def _robustness(folder: str, robustness_modified: float, manifest_modified: float) -> Robustness:
    return load_robustness(folder)


def show_robustness(chosen: list[str], titles: dict[str, str], colours: dict[str, str]) -> None:
    folder = resources.models_folder()
    try:
        # Keyed on the manifest too: models retrained in place must be checked against the file again.
        robustness = _robustness(
            str(folder),
            resources.modified_time(folder / ROBUSTNESS_NAME),
            resources.modified_time(folder / MANIFEST_NAME),
        )
    except DigitlabError as error:
        st.info(str(error), icon=":material/shield:")
        return
    shown = [name for name in chosen if name in robustness.clean]
    if not shown:
        st.info("None of the chosen models was measured for robustness.")
        return
    st.caption(
        f"Accuracy on the {robustness.test_images:,} test images after each corruption, at one fixed severity "
        "(after MNIST-C, Mu and Gilmer 2019); hover a cell for what the corruption does. The mean corruption "
        "error is the average error over all of them."
    )
    st.plotly_chart(corruption_heatmap(robustness, shown, titles), key="robustness-heatmap")
    st.dataframe(
        pd.DataFrame(
            [
                {
                    "model": titles.get(name, name),
                    # The mean corruption error, this table's own figure, comes before the clean accuracy that
                    # the heat map's first row repeats: at a phone's width only the first figures beside the
                    # pinned model column show without scrolling sideways.
                    "mce": robustness.mean_corruption_error(name) * 100,
                    "clean": robustness.clean[name] * 100,
                    "attack": attack_method(robustness, name, titles),
                }
                for name in shown
            ]
        ),
        hide_index=True,
        column_config={
            "model": tables.MODEL_COLUMN,
            "mce": st.column_config.NumberColumn("Mean corruption error", format="%.2f%%"),
            "clean": st.column_config.NumberColumn("Clean accuracy", format="%.2f%%"),
            "attack": st.column_config.TextColumn("How it was attacked", width="large"),
        },
        key="robustness-table",
    )
    st.caption(
        f"Accuracy on a fixed set of {robustness.attack_images:,} test images when every pixel may move by up to "
        "ε (the attack strength) of its range, chosen by projected gradient descent (20 steps) to make the model "
        "wrong. The SVM and the ensemble have no gradient here, so they meet the images crafted against the CNN (a "
        "transfer attack, a weaker test than a direct one)."
    )
    st.plotly_chart(attack_chart(robustness, shown, titles, colours), key="robustness-attacks")


def attack_method(robustness: Robustness, model: str, titles: dict[str, str]) -> str:
    """How ``model`` was attacked, naming the model whose images a transfer attack used by its title."""
    source = robustness.transfer_source(model)
    if source is None:
        return robustness.attack_methods[model]
    return TRANSFER_ATTACK.format(source=titles.get(source, source))


def corruption_heatmap(robustness: Robustness, shown: list[str], titles: dict[str, str]) -> go.Figure:
    """Each model's accuracy under each corruption: a column a model and a row a corruption.

    Thirteen corruptions side by side left each cell too narrow for its figure on a phone; four models are not.
    """
    # The clean test images head the rows, read like one more corruption.
    rows = {"clean": robustness.clean, **robustness.corruptions}
    descriptions = {"clean": "the test images as they are", **SEVERITIES}
    corruptions = list(rows)
    accuracy = [[rows[corruption][name] for name in shown] for corruption in corruptions]
    hover = [
        [[titles.get(name, name), descriptions.get(corruption, "")] for name in shown] for corruption in corruptions
    ]
    figure = go.Figure(
        go.Heatmap(
            # Short names fit across a phone's columns, level; the hover gives each model's title.
            x=[short_name(name) for name in shown],
            y=corruptions,
            z=accuracy,
            text=[[f"{value:.1%}" for value in row] for row in accuracy],
            texttemplate="%{text}",
            customdata=hover,
            colorscale="Viridis",
            # The colours spread over 50-100 %, where most cells lie; anything lower takes the darkest colour, which
            # the colour bar says, and each cell's own figure is written on it.
            zmin=0.5,
            zmax=1.0,
            colorbar={
                "title": {"text": "accuracy", "side": "top"},
                "tickvals": [0.5, 0.75, 1.0],
                "ticktext": ["50 % or less", "75 %", "100 %"],
                "thickness": 12,
                "orientation": "h",
                "y": -0.04,
                "yanchor": "top",
            },
            hovertemplate="%{customdata[0]}, %{y}: %{z:.2%}<br>%{customdata[1]}<extra></extra>",
        )
    )
    figure.update_xaxes(side="top", tickangle=0)
    figure.update_yaxes(autorange="reversed")
    figure.update_layout(height=220 + 30 * len(corruptions), margin={"l": 8, "r": 8, "t": 8, "b": 8})
    return figure


def attack_chart(robustness: Robustness, shown: list[str], titles: dict[str, str], colours) -> go.Figure:
    epsilons = [0.0, *ATTACK_EPSILONS]
    figure = go.Figure()
    for name in shown:
        attacked = robustness.attacks[name]
        values = [robustness.clean[name], *(attacked.get(f"{eps:g}") for eps in ATTACK_EPSILONS)]
        # Dotted: attacked by transfer, a weaker test than the direct attack the solid lines met.
        dash = "solid" if robustness.attacked_directly(name) else "dot"
        figure.add_scatter(
            x=epsilons,
            y=values,
            mode="lines+markers",
            name=titles.get(name, name),
            line={
                "color": colours.get(name),
                "dash": dash,
            },
            hovertemplate="ε %{x:g}: %{y:.1%}<extra>" + titles.get(name, name) + "</extra>",
        )
    figure.update_xaxes(title="attack strength ε (share of the pixel range)", tickvals=epsilons)
    figure.update_yaxes(title="accuracy", tickformat=".0%", range=[0, 1.02])
    figure.update_layout(height=360, margin={"l": 8, "r": 8, "t": 8, "b": 8}, legend=LEGEND_BELOW)
    return figure


def several_sizes_note(models: dict[str, Any], titles: dict[str, str]) -> str:
    """A sentence for each network whose card reads a drawing at more than one size, or nothing when none does."""
    return "".join(
        f" The {titles.get(name, name)}'s card shows it {note}; here it is searched and read at the drawing's own "
        "size only, so in a rare drawing its answer here differs from its card's."
        for name, model in models.items()
        if (note := reading_sizes_note(model))
    )


def show_smallest_flips(image: np.ndarray, models: dict[str, Any], titles: dict[str, str], key: str) -> None:
    """For each model, the smallest change found that flips its answer, beside the drawing, with the new answer."""
    if not any(isinstance(model, KerasClassifier) for model in models.values()):
        st.info("The search follows a network's gradient, and neither the MLP nor the CNN is loaded.")
        return
    # The drawing and the loaded models (a promotion loads new ones) together say whether the last search holds.
    digest = hashlib.sha256(np.ascontiguousarray(image).tobytes()).hexdigest() + repr(
        sorted((name, id(model)) for name, model in models.items())
    )
    kept = st.session_state.setdefault(FLIPS_KEY, {})
    if kept.get(key, (None,))[0] != digest:
        with st.spinner("Searching for the smallest change that flips each model (a few seconds)..."):
            kept[key] = (digest, smallest_flips(models, image))
    flips = kept[key][1]
    st.caption(
        "Projected gradient descent looks for the smallest eps (a share of the pixel range) such that moving "
        "every pixel by at most eps changes the model's answer; a search in rounds pins it to about one grey level. "
        "The SVM and the ensemble are searched with the CNN's gradient (a transfer attack), so theirs is an "
        "upper bound." + several_sizes_note(models, titles)
    )
    grid = st.grid(columns="auto", min_column_width=260, gap="xsmall", border=True)
    for name, model in models.items():
        with grid.cell():
            found = flips.get(name)
            if found is None:
                st.markdown(f"**{titles.get(name, name)}**: no change up to eps 0.5 flips it.")
                continue
            eps, changed = found
            answer = int(model.predict(image[None])[0])
            new_answer = int(model.predict(changed[None])[0])
            st.image([enlarge(image, 4), enlarge(changed, 4)], caption=[f"reads {answer}", f"reads {new_answer}"])
            st.markdown(
                f"**{titles.get(name, name)}**: eps **{eps:.3f}** (each pixel moved by at most "
                f"{eps * 255:.0f} of 255) turns {answer} into {new_answer}."
            )
