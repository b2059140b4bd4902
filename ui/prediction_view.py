"""What the Draw page shows for one digit: the image the models received and every model's answer."""

from typing import Any

import numpy as np
import streamlit as st

from digitlab.insight.agreement import tally
from digitlab.models.base import LOW_CONFIDENCE, Reading
from digitlab.models.detector import ScreenedDetector, Verdict
from digitlab.recognise import predict_digit
from ui import charts, resources
from ui.images import enlarge


def names(titles: list[str]) -> str:
    """Titles joined as in a sentence: "A", "A and B", "A, B and C"."""
    return titles[0] if len(titles) == 1 else f"{', '.join(titles[:-1])} and {titles[-1]}"


def unsure_note(unsure: list[Reading], titles: dict[str, str]) -> str:
    """Which models are unsure, with their confidence: "MLP (47%) is below the 70% ..." without the full stop."""
    listed = names([f"{titles[reading.model]} ({reading.confidence:.0%})" for reading in unsure])
    verb = "is" if len(unsure) == 1 else "are"
    return f"{listed} {verb} below the {LOW_CONFIDENCE:.0%} confidence of a sure reading"


def show_verdict(predictions: list[Reading], titles: dict[str, str], verdict: Verdict | None) -> None:
    """One line over the cards: not a digit, every model sure of the same digit, unsure, or in disagreement.

    Agreement counts only when every model is sure: a model below the low-confidence line
    (:data:`digitlab.models.base.LOW_CONFIDENCE`) makes the verdict unsure, even when it leans to the same digit.
    """
    if verdict is not None and not verdict.is_digit:
        st.warning(
            "**This does not look like a digit.** The models' closest answers are shown dimmed below; "
            "the chart underneath shows why.",
            icon=":material/help:",
        )
        return
    agreement = tally(predictions)
    unsure = [reading for reading in predictions if reading.low_confidence]
    count = len(predictions)
    if agreement.unanimous and not unsure:
        who = "The model reads" if count == 1 else f"All {count} models read"
        st.success(f"{who} **{agreement.leading_digit}**.", icon=":material/check_circle:")
        return
    if agreement.unanimous:
        who = "The model leans to" if count == 1 else f"All {count} models lean to"
        st.warning(
            f"**Unsure.** {who} **{agreement.leading_digit}**, but {unsure_note(unsure, titles)}. "
            "A larger, clearer digit gives a sure reading.",
            icon=":material/help:",
        )
        return
    readings = "; ".join(
        f"{names([titles[name] for name in voters])} {'read' if len(voters) > 1 else 'reads'} **{digit}**"
        for digit, voters in agreement.votes.items()
    )
    doubt = f" {unsure_note(unsure, titles)}." if unsure else ""
    st.warning(f"**The models disagree.** {readings}.{doubt}", icon=":material/warning:")


def reading_sizes_note(model: Any) -> str | None:
    """How a model that reads its input at several sizes (``digitlab.imaging.sizes``) came to its answer, or None."""
    sizes = getattr(model, "reading_sizes", (1.0,))
    if len(sizes) < 2:
        return None
    shown = [f"{size:.0%}" for size in sizes]
    return f"read at {', '.join(shown[:-1])} and {shown[-1]} of the input's size, the answers averaged"


def show_prediction_card(
    prediction: Reading, title: str, colour: str, key: str, *, dimmed: bool = False, note: str | None = None
) -> None:
    """One model's answer as a row: the digit and confidence beside its ten probabilities.

    ``dimmed`` shows the answer as the closest digit to something that is not one, in grey; ``note`` is a line
    under it on how the model read the input.
    """
    with st.container(border=True):
        # Two fifths for the answer, so that the longest title ("Ensemble (weighted soft vote)") is not cut short.
        answer_column, chart_column = st.columns([2, 3], vertical_alignment="center")
        if dimmed:
            answer_column.markdown(f"{title}  \n:gray[closest digit]  \n### :gray[{prediction.digit}]")
            answer_column.markdown(f":gray[confidence {prediction.confidence:.1%}]")
        else:
            answer_column.metric(title, prediction.digit)
            confidence = f"confidence **{prediction.confidence:.1%}**"
            answer_column.markdown(f":orange[{confidence} · unsure]" if prediction.low_confidence else confidence)
        if note:
            answer_column.caption(note)
        chart_column.plotly_chart(
            charts.probability_bars(list(prediction.probabilities), charts.MUTED if dimmed else colour),
            config=charts.COMPACT_CONFIG,
            key=key,
        )


def show_digit_score(verdict: Verdict, screen: ScreenedDetector, key: str) -> None:
    """The image's digit score against the scores real digits and non-digits had on validation."""
    # The threshold is in the label, so the score means something before the chart is opened.
    answer = "Yes" if verdict.is_digit else "No"
    side = "at or above" if verdict.is_digit else "below"
    with st.expander(
        f"Is it a digit at all? {answer}: its digit score {verdict.score:.1f} is {side} the threshold, "
        f"{verdict.threshold:.1f}",
        expanded=not verdict.is_digit,
    ):
        st.plotly_chart(
            charts.digit_score_chart(screen.record.histogram, verdict.score, verdict.threshold),
            config=charts.COMPACT_CONFIG,
            key=f"{key}-digit-score",
        )
        st.caption(
            f"A small network trained on digits against letters, symbols and doodles scores every input. Below "
            f'{verdict.threshold:.1f} the lab says "not a digit". Tried on drawings it had not seen, that threshold '
            f"turned away at most {max(screen.record.digits_refused.values()):.1%} of real digits and at least "
            f"{min(screen.record.non_digits_refused.values()):.0%} of each kind of non-digit."
        )


def show_predictions(
    model_input: np.ndarray, models: dict[str, Any], titles: dict[str, str], key: str
) -> tuple[list[Reading], Verdict | None]:
    """The verdict, the 28x28 input next to its digit score, then one card per model with its probabilities.

    Returns the readings and the not-a-digit verdict (None when no detector could be loaded).

    When the not-a-digit detector refuses the input, the verdict says so and the cards show each model's closest
    digit dimmed; a chart explains the decision either way.
    """
    predictions = predict_digit(models, model_input)
    screen, problem = resources.screen()
    verdict = screen.verdict(model_input) if screen is not None else None
    colours = charts.model_colours(list(titles))
    # The verdict comes first: on a phone the columns below stack under the canvas, and the answer must be what
    # comes into view when the pen lifts, not the model's input.
    show_verdict(predictions, titles, verdict)
    image_column, score_column = st.columns([1, 2], vertical_alignment="center")
    with image_column:
        st.image(enlarge(model_input, 5), caption="What the models received (28x28)", width=140)
    with score_column:
        if verdict is not None:
            show_digit_score(verdict, screen, key)
        if problem:
            st.caption(f"Not checked for being a digit at all: {problem}")
    dimmed = verdict is not None and not verdict.is_digit
    for prediction in predictions:
        name = prediction.model
        show_prediction_card(
            prediction,
            titles[name],
            colours[name],
            key=f"{key}-probabilities-{name}",
            dimmed=dimmed,
            note=reading_sizes_note(models[name]),
        )
    return predictions, verdict
