"""Compare the trained models: scores, costs, per-digit quality, confusion matrices, training curves and runs."""

from typing import NamedTuple

import pandas as pd
import streamlit as st

from digitlab.insight import comparison
from ui import (
    calibration_view,
    charts,
    confusion_view,
    problems,
    resources,
    robustness_view,
    sweep_view,
    tables,
    time_to_accuracy,
    training_view,
)
from ui.sidebar import route_through_app


class Figure(NamedTuple):
    label: str
    column: str  # The table's shorter header.
    is_share: bool  # A share between 0 and 1, shown in %.
    table_format: str | None  # None for text.


FIGURES = {
    "accuracy": Figure("Accuracy", "Accuracy", True, "%.2f%%"),
    "errors": Figure("Test errors", "Errors", False, "%d"),
    "precision_macro": Figure("Macro precision", "Precision", True, "%.2f%%"),
    "recall_macro": Figure("Macro recall", "Recall", True, "%.2f%%"),
    "f1_macro": Figure("Macro F1", "F1", True, "%.2f%%"),
    "training_seconds": Figure("Training time (s)", "Training (s)", False, "%.1f"),
    "ms_per_image": Figure("Prediction, one image (ms)", "1 image (ms)", False, "%.2f"),
    "seconds_per_10k": Figure("Prediction, 10,000 images (s)", "10,000 images (s)", False, "%.2f"),
    "size_mb": Figure("Size on disk (MB)", "Disk (MB)", False, "%.2f"),
    "complexity": Figure("Parameters or support vectors", "Parts", False, None),
}
DEFAULT_FIGURES = [
    "accuracy",
    "f1_macro",
    "training_seconds",
    "ms_per_image",
    "seconds_per_10k",
    "size_mb",
    "complexity",
]
# Counts of different kinds of parts (parameters, support vectors), listed in the table but not charted side by side.
TABLE_ONLY = {"complexity"}
route_through_app()
st.title("Compare models")

manifest = problems.trained_manifest_or_stop()
rows, incomplete = comparison.summary_rows(manifest)
for message in incomplete:
    st.warning(message, icon=":material/warning:")
if not rows:
    st.stop()
titles = resources.model_titles(manifest)
colours = charts.model_colours(list(manifest.models))

names = [row["model"] for row in rows]
chosen = st.pills("Models", names, selection_mode="multi", default=names, format_func=titles.get, key="models")
figures = st.pills(
    "Figures",
    list(FIGURES),
    selection_mode="multi",
    default=DEFAULT_FIGURES,
    format_func=lambda key: FIGURES[key].label,
    key="figures",
)
if not chosen:
    st.info("Choose at least one model to compare.")
    st.stop()
shown = [row for row in rows if row["model"] in chosen]

st.header("Scores and costs", divider="gray")
table = pd.DataFrame(shown)
for key, figure in FIGURES.items():
    if figure.is_share:
        table[key] = table[key] * 100
st.dataframe(
    table[["title", *figures]],
    hide_index=True,
    column_config={
        "title": tables.MODEL_COLUMN,
        **{
            key: st.column_config.NumberColumn(figure.column, format=figure.table_format, help=figure.label)
            if figure.table_format
            else st.column_config.TextColumn(figure.column, help=figure.label)
            for key, figure in FIGURES.items()
        },
    },
)
costs_note = comparison.own_costs_note(chosen, titles)
st.caption(
    "Scores are on the 10,000 MNIST test images. Prediction times were measured on the training machine: "
    "one image at a time (median of 50 calls) and all 10,000 in batches." + (f" {costs_note}" if costs_note else "")
)
charted = [key for key in figures if key not in TABLE_ONLY]
with st.grid(columns=3, min_column_width=300):
    for key in charted:
        figure = FIGURES[key]
        values = [row[key] for row in shown]
        log = not figure.is_share and comparison.needs_log_scale(values)
        st.plotly_chart(
            charts.metric_bars(shown, key, figure.label, colours, log=log, percent=figure.is_share),
            config=charts.COMPACT_CONFIG,
            key=f"figure-{key}",
        )

st.header("Quality per digit", divider="gray")
per_class_metric = st.segmented_control(
    "Per-digit figure",
    list(comparison.PER_CLASS_METRICS),
    default="recall",
    format_func={"precision": "Precision", "recall": "Recall", "f1": "F1"}.get,
    help="Recall: share of a digit's images read correctly. Precision: share of a digit's predictions that are right.",
    key="per_class_metric",
)
per_class_metric = per_class_metric or "recall"
st.plotly_chart(
    charts.per_class_bars(
        comparison.per_class_rows(manifest, chosen, per_class_metric), per_class_metric, per_class_metric, colours
    ),
    key="per-class",
)

st.header("Confidence and calibration", divider="gray")
calibration_view.show_calibration(chosen, titles, colours)

st.header("Robustness", divider="gray")
robustness_view.show_robustness(chosen, titles, colours)

st.header("Confusion matrices", divider="gray")
confusion_view.show_confusion_matrices(manifest, chosen, titles)
confusion_view.show_cell_gallery(manifest, chosen, titles)

st.header("Training curves", divider="gray")
curves = {name: comparison.history_rows(manifest.models[name].history) for name in chosen}
curves = {name: rows for name, rows in curves.items() if rows}
if not curves:
    st.info("None of the chosen models records a per-epoch history; only the neural networks (Keras) do.")
else:
    st.caption("Solid: training images. Dashed: images held out for validation (early stopping watches them).")
    with st.grid(columns=2, min_column_width=420):
        for name, history in curves.items():
            st.plotly_chart(charts.training_curves(history, titles[name], colours[name]), key=f"curves-{name}")

with st.expander("How each model was trained"):
    for name in chosen:
        entry = manifest.models[name]
        size = entry.train_size
        images = f"{size:,} training images" if isinstance(size, int) else "the full training set"
        st.markdown(f"**{titles[name]}** · trained on {images}, seed {entry.seed}")
        training_view.show_training_recipe(entry.hyperparameters, entry.training_notes)

st.header("Time to accuracy", divider="gray")
time_to_accuracy.show_time_to_accuracy(colours)

st.header("Sweeps", divider="gray")
st.caption("Runs queued together that differ in one or two settings: a learning curve, or a heat map of two.")
sweep_view.show_sweep_explorer()

st.header("Training runs", divider="gray")
st.caption("Runs trained on the Train page, compared with each other; the models above are the ones in use.")
training_view.show_run_comparison()
