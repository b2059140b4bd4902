"""The Compare page's confidence section: each model's reliability diagram, calibration error and AUROC."""

import pandas as pd
import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.insight import calibration
from digitlab.insight.explorer import usable_probabilities
from ui import charts, problems, resources, tables

CALIBRATION_CAPTION = (
    "A calibrated model is right on 90 % of the images it reads with 90 % confidence, so its line follows the "
    "diagonal; below it, the model is overconfident. **ECE** (expected calibration error) is the average gap between "
    f"confidence and share of right answers over {calibration.BIN_COUNT} equal-width bins of the top digit's "
    "probability, weighted by their images: lower is better. **AUROC** is the chance that a right answer gets a "
    "higher confidence than a wrong one: 1 when the confidence alone tells them apart, 0.5 when it tells nothing. "
    "Measured on the 10,000 test images; larger points hold more of them."
)


def show_calibration(chosen: list[str], titles: dict[str, str], colours: dict[str, str]) -> None:
    """The chosen models' reliability diagram and a table of their calibration error and AUROC."""
    try:
        _, test_labels = resources.mnist("test")
    except DigitlabError as error:
        problems.report_data_error(error, "Checking the models' confidence")
        return
    try:
        stored = resources.test_probabilities()
    except DigitlabError as error:
        st.warning(str(error), icon=":material/warning:")
        return
    probabilities, unusable = usable_probabilities(stored, chosen, len(test_labels))
    for message in unusable:
        st.warning(message, icon=":material/warning:")
    if not probabilities:
        return
    st.caption(CALIBRATION_CAPTION)
    chart_column, table_column = st.columns(2)
    chart_column.plotly_chart(
        charts.reliability_chart(calibration.reliability_rows(probabilities, test_labels), titles, colours),
        config=charts.COMPACT_CONFIG,
        key="reliability",
    )
    table = pd.DataFrame(calibration.calibration_rows(probabilities, test_labels))
    table["title"] = table["model"].map(titles)
    for share in ("accuracy", "mean_confidence", "ece"):
        table[share] = table[share] * 100
    # ECE and AUROC, which the caption explains, come first after the model: at a phone's width only the first
    # figures beside the pinned model column show without scrolling sideways.
    table_column.dataframe(
        table[["title", "ece", "auroc", "accuracy", "mean_confidence"]],
        hide_index=True,
        key="calibration",
        column_config={
            "title": tables.MODEL_COLUMN,
            "accuracy": st.column_config.NumberColumn("Accuracy", format="%.2f%%", help="Share of right answers"),
            # A one-word header lets the table fit its half of a desktop page; the help gives the whole name.
            "mean_confidence": st.column_config.NumberColumn(
                "Confidence", format="%.2f%%", help="Mean confidence: the mean probability of the top digit"
            ),
            "ece": st.column_config.NumberColumn(
                "ECE", format="%.2f%%", help="Expected calibration error (lower is better)"
            ),
            "auroc": st.column_config.NumberColumn(
                "AUROC", format="%.3f", help="How well the confidence separates right from wrong answers"
            ),
        },
    )
