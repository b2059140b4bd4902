"""The Train page's and the compare page's views of the run registry: live progress, the registry, promotion.

Every view opens its own short-lived registry: the worker process writes to the
same database at the same time, and WAL lets these reads go on while it does.
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from digitlab.errors import DigitlabError
from digitlab.insight import comparison
from digitlab.lab import promotion, runs
from digitlab.lab.database import DatabaseError
from ui import charts, run_charts

# How often the progress of running trainings is redrawn, in seconds.
PROGRESS_REFRESH_SECONDS = 1.0
FAMILY_COLOURS = run_charts.FAMILY_COLOURS
OUTCOME_KEY = "promotion-outcome"
WATCHED_KEY = "watched-runs"
OUTCOME_ICONS = {"success": ":material/check:", "error": ":material/error:"}
REGISTRY_COLUMNS = {
    "run": st.column_config.NumberColumn("Run", format="#%d"),
    "family": st.column_config.TextColumn("Family"),
    "status": st.column_config.TextColumn("Status"),
    "train_size": st.column_config.NumberColumn("MNIST images", format="localized"),
    "epochs": st.column_config.NumberColumn("Epochs"),
    "augment": st.column_config.CheckboxColumn("Augmented"),
    "drawings_in_training": st.column_config.NumberColumn("Drawings trained on"),
    "accuracy": st.column_config.NumberColumn("Test accuracy", format="percent"),
    "errors": st.column_config.NumberColumn("Test errors"),
    "drawings_accuracy": st.column_config.NumberColumn(
        "Drawings accuracy", format="percent", help="On saved drawings that the run did not train on."
    ),
    "training_seconds": st.column_config.NumberColumn("Training (s)", format="%.1f"),
    "created_at": st.column_config.TextColumn("Started"),
    "error": st.column_config.TextColumn("Why it stopped"),
}


@contextmanager
def open_registry() -> Iterator[runs.RunRegistry]:
    """The run registry; a database that cannot be opened, read or written is reported and the page's run ends."""
    try:
        with runs.RunRegistry() as opened:
            yield opened
    except DatabaseError as error:
        st.error(f"**The run registry cannot be used.** {error}", icon=":material/database:")
        st.stop()


def show_active_runs() -> None:
    """Progress bars, live curves and cancel buttons for queued and running runs, redrawn every second."""
    with open_registry() as registry:
        registry.mark_lost_runs()
        watching = bool(registry.list_runs(runs.ACTIVE))
    # Only while something runs does the section poll; a finished run then redraws the whole page once.
    st.fragment(run_every=PROGRESS_REFRESH_SECONDS if watching else None)(_active_runs)()


def _active_runs() -> None:
    with open_registry() as registry:
        active = registry.list_runs(runs.ACTIVE)
        # A run that started or finished since the page was drawn changes the registry too: redraw all of it.
        statuses = {run.id: run.status for run in active}
        if statuses != st.session_state.setdefault(WATCHED_KEY, statuses):
            st.session_state[WATCHED_KEY] = statuses
            st.rerun()
        if not active:
            st.caption("No training is running.")
            return
        for run in active:
            with st.container(border=True):
                title_column, cancel_column = st.columns([5, 1], vertical_alignment="center")
                title_column.markdown(f"**{run.label}** · {_describe_parameters(run)}")
                if run.cancel_requested:
                    cancel_column.caption("Cancelling...")
                else:
                    cancel_column.button(
                        "Cancel", key=f"cancel-{run.id}", icon=":material/cancel:", on_click=_cancel, args=(run.id,)
                    )
                st.progress(run.fraction_done, text=f"{run.status}: {run.stage or 'waiting for the worker'}")
                history = registry.epoch_history(run.id)
                if history["loss"]:
                    st.plotly_chart(
                        charts.training_curves(
                            comparison.history_rows(history),
                            f"Run #{run.id}",
                            FAMILY_COLOURS.get(run.family, charts.MUTED),
                        ),
                        key=f"live-curves-{run.id}",
                    )


def _cancel(run_id: int) -> None:
    with open_registry() as registry:
        registry.request_cancel(run_id)


def _describe_parameters(run: runs.Run) -> str:
    parameters = run.parameters
    parts = [f"{key} {parameters[key]}" for key in ("epochs", "C", "gamma") if key in parameters]
    parts.append("augmented" if parameters.get("augment") else "no augmentation")
    if parameters.get("include_drawings"):
        parts.append("with saved drawings")
    return ", ".join(parts)


