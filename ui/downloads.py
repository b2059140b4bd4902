"""MNIST fetched by the page that first needs it, with a progress bar, instead of sending the user away to get it."""

import threading
from pathlib import Path

import streamlit as st

from digitlab.data.mnist import DownloadProgress, download_mnist
from digitlab.formatting import megabytes

# The same share of the download that a training run records as its progress while it fetches MNIST.
from digitlab.lab.worker import download_fraction as progress_fraction


@st.cache_resource(show_spinner=False)
def _download_lock() -> threading.Lock:
    # Sessions that open a data page at the same moment download the files once: the others wait, then find them.
    return threading.Lock()


def progress_text(progress: DownloadProgress) -> str:
    """What the bar says: the file, which of how many, and its megabytes so far."""
    return (
        f"Downloading MNIST (first use on this machine): file {progress.file_number} of {progress.file_count}, "
        f"`{progress.file_name}`, {megabytes(progress.bytes_done, progress.bytes_total)}"
    )


def fetch_mnist(folder: Path) -> None:
    """Download the MNIST files ``folder`` lacks, verified, showing bytes and files as they arrive.

    Raises :class:`digitlab.errors.DataUnavailableError` (saying what to do) when no mirror gives them.
    """
    bar = st.progress(0.0, text="Downloading MNIST (first use on this machine)...")
    shown_percent = -1

    def show(progress: DownloadProgress) -> None:
        nonlocal shown_percent
        fraction = progress_fraction(progress)
        # A message per whole percent keeps the page responsive; one per 64 KiB chunk would flood it.
        if int(fraction * 100) != shown_percent:
            shown_percent = int(fraction * 100)
            bar.progress(fraction, text=progress_text(progress))

    try:
        with _download_lock():
            download_mnist(folder, progress=show)
    finally:
        bar.empty()
