"""The Misclassification explorer's tabs: mistakes with a detail pane, a random sample, the map, label issues."""

from dataclasses import dataclass

import numpy as np
import streamlit as st

from digitlab.insight.artefact import Insight
from digitlab.insight.explorer import (
    ORDERS,
    OTHER_MODEL_FILTERS,
    MistakeQuery,
    find_mistakes,
    paginate,
    readings,
    right_counts,
    sample_indices,
    view_csv,
)
from digitlab.insight.label_issues import LabelIssues
from ui import insight_views, resources
from ui.charts import short_name
from ui.images import enlarge
from ui.insight_charts import selected_test_indices, test_map_figure
from ui.layer_view import show_inside

PER_PAGE = 24
# Where another page leaves the cell the explorer should open on.
HANDOFF_KEY = "explorer_handoff"
# Whether the inspected image's dialog is open; a visit's state (ui.sidebar), so coming back does not reopen it.
INSPECTING_KEY = "visit_inspecting"
DIGIT_CHOICES = [None, *range(10)]


@dataclass(frozen=True)
class ExplorerData:
    """What every tab reads: the test images, the models' stored answers and the precomputed insight."""

    images: np.ndarray
    labels: np.ndarray
    probabilities: dict[str, np.ndarray]
    predicted: dict[str, np.ndarray]
    mistakes: dict[str, np.ndarray]
    titles: dict[str, str]
    issues: LabelIssues
    issue_models: list[str]
    insight: Insight | None
    insight_reason: str | None


@dataclass(frozen=True)
class Cell:
    """A confusion-matrix cell: the test images of ``true_digit`` that ``model`` reads as ``predicted_digit``."""

    model: str
    true_digit: int
    predicted_digit: int


@dataclass(frozen=True)
class MapSelection:
    """The map chart's widget key and the test images selected on it (None when nothing is selected)."""

    key: str
    region: np.ndarray | None


def map_selection() -> MapSelection:
    """The current map key and the indices selected on the map of the test set."""
    # A new chart key clears the map's selection, as a new key clears the canvas on the Draw page.
    key = f"test_map-{st.session_state.get('map_clears', 0)}"
    return MapSelection(key, selected_test_indices(st.session_state.get(key)))


def open_cell(cell: Cell) -> None:
    """Switch to the explorer with its Mistakes filters set to ``cell`` (from another page)."""
    st.session_state[HANDOFF_KEY] = cell
    st.switch_page("pages/explore.py")


def take_handoff(probabilities: dict[str, np.ndarray]) -> None:
    """Pre-fill the Mistakes filters with the cell another page handed over, if any."""
    cell = st.session_state.pop(HANDOFF_KEY, None)
    if isinstance(cell, Cell) and cell.model in probabilities:
        st.session_state.update(
            explore_model=cell.model,
            explore_true=cell.true_digit,
            explore_predicted=cell.predicted_digit,
            explore_others="any",
        )


def select_image(index: int) -> None:
    st.session_state["explore_selected"] = index
    st.session_state[INSPECTING_KEY] = True


def stop_inspecting() -> None:
    st.session_state[INSPECTING_KEY] = False


def next_sample() -> None:
    st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1


def clear_region() -> None:
    st.session_state["map_clears"] = st.session_state.get("map_clears", 0) + 1


def describe_digit(digit: int | None) -> str:
    return "any" if digit is None else str(digit)