def show_registry() -> list[runs.Run]:
    """The table of every run, newest first; returns the runs."""
    with open_registry() as registry:
        recorded = registry.list_runs()
    if not recorded:
        st.info("No runs yet: start one above. Each run is recorded here with its parameters, scores and timings.")
        return recorded
    st.dataframe(
        pd.DataFrame([runs.summary_row(run) for run in recorded]),
        hide_index=True,
        column_config=REGISTRY_COLUMNS,
        key="run-registry",
    )
    return recorded


def show_promotion(recorded: list[runs.Run]) -> None:
    """Which models are in use, a way to promote a succeeded run and to roll the last promotion back."""
    # The buttons act in callbacks, before this run reads the pointer, so the page shows the outcome at once.
    outcome = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        (st.success if outcome[0] == "success" else st.error)(outcome[1], icon=OUTCOME_ICONS[outcome[0]])
    try:
        pointer = promotion.read_pointer()
    except promotion.PromotionError as error:
        st.error(str(error), icon=":material/error:")
        return
    st.info(promotion.describe_pointer(pointer), icon=":material/verified:")
    succeeded = [run for run in recorded if run.status == "succeeded"]
    promote_column, rollback_column = st.columns(2, vertical_alignment="bottom")
    with promote_column:
        if succeeded:
            labels = {run.id: f"{run.label} · {run.metrics['test']['accuracy']:.2%}" for run in succeeded}
            chosen = st.selectbox("Run to promote", list(labels), format_func=labels.get, key="promote-run")
            st.button(
                "Promote",
                icon=":material/upgrade:",
                type="primary",
                key="promote",
                on_click=_act,
                args=(lambda: promotion.promote_run(chosen),),
            )
        else:
            st.caption("A run that succeeded can be promoted to be the model the draw page and `predict` use.")
    if pointer["generation"] is not None:
        rollback_column.button(
            "Roll back the last promotion",
            icon=":material/undo:",
            key="rollback",
            on_click=_act,
            args=(promotion.rollback,),
        )
    st.caption(
        "Promoted models live in the user data folder; the shipped `models/` folder is never changed. "
        f"In use now: `{promotion.serving_models_dir()}`."
    )


def _act(action) -> None:
    try:
        pointer = action()
    except DigitlabError as error:
        st.session_state[OUTCOME_KEY] = ("error", str(error))
    else:
        st.session_state[OUTCOME_KEY] = ("success", promotion.describe_pointer(pointer))


def show_run_comparison() -> None:
    """The compare page's section on training runs: their scores side by side and learning curves per family."""
    with open_registry() as registry:
        succeeded = registry.list_runs(("succeeded",))
    if not succeeded:
        st.info("No training run has finished yet; start one on the Train page.", icon=":material/model_training:")
        return
    labels = {run.id: run.label for run in succeeded}
    chosen_ids = st.multiselect(
        "Runs", list(labels), default=list(labels)[:12], format_func=labels.get, key="compared-runs"
    )
    chosen = [run for run in succeeded if run.id in chosen_ids]
    if not chosen:
        st.info("Choose at least one run to compare.")
        return
    st.dataframe(
        pd.DataFrame([runs.summary_row(run) for run in chosen]).drop(columns=["status", "error"]),
        hide_index=True,
        column_config=REGISTRY_COLUMNS,
        key="compared-runs-table",
    )
    rows = runs.learning_curve_rows(chosen)
    st.caption(
        "Learning curves: each line is one family with one setting, through its runs on different numbers of "
        "training images (log scale); training time shows how the cost grows with the work."
    )
    accuracy_column, time_column = st.columns(2)
    accuracy_column.plotly_chart(
        run_charts.learning_curves(rows, "accuracy", "Test accuracy by training images", percent=True),
        key="learning-accuracy",
    )
    time_column.plotly_chart(
        run_charts.learning_curves(rows, "training_seconds", "Training time (s) by training images", percent=False),
        key="learning-time",
    )
    with_history = [run for run in chosen if run.metrics.get("history", {}).get("loss")]
    if with_history:
        with st.grid(columns=2, min_column_width=420):
            for run in with_history:
                st.plotly_chart(
                    charts.training_curves(
                        comparison.history_rows(run.metrics["history"]),
                        run.label,
                        FAMILY_COLOURS.get(run.family, charts.MUTED),
                    ),
                    key=f"run-curves-{run.id}",
                )
