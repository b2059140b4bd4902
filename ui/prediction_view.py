"""What the Draw page shows for one digit: the image the models received and every model's answer."""

from typing import Any

import numpy as np
import streamlit as st

from digitlab.insight.agreement import tally
from digitlab.models.base import Reading
from digitlab.recognise import predict_digit
from ui import charts
from ui.images import enlarge


def show_verdict(predictions: list[Reading], titles: dict[str, str]) -> None:
    agreement = tally(predictions)
    if agreement.unanimous:
        count = len(predictions)
        who = "The model reads" if count == 1 else f"All {count} models read"
        st.success(f"{who} **{agreement.leading_digit}**.", icon=":material/check_circle:")
        return
    readings = "; ".join(
        f"{' and '.join(titles[name] for name in names)} {'read' if len(names) > 1 else 'reads'} **{digit}**"
        for digit, names in agreement.votes.items()
    )
    st.warning(f"**The models disagree.** {readings}.", icon=":material/warning:")


def show_prediction_card(prediction: Reading, title: str, colour: str, key: str) -> None:
    """One model's answer as a row: the digit and confidence beside its ten probabilities."""
    with st.container(border=True):
        answer_column, chart_column = st.columns([1, 2], vertical_alignment="center")
        answer_column.metric(title, prediction.digit)
        answer_column.markdown(f"confidence **{prediction.confidence:.1%}**")
        chart_column.plotly_chart(
            charts.probability_bars(list(prediction.probabilities), colour),
            config=charts.COMPACT_CONFIG,
            key=key,
        )


def show_predictions(
    model_input: np.ndarray, models: dict[str, Any], titles: dict[str, str], key: str
) -> list[Reading]:
    """The 28x28 input next to the verdict, then one card per model with its probabilities; returns the readings."""
    predictions = predict_digit(models, model_input)
    colours = charts.model_colours(list(titles))
    image_column, verdict_column = st.columns([1, 2], vertical_alignment="center")
    with image_column:
        st.image(enlarge(model_input, 5), caption="What the models received (28x28)", width=140)
    with verdict_column:
        show_verdict(predictions, titles)
    for prediction in predictions:
        name = prediction.model
        show_prediction_card(prediction, titles[name], colours[name], key=f"{key}-probabilities-{name}")
    return predictions