def show_selected(data: ExplorerData, index: int, model: str) -> None:
    """The chosen test image, large, with every model's three most probable digits and, on request, why."""
    label = int(data.labels[index])
    st.markdown(f"#### Test image #{index} · true digit **{label}**")
    # Side by side where the dialog is wide; a phone stacks the two.
    with st.container(horizontal=True, gap="medium"):
        st.image(enlarge(data.images[index], 8), width=224)
        with st.container(width=420):
            st.caption("Each model's three most probable digits:")
            for reading in readings(data.probabilities, index, label):
                colour, mark = ("green", ":material/check:") if reading.correct else ("red", ":material/close:")
                (best, best_probability), *rest = reading.top
                others = " · ".join(f"{digit} ({probability:.1%})" for digit, probability in rest)
                st.markdown(
                    f":{colour}[{mark} **{data.titles[reading.model]}**]  \n"
                    f":{colour}[**{best}** ({best_probability:.1%})] · {others}"
                )
    explanation = st.segmented_control(
        "Why this answer",
        ["look-alikes", "heat maps", "inside the models"],
        key="explore_explain",
        help="look-alikes: the nearest training images of the labelled digit and of the digit read instead. "
        "heat maps: the pixels that drove each model's answer (runs the models on this one image). "
        "inside the models: what each layer makes of the image (CNN feature maps, MLP hidden units, SVM support "
        "vectors).",
    )
    if explanation == "look-alikes":
        read_instead = [int(data.predicted[name][index]) for name in (model, *data.predicted)]
        insight_views.show_look_alikes(index, label, read_instead, data.insight, data.insight_reason)
    elif explanation in ("heat maps", "inside the models"):
        with st.spinner("Loading the models..."):
            models, failures, _ = resources.load_models()
        for name, message in failures.items():
            st.warning(f"**{data.titles.get(name, name)} is not available.** {message}", icon=":material/warning:")
        if explanation == "heat maps":
            insight_views.show_why(data.images[index], models, data.titles)
        else:
            show_inside(data.images[index], models, key=f"explore-{index}")


# A dialog opens where the user is, on a phone too, instead of below two dozen cards; "large" leaves the heat
# maps room for several in a row.
@st.dialog("Inspect a test image", width="large", on_dismiss=stop_inspecting)
def inspect_dialog(data: ExplorerData, index: int, model: str) -> None:
    show_selected(data, index, model)


def show_mistakes_tab(data: ExplorerData, selection: MapSelection) -> None:
    """Filters, a page of the chosen model's mistakes as cards, and the image chosen with Inspect in a dialog."""
    labels, probabilities, titles = data.labels, data.probabilities, data.titles
    # Fixed widths in a wrapping row: one line on a wide screen, two or three on a phone.
    with st.container(horizontal=True):
        model = st.selectbox("Model", list(probabilities), format_func=titles.get, key="explore_model", width=230)
        true_digit = st.selectbox(
            "True digit", DIGIT_CHOICES, format_func=describe_digit, key="explore_true", width=110
        )
        predicted_digit = st.selectbox(
            "Predicted digit",
            DIGIT_CHOICES,
            format_func=describe_digit,
            key="explore_predicted",
            width=110,
        )
        others = st.selectbox(
            "Which models are wrong",
            list(OTHER_MODEL_FILTERS),
            format_func=OTHER_MODEL_FILTERS.get,
            key="explore_others",
            help="any: every mistake of this model. only this model: the other models get the image right. "
            "all models wrong: no model gets it right. models disagree: the models give different answers.",
            width=200,
        )
        order = st.selectbox("Sort by", list(ORDERS), format_func=ORDERS.get, key="explore_order", width=240)

    query = MistakeQuery(model, true_digit=true_digit, predicted_digit=predicted_digit, others=others, order=order)
    region = selection.region
    if region is not None:
        with st.container(horizontal=True, vertical_alignment="center"):
            st.info(
                f"Limited to the **{len(region):,}** images selected on the map of the test set.",
                icon=":material/filter_alt:",
            )
            st.button("Show the whole test set", icon=":material/filter_alt_off:", on_click=clear_region)
    found = find_mistakes(labels, probabilities, query, within=region)
    all_mistakes = len(data.mistakes[model])
    # Each combination of filters has its own page widget, so changing a filter starts again at page 1. Its key
    # is not kept between pages (ui.sidebar): st.pagination always has a default, which a kept value would clash with.
    page_key = f"mistakes_page-{model}-{true_digit}-{predicted_digit}-{others}-{order}-{selection.key}"
    page = paginate(len(found), st.session_state.get(page_key, 1), PER_PAGE)

    if not len(found):
        shown_range = "0"
    elif page.stop == page.start + 1:
        shown_range = f"{page.stop:,}"
    else:
        shown_range = f"{page.start + 1:,}–{page.stop:,}"
    st.markdown(
        f"Showing **{shown_range}** of **{len(found):,}** matching images · "
        f"{titles[model]} gets **{all_mistakes:,}** of {len(labels):,} test images wrong "
        f"({all_mistakes / len(labels):.2%})."
    )
    st.caption("Each card: the true digit → what the model read, and how sure the model was of its reading.")
    st.download_button(
        "Download this view as CSV",
        view_csv(found, labels, probabilities, {"suspected_label_error": data.issues.flagged}),
        file_name=f"mistakes-{model}.csv",
        mime="text/csv",
        icon=":material/download:",
        key="download_mistakes",
    )
    if not len(found):
        st.info("No test image matches these filters. Widen them to see more.", icon=":material/filter_alt_off:")
        return
    on_page = found[page.start : page.stop]
    selected = st.session_state.get("explore_selected")
    grid = st.grid(columns="auto", min_column_width=112, gap="xsmall", border=True)
    for index in on_page.tolist():
        digit, confidence = int(data.predicted[model][index]), float(probabilities[model][index].max())
        with grid.cell():
            st.image(enlarge(data.images[index], 3), width=84)
            st.markdown(f"**{labels[index]}** → **:red[{digit}]** · {confidence:.0%}  \n:gray[test #{index}]")
            # The last image inspected stays marked, so the user sees where they were after closing the dialog.
            st.button(
                "Inspect",
                key=f"inspect-{index}",
                type="primary" if selected == index else "secondary",
                width="stretch",
                on_click=select_image,
                args=(index,),
            )
    st.pagination(page.count, key=page_key, width="stretch")
    if st.session_state.get(INSPECTING_KEY) and selected in set(on_page.tolist()):
        inspect_dialog(data, selected, model)


