"""The MNIST data the models learnt from: samples, class balance, mean digits and pixel intensities."""

import pandas as pd
import streamlit as st

from digitlab import settings
from digitlab.data import stats as dataset_stats
from digitlab.data.mnist import CLASSES
from ui import charts, problems, resources
from ui.images import enlarge, montage
from ui.sidebar import route_through_app

SPLITS = ("train", "test")
SPLIT_COLOURS = {"train": charts.PALETTE[0], "test": charts.PALETTE[1]}
SAMPLES_PER_DIGIT = 10


@st.cache_data(show_spinner="Computing dataset statistics...", max_entries=4)
def split_statistics(split: str, data_folder: str) -> dict:
    """Everything the page charts about one split, small enough to cache instead of the images."""
    images, labels = resources.mnist(split)
    return {
        "count": len(labels),
        "labels": labels,
        "means": dataset_stats.mean_images(images, labels),
        "histogram": dataset_stats.intensity_histogram(images, bins=32),
        "ink_histogram": dataset_stats.intensity_histogram(images, bins=32, include_background=False),
        "ink": dataset_stats.ink_statistics(images),
    }


route_through_app()
st.title("The MNIST dataset")
st.caption(
    "70,000 handwritten digits from American census employees and high-school students, "
    "centred in 28x28 pixel images: 60,000 to train on and 10,000 kept aside to test."
)

for split in SPLITS:
    problems.mnist_or_stop(split, "The dataset page")
stats = {split: split_statistics(split, str(settings.data_dir())) for split in SPLITS}

with st.container(horizontal=True):
    for split in SPLITS:
        st.metric(f"{split} images", f"{stats[split]['count']:,}", border=True)
    st.metric("pixels per image", "28 x 28 = 784", border=True)
    st.metric(
        "ink pixels (train)",
        f"{stats['train']['ink']['ink_share']:.1%}",
        help="Share of pixels that are not pure black.",
        border=True,
    )

st.header("Samples of every digit", divider="gray")
sample_split = st.segmented_control("Split", SPLITS, default="train", key="sample_split") or "train"
seed = st.session_state.setdefault("dataset_seed", 0)
st.button(
    "Show other samples", icon=":material/casino:", on_click=st.session_state.update, kwargs={"dataset_seed": seed + 1}
)
sample_images, sample_labels = resources.mnist(sample_split)
chosen = dataset_stats.samples_per_digit(sample_labels, SAMPLES_PER_DIGIT, seed)
counts = dataset_stats.class_counts(sample_labels)
gallery = st.grid(columns="auto", min_column_width=300, gap="small", border=True)
for digit in range(CLASSES):
    with gallery.cell():
        st.markdown(f"**{digit}** · {counts[digit]:,} {sample_split} images")
        st.image(enlarge(montage(sample_images[chosen[digit]], columns=5), 2))

st.header("Class distribution", divider="gray")
rows = dataset_stats.class_distribution_rows({split: stats[split]["labels"] for split in SPLITS})
chart_column, table_column = st.columns([3, 2], gap="medium")
chart_column.plotly_chart(charts.class_distribution(rows, SPLIT_COLOURS), key="distribution")
table = pd.DataFrame(rows).pivot(index="digit", columns="split", values="count")[list(SPLITS)]
table_column.dataframe(
    table.reset_index(),
    hide_index=True,
    column_config={
        "digit": st.column_config.NumberColumn("Digit", format="%d"),
        **{split: st.column_config.NumberColumn(f"{split} images", format="localized") for split in SPLITS},
    },
)
table_column.caption("The classes are nearly balanced: every digit has 9-11 % of each split.")

st.header("The average digit", divider="gray")
mean_split = st.segmented_control("Average over", SPLITS, default="train", key="mean_split") or "train"
# Three times MNIST's size keeps all ten in one row on a laptop's screen.
st.image(
    [enlarge(mean_image, 3) for mean_image in stats[mean_split]["means"]],
    caption=[f"mean {digit}" for digit in range(CLASSES)],
)
st.caption("Each image averages every picture of that digit; blurry parts are where writers differ most.")

st.header("Pixel intensities", divider="gray")
include_background = st.toggle("Include the black background pixels", value=False, key="include_background")
key = "histogram" if include_background else "ink_histogram"
figure = charts.intensity_histogram(
    {split: stats[split][key] for split in SPLITS}, SPLIT_COLOURS, log=include_background
)
st.plotly_chart(figure, key="intensities")
mean_levels = ", ".join(f"{split} {stats[split]['ink']['mean_intensity']:.1f}" for split in SPLITS)
st.caption(
    f"Mean pixel value: {mean_levels} (of 255). Most pixels are background (0) and most ink is saturated (near 255); "
    + ("a log axis keeps both visible." if include_background else "the background is left out here.")
)
