"""The Train page's settings: one value per setting for a run, several values for the settings a sweep varies."""

import math
from typing import Any

import streamlit as st

from digitlab.lab import runs, sweeps
from ui import sweep_view


def settings_inputs(family: str, recipe: str, swept: list[str]) -> tuple[dict[str, Any], bool]:
    """The chosen settings (a list of values for each swept one) and the augmentation this family starts from."""
    size_column, epochs_column = st.columns(2)
    sizes = list(sweeps.offered_values("train_size", family))
    defaults = runs.REQUEST_DEFAULTS
    chosen = {}
    if "train_size" in swept:
        chosen["train_size"] = sweep_view.values_input("train_size", family, size_column)
    else:
        chosen["train_size"] = size_column.select_slider(
            "Training images (from MNIST's 60,000)",
            sizes,
            value=defaults["train_size"],
            format_func="{:,}".format,
            key="train_size",
        )
    augment = defaults["augment"]
    if family in runs.KERAS_FAMILIES:
        starting = runs.recipe_defaults(family, recipe)
        augment = starting["augment"]
        if "epochs" in swept:
            chosen["epochs"] = sweep_view.values_input("epochs", family, epochs_column)
        else:
            # Each family and recipe keeps its own epochs and augmentation, so switching shows that recipe's defaults.
            chosen["epochs"] = epochs_column.slider(
                "Epochs",
                1,
                30,
                starting["epochs"],
                key=f"epochs_{family}_{recipe}",
                help="The quick recipe's learning rate rises and falls over exactly these epochs."
                if recipe == "quick"
                else "Early stopping may end training sooner.",
            )
    else:
        if "C" in swept:
            chosen["C"] = sweep_view.values_input("C", family, epochs_column)
        else:
            chosen["C"] = epochs_column.number_input(
                "C (penalty on mistakes)", 0.01, 1000.0, defaults["C"], key="svm_c"
            )
        if "gamma" in swept:
            chosen["gamma"] = sweep_view.values_input("gamma", family, epochs_column)
        else:
            chosen["gamma"] = epochs_column.number_input(
                "gamma (RBF width)", 0.0001, 1.0, defaults["gamma"], format="%.4f", key="svm_gamma"
            )
    return chosen, augment


def sweep_size(chosen: dict[str, Any], swept: list[str]) -> str:
    """How many runs the sweep as chosen would queue."""
    count = math.prod(len(chosen[name]) for name in swept)
    if count > sweeps.MAX_SWEEP_RUNS:
        return (
            f"These values make {count} runs, more than the {sweeps.MAX_SWEEP_RUNS} a sweep may have: choose fewer "
            "values."
        )
    return f"This sweep queues {count} run{'s' if count != 1 else ''}, one per combination of the values."