def show_sample_tab(data: ExplorerData) -> None:
    """A seeded random sample of test images with every model's answer, and how many each got right."""
    labels, titles = data.labels, data.titles
    seed = st.session_state.setdefault("sample_seed", 0)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        sample_size = st.slider("Images in the sample", 6, 60, 24, step=6, key="sample_size", width=320)
        st.button("Draw another sample", icon=":material/casino:", on_click=next_sample)
    st.caption(f"Sample number {seed}: the same number always shows the same images.")
    sample = sample_indices(len(labels), sample_size, seed)
    right = right_counts(data.predicted, labels, sample)
    st.markdown(
        "In this sample: "
        + " · ".join(f"{titles[name]} **{count}/{len(sample)}** right" for name, count in right.items())
    )
    sample_grid = st.grid(columns="auto", min_column_width=150, gap="xsmall", border=True)
    for index in sample.tolist():
        lines = [f"**true {labels[index]}** · #{index}"]
        for reading in readings(data.probabilities, index, int(labels[index]), k=1):
            colour, mark = ("green", "✓") if reading.correct else ("red", "✗")
            lines.append(f":{colour}[{mark} {titles[reading.model]}: **{reading.digit}** ({reading.confidence:.0%})]")
        with sample_grid.cell():
            st.image(enlarge(data.images[index], 3), width=84)
            st.markdown("  \n".join(lines))


