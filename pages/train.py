"""Train a model family in the background, follow it live, and promote a run to be the model in use."""

import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.lab import runs, sweeps, worker
from ui import sweep_view, training_form, training_view
from ui.sidebar import route_through_app

route_through_app()

RECIPE_TITLES = {"quick": "Quick (seconds)", "full": "Full (the shipped recipe)"}

st.title("Train a model")
st.caption(
    "Training runs in a separate process: this page stays responsive, other tabs can keep drawing, and closing "
    "the tab does not stop it. When the server is busy with other runs, a new one waits in line for its turn. "
    "Scores are on the 10,000 MNIST test images, which training never sees."
)

families = worker.trainable_families()
family = st.segmented_control("Model family", list(families), default="mlp", format_func=families.get, key="family")
family = family or "mlp"
recipe = "full"
if family in runs.KERAS_FAMILIES:
    recipe = st.segmented_control(
        "Recipe",
        list(RECIPE_TITLES),
        default="quick",
        format_func=RECIPE_TITLES.get,
        key="recipe",
        help="Quick: a smaller network, large batches and a one-cycle learning rate reach about 99 % (CNN) in a "
        "few epochs. Full: the shipped models' recipe, with augmentation and early stopping, for the last tenths "
        "of a percent.",
    )
    recipe = recipe or "quick"
mode = sweep_view.choose_mode()
swept = sweep_view.choose_swept_settings(family) if mode == "sweep" else []
chosen, augment = training_form.settings_inputs(family, recipe, swept)
augment = st.toggle(
    "Augmentation",
    value=augment,
    key=f"augment_{family}_{recipe}",
    help="MLP and CNN: random rotation, zoom and shift each epoch. SVM: copies shifted by one pixel.",
)
include_drawings = st.toggle(
    "Also train on the saved drawings",
    key="include_drawings",
    help="A quarter of them is kept out of training to score the run on drawings it has not seen.",
)
if swept:
    st.caption(training_form.sweep_size(chosen, swept))
if training_view.start_clicked("Start sweep" if mode == "sweep" else "Start training"):
    try:
        fixed = {name: value for name, value in chosen.items() if name not in swept}
        request = runs.TrainingRequest(
            family, **fixed, augment=augment, recipe=recipe, include_drawings=include_drawings
        )
        if mode == "sweep":
            sweep = sweeps.SweepRequest(request, {name: tuple(chosen[name]) for name in swept})
            message = sweep_view.sweep_message(worker.launch_sweep(sweep), sweep.run_count)
        else:
            message = training_view.start_message(worker.launch(request))
    except DigitlabError as error:
        st.error(str(error), icon=":material/error:")
    else:
        st.toast(message, icon=":material/model_training:")

st.header("Running and queued", divider="gray")
training_view.show_active_runs()

st.header("Sweeps", divider="gray")
sweep_view.show_recent_sweeps()

st.header("Run registry", divider="gray")
recorded = training_view.show_registry()

st.header("Model in use", divider="gray")
training_view.show_promotion(recorded)
