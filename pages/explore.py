"""Browse the test images a model gets wrong, and a random sample of how every model fares.

Reads the probabilities stored when the models were evaluated, so it never
runs a model and opens quickly.
"""

import streamlit as st

from digitlab.explorer import (
    ORDERS,
    OTHER_MODEL_FILTERS,
    MistakeQuery,
    find_mistakes,
    paginate,
    predicted_digits,
    readings,
    sample_indices,
    usable_probabilities,
)
from ui import problems
from ui.images import enlarge

PER_PAGE = 24
DIGIT_CHOICES = [None, *range(10)]

st.title("Misclassification explorer")

manifest = problems.trained_manifest_or_stop()
titles = {name: entry.get("title", name) for name, entry in manifest["models"].items()}
images, labels = problems.mnist_or_stop("test", "The explorer")
probabilities, unusable = usable_probabilities(problems.test_probabilities_or_stop(), manifest["models"], len(labels))
for message in unusable:
    st.warning(message, icon=":material/warning:")
if not probabilities:
    st.stop()
predicted = predicted_digits(probabilities)

# The Compare page hands over a confusion-matrix cell to open pre-filtered.
handoff = st.session_state.pop("explorer_handoff", None)
if handoff and handoff.get("model") in probabilities:
    st.session_state.update(
        explore_model=handoff["model"],
        explore_true=handoff.get("true_digit"),
        explore_predicted=handoff.get("predicted_digit"),
        explore_others="any",
    )


def select_image(index: int) -> None:
    st.session_state["explore_selected"] = index


def next_sample() -> None:
    st.session_state["sample_seed"] = st.session_state.get("sample_seed", 0) + 1


def describe_digit(digit: int | None) -> str:
    return "any" if digit is None else str(digit)


def show_selected(index: int) -> None:
    """The chosen test image, large, with every model's three most probable digits."""
    label = int(labels[index])
    st.markdown(f"#### Test image #{index} · true digit **{label}**")
    st.image(enlarge(images[index], 8), width=224)
    st.caption("Each model's three most probable digits:")
    for reading in readings(probabilities, index, label):
        colour, mark = ("green", ":material/check:") if reading.correct else ("red", ":material/close:")
        (best, best_probability), *rest = reading.top
        others = " · ".join(f"{digit} ({probability:.1%})" for digit, probability in rest)
        st.markdown(
            f":{colour}[{mark} **{titles[reading.model]}**]  \n"
            f":{colour}[**{best}** ({best_probability:.1%})] · {others}"
        )


mistakes_tab, sample_tab = st.tabs([":material/error: Mistakes", ":material/casino: Random sample"])

with mistakes_tab:
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
    found = find_mistakes(labels, probabilities, query)
    all_mistakes = int((predicted[model] != labels).sum())
    # Each combination of filters has its own page widget, so changing a filter starts again at page 1.
    page_key = f"explore_page-{model}-{true_digit}-{predicted_digit}-{others}-{order}"
    page = paginate(len(found), st.session_state.get(page_key, 1), PER_PAGE)

    shown_range = f"{page.start + 1:,}–{page.stop:,}" if len(found) else "0"
    st.markdown(
        f"Showing **{shown_range}** of **{len(found):,}** matching images · "
        f"{titles[model]} gets **{all_mistakes:,}** of {len(labels):,} test images wrong "
        f"({all_mistakes / len(labels):.2%})."
    )
    if not len(found):
        st.info("No test image matches these filters. Widen them to see more.", icon=":material/filter_alt_off:")
    else:
        on_page = found[page.start : page.stop]
        if st.session_state.get("explore_selected") not in set(on_page.tolist()):
            st.session_state["explore_selected"] = int(on_page[0])
        grid_column, detail_column = st.columns([5, 2], gap="medium")
        with grid_column:
            grid = st.grid(columns="auto", min_column_width=112, gap="xsmall", border=True)
        for index in on_page.tolist():
            digit, confidence = int(predicted[model][index]), float(probabilities[model][index].max())
            chosen = st.session_state["explore_selected"] == index
            with grid.cell():
                st.image(enlarge(images[index], 3), width=84)
                st.markdown(f"**{labels[index]}** → **:red[{digit}]** · {confidence:.0%}  \n:gray[test #{index}]")
                st.button(
                    "Shown" if chosen else "Inspect",
                    key=f"inspect-{index}",
                    type="primary" if chosen else "secondary",
                    width="stretch",
                    on_click=select_image,
                    args=(index,),
                )
        with detail_column, st.container(border=True):
            show_selected(st.session_state["explore_selected"])
        st.pagination(page.count, key=page_key, width="stretch")

with sample_tab:
    seed = st.session_state.setdefault("sample_seed", 0)
    with st.container(horizontal=True, vertical_alignment="bottom"):
        sample_size = st.slider("Images in the sample", 6, 60, 24, step=6, key="sample_size", width=320)
        st.button("Draw another sample", icon=":material/casino:", on_click=next_sample)
    st.caption(f"Sample number {seed}: the same number always shows the same images.")
    sample = sample_indices(len(labels), sample_size, seed)
    right = {name: int((predicted[name][sample] == labels[sample]).sum()) for name in probabilities}
    st.markdown(
        "In this sample: "
        + " · ".join(f"{titles[name]} **{count}/{len(sample)}** right" for name, count in right.items())
    )
    sample_grid = st.grid(columns="auto", min_column_width=150, gap="xsmall", border=True)
    for index in sample.tolist():
        lines = [f"**true {labels[index]}** · #{index}"]
        for reading in readings(probabilities, index, int(labels[index]), k=1):
            colour, mark = ("green", "✓") if reading.correct else ("red", "✗")
            lines.append(f":{colour}[{mark} {titles[reading.model]}: **{reading.digit}** ({reading.confidence:.0%})]")
        with sample_grid.cell():
            st.image(enlarge(images[index], 3), width=84)
            st.markdown("  \n".join(lines))