def show_map_tab(data: ExplorerData, selection: MapSelection) -> None:
    """The selectable map of the test set with the chosen models' mistakes marked, and the selected images."""
    insight, labels, probabilities, titles = data.insight, data.labels, data.probabilities, data.titles
    if insight is None:
        st.info(f"The map is not available. {data.insight_reason}", icon=":material/info:")
        return
    st.caption(
        f"Each dot is a test image placed by {insight.about.get('map_method', 'a projection')} of the "
        f"{insight.about.get('source_model', '')} model's features, so look-alike images lie together. "
        "Select dots (click or tap one, or draw a box or lasso) to see them below and to limit the Mistakes tab "
        "to them."
    )
    marked = st.pills(
        "Mark the mistakes of",
        list(probabilities),
        selection_mode="multi",
        default=list(probabilities),
        format_func=titles.get,
        key="map_models",
    )
    st.plotly_chart(
        test_map_figure(insight.coordinates, labels, {name: data.mistakes[name] for name in marked}, titles),
        key=selection.key,
        on_select="rerun",
        selection_mode=("points", "box", "lasso"),
    )
    region = selection.region
    if region is None:
        return
    ordered = mistakes_first(region, data.predicted, labels)
    wrong = int((wrong_counts(region, data.predicted, labels) > 0).sum())
    with st.container(horizontal=True, vertical_alignment="center"):
        st.markdown(
            f"**{len(region):,}** images selected, **{wrong:,}** of them misread by at least one model; "
            f"the first {min(len(region), PER_PAGE)}, mistakes first:"
        )
        st.button("Clear the selection", icon=":material/deselect:", on_click=clear_region, key="map_clear")
    region_grid = st.grid(columns="auto", min_column_width=150, gap="xsmall", border=True)
    for index in ordered[:PER_PAGE].tolist():
        label = int(labels[index])
        # Short model names (as under the Compare page's bars) keep each card a few lines long.
        lines = [f"**true {label}** · :gray[test image #{index}]"]
        for name in probabilities:
            digit = int(data.predicted[name][index])
            colour, mark = ("green", "✓") if digit == label else ("red", "✗")
            lines.append(f":{colour}[{mark} {short_name(name)}: **{digit}**]")
        with region_grid.cell():
            st.image(enlarge(data.images[index], 3), width=84)
            st.markdown("  \n".join(lines))


def wrong_counts(indices: np.ndarray, predicted: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """For each of ``indices``, how many models misread that test image."""
    return np.sum([answers[indices] != labels[indices] for answers in predicted.values()], axis=0)


def mistakes_first(indices: np.ndarray, predicted: dict[str, np.ndarray], labels: np.ndarray) -> np.ndarray:
    """``indices`` with the images most models misread first; ties keep their order."""
    return indices[np.argsort(-wrong_counts(indices, predicted, labels), kind="stable")]


def show_label_issues_tab(data: ExplorerData) -> None:
    """The test images ranked by how likely their label is wrong, with a CSV of the ranking."""
    issues, titles = data.issues, data.titles
    st.markdown(label_issues_summary(issues, [titles[name] for name in data.issue_models]))
    shown = st.slider("Images to show", 10, 100, 30, step=10, key="label_issue_count", width=320)
    st.download_button(
        "Download this ranking as CSV",
        view_csv(issues.ranking[:shown], data.labels, data.probabilities, {"suspected_label_error": issues.flagged}),
        file_name="suspected-label-errors.csv",
        mime="text/csv",
        icon=":material/download:",
        key="download_label_issues",
    )
    insight_views.show_label_issue_grid(data.images, data.labels, issues, data.probabilities, titles, shown)


def label_issues_summary(issues: LabelIssues, model_titles: list[str]) -> str:
    """What the ranking is and what its two counts mean, in the words the cards below use."""
    low, high = float(issues.thresholds.min()), float(issues.thresholds.max())
    flagged, confident = int(issues.flagged.sum()), int(issues.confidently_flagged.sum())
    images, them = ("image", "it") if flagged == 1 else ("images", "them")
    return (
        f"Test images ranked by how likely their **label** is wrong, from the averaged out-of-sample probabilities "
        f"of {', '.join(model_titles)}. The score is the margin: the probability of the given label minus that of "
        "the likeliest other digit; the most negative come first. The averaged models read another digit than the "
        f"label on **{flagged or 'no'}** test {images}. Confident learning flags **{confident or 'none'}** of "
        f"{them}: those where the probability of the digit read "
        "reaches that digit's threshold, the average probability the models give it on the images labelled with "
        f"it ({low:.1%} to {high:.1%} here), so a reading below {low:.1%} is never flagged, however sure it looks."
    )
