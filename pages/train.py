"""Train a model family in the background, follow it live, and promote a run to be the model in use."""

import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.lab import runs, worker
from ui import training_view
from ui.sidebar import route_through_app

route_through_app()

TRAIN_SIZES = [500, 1_000, 2_000, 5_000, 10_000, 20_000, 30_000, 60_000]
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
size_column, epochs_column = st.columns(2)
sizes = TRAIN_SIZES if family != "svm" else [size for size in TRAIN_SIZES if size <= runs.LARGEST_SVM_TRAIN_SIZE]
defaults = runs.REQUEST_DEFAULTS
train_size = size_column.select_slider(
    "Training images (from MNIST's 60,000)",
    sizes,
    value=defaults["train_size"],
    format_func="{:,}".format,
    key="train_size",
)
epochs, C, gamma, augment = defaults["epochs"], defaults["C"], defaults["gamma"], defaults["augment"]
if family in runs.KERAS_FAMILIES:
    starting = runs.recipe_defaults(family, recipe)
    # Each family and recipe keeps its own epochs and augmentation, so switching shows that recipe's defaults.
    epochs = epochs_column.slider(
        "Epochs",
        1,
        30,
        starting["epochs"],
        key=f"epochs_{family}_{recipe}",
        help="The quick recipe's learning rate rises and falls over exactly these epochs."
        if recipe == "quick"
        else "Early stopping may end training sooner.",
    )
    augment = starting["augment"]
else:
    C = epochs_column.number_input("C (penalty on mistakes)", 0.01, 1000.0, C, key="svm_c")
    gamma = epochs_column.number_input("gamma (RBF width)", 0.0001, 1.0, gamma, format="%.4f", key="svm_gamma")
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
if training_view.start_clicked():
    try:
        request = runs.TrainingRequest(
            family,
            train_size=train_size,
            epochs=epochs,
            augment=augment,
            recipe=recipe,
            C=C,
            gamma=gamma,
            include_drawings=include_drawings,
        )
        run_id = worker.launch(request)
    except DigitlabError as error:
        st.error(str(error), icon=":material/error:")
    else:
        st.toast(training_view.start_message(run_id), icon=":material/model_training:")

st.header("Running and queued", divider="gray")
training_view.show_active_runs()

st.header("Run registry", divider="gray")
recorded = training_view.show_registry()

st.header("Model in use", divider="gray")
training_view.show_promotion(recorded)
