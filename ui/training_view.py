"""The Train page's and the Compare page's views of the run registry: the line, live progress, promotion.

Every view opens its own short-lived registry: the worker process writes to the
same database at the same time, and WAL lets these reads go on while it does.
Each time the page draws or refreshes its runs it also starts the runs in line
that have a free slot, so the line moves even when no worker is left to move it
(after the machine restarted, say).
"""

from collections.abc import Iterator
from contextlib import contextmanager

import pandas as pd
import streamlit as st

from digitlab import settings
from digitlab.errors import DigitlabError
from digitlab.formatting import markdown_table
from digitlab.insight import comparison
from digitlab.lab import promotion, runs, worker
from digitlab.lab.database import DatabaseError
from ui import charts, run_charts

# How often the progress of running trainings is redrawn, in seconds.
PROGRESS_REFRESH_SECONDS = 1.0
FAMILY_COLOURS = run_charts.FAMILY_COLOURS
OUTCOME_KEY = "promotion-outcome"
PENDING_KEY = "promotion-pending"
WATCHED_KEY = "watched-runs"
START_TOKEN_KEY = "start-token"
OUTCOME_ICONS = {"success": ":material/check:", "error": ":material/error:"}
# What the tables show where a run has no value (an SVM's epochs, a failed run's accuracy), instead of "None".
MISSING = "-"
REGISTRY_COLUMNS = {
    "run": st.column_config.NumberColumn("Run", format="#%d"),
    "family": st.column_config.TextColumn("Family"),
    # Wide enough for "succeeded" and "cancelled", which sizing to the first rows cut short.
    "status": st.column_config.TextColumn("Status", width=100),
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
    "created_at": st.column_config.TextColumn("Started", width=170),
    "error": st.column_config.TextColumn("Why it stopped", width="large"),
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


def start_clicked(label: str = "Start training") -> bool:
    """The Start training button: true once per click, however quickly clicks follow each other.

    Clicks that come while the page is still answering the first are sent for the button as it was drawn
    then. A click that is taken gives the button a new key before anything starts, so those later clicks
    name a button that no longer exists and start nothing.
    """
    token = st.session_state.setdefault(START_TOKEN_KEY, 0)
    clicked = st.button(label, icon=":material/model_training:", type="primary", key=f"start-{token}")
    if clicked:
        st.session_state[START_TOKEN_KEY] = token + 1
    return clicked


def start_message(run_id: int) -> str:
    """What the page says once a run is submitted: started, or queued with its place in line."""
    with open_registry() as registry:
        run = registry.get_run(run_id)
        line = [waiting.id for waiting in registry.waiting_runs()]
    if run.id in line:
        return f"Run #{run.id} is queued, {place_in_line(line.index(run.id) + 1, len(line))}."
    return f"Run #{run.id} started."


def place_in_line(place: int, length: int) -> str:
    return "next in line" if place == 1 else f"number {place} of {length} in line"


def show_active_runs() -> None:
    """Progress bars, live curves and cancel buttons for queued and running runs, redrawn every second."""
    limit = _move_the_line()
    st.caption(capacity_text(limit, settings.ray_address()))
    with open_registry() as registry:
        watching = bool(registry.list_runs(runs.ACTIVE))
    # Only while something runs or waits does the section poll; a change of status then redraws the whole page.
    st.fragment(run_every=PROGRESS_REFRESH_SECONDS if watching else None)(_active_runs)()


def capacity_text(limit: int, ray_address: str | None) -> str:
    """Where runs train and how many at once: on this server, or on a Ray cluster that schedules them itself."""
    if ray_address:
        return (
            f"Runs train on the Ray cluster at `{ray_address}` (`{settings.RAY_ADDRESS_VARIABLE}`), which starts "
            f"each when it has the CPUs free; this server follows at most {limit} at once, and later ones wait in line."
        )
    at_once = "1 run trains" if limit == 1 else f"{limit} runs train"
    return (
        f"At most {at_once} at once on this server (`{settings.MAX_TRAINING_RUNS_VARIABLE}`); later ones wait in "
        "line and start in order as runs end."
    )


def _move_the_line() -> int:
    """Fail the runs no process will finish and start the runs in line that have a free slot; return the limit.

    A limit set wrongly is reported and the page's run ends, as nothing could be started.
    """
    try:
        limit = worker.training_slots()
        worker.start_queued_runs(limit=limit)
    except DatabaseError as error:
        st.error(f"**The run registry cannot be used.** {error}", icon=":material/database:")
        st.stop()
    except DigitlabError as error:
        st.error(str(error), icon=":material/error:")
        st.stop()
    return limit


def _active_runs() -> None:
    _move_the_line()
    with open_registry() as registry:
        active = sorted(registry.list_runs(runs.ACTIVE), key=lambda run: (run.status != "running", run.id))
        line = [run.id for run in registry.waiting_runs()]
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
                title_column.markdown(f"**{run.label}**")
                if run.cancel_requested:
                    cancel_column.caption("Cancelling...")
                else:
                    cancel_column.button(
                        "Cancel",
                        key=f"cancel-{run.id}",
                        icon=":material/cancel:",
                        on_click=_cancel,
                        args=(run.id,),
                        help="Takes the run out of the line." if run.id in line else "Stops the training.",
                    )
                st.progress(run.fraction_done, text=progress_text(run, line))
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


def progress_text(run: runs.Run, line: list[int]) -> str:
    """The text of a run's progress bar: its status and stage, or its place in the line of waiting runs."""
    if run.id in line:
        return f"queued · {place_in_line(line.index(run.id) + 1, len(line))}, waiting for a free training slot"
    return f"{run.status} · {run.stage or 'waiting for the worker'}"


def _cancel(run_id: int) -> None:
    with open_registry() as registry:
        registry.request_cancel(run_id)


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
        placeholder=MISSING,
        key="run-registry",
    )
    return recorded


def show_promotion(recorded: list[runs.Run]) -> None:
    """Which models are in use, a way to promote a succeeded run and to roll the last promotion back.

    Promoting asks first, showing what would change: the family's test accuracy before and after, and the
    models that would drop out with the one replaced.
    """
    # The buttons act in callbacks, before this run reads the pointer, so the page shows the outcome at once.
    outcome = st.session_state.pop(OUTCOME_KEY, None)
    if outcome is not None:
        (st.success if outcome[0] == "success" else st.error)(outcome[1], icon=OUTCOME_ICONS[outcome[0]])
    try:
        pointer = promotion.read_pointer()
    except promotion.PromotionError as error:
        st.error(str(error), icon=":material/error:")
        return
    # A success already says which models are in use now; the same sentence twice reads as two events.
    if outcome is None or outcome[0] != "success":
        st.info(promotion.describe_pointer(pointer), icon=":material/verified:")
    succeeded = [run for run in recorded if run.status == "succeeded"]
    chosen = None
    promote_column, rollback_column = st.columns(2, vertical_alignment="bottom")
    with promote_column:
        if succeeded:
            labels = {run.id: f"{run.label} · {run.metrics['test']['accuracy']:.2%}" for run in succeeded}
            chosen = st.selectbox("Run to promote", list(labels), format_func=labels.get, key="promote-run")
            st.button("Promote...", icon=":material/upgrade:", key="promote", on_click=_ask_to_promote, args=(chosen,))
        else:
            st.caption("A run that succeeded can be promoted to be the model the Draw page and `predict` use.")
    if pointer["generation"] is not None:
        rollback_column.button(
            "Roll back the last promotion", icon=":material/undo:", key="rollback", on_click=_rollback
        )
    pending = st.session_state.get(PENDING_KEY)
    if pending is not None and pending == chosen:
        _confirm_promotion(pending)
    else:
        # Choosing another run, or one that is gone, drops a question that was about a different run.
        st.session_state.pop(PENDING_KEY, None)
    st.caption(
        "Promoted models live in the user data folder; the shipped `models/` folder is never changed. "
        f"In use now: `{promotion.serving_models_dir()}`."
    )


def _ask_to_promote(run_id: int) -> None:
    st.session_state[PENDING_KEY] = run_id


def _confirm_promotion(run_id: int) -> None:
    """What promoting ``run_id`` would change, with buttons to go ahead or to keep the models in use."""
    try:
        plan = promotion.plan_run_promotion(run_id)
    except DigitlabError as error:
        st.session_state.pop(PENDING_KEY, None)
        st.error(str(error), icon=":material/error:")
        return
    with st.container(border=True, key="promotion-confirmation"):
        st.warning(promotion_preview(plan), icon=":material/warning:")
        confirm_column, cancel_column = st.columns(2)
        confirm_column.button(
            f"Promote run #{run_id}",
            icon=":material/upgrade:",
            type="primary",
            key="confirm-promote",
            on_click=_promote,
            args=(run_id,),
        )
        cancel_column.button("Keep the models in use", key="cancel-promote", on_click=_forget_pending)


def promotion_preview(plan: promotion.PromotionPlan) -> str:
    """The question the Promote button asks: the accuracy change and the models that would drop out."""
    family = promotion.short_name(plan.family)
    lines = [f"**Promote run #{plan.run_id}?** {_accuracy_change(plan, family)}"]
    for name in plan.left_out:
        lines.append(
            f"The {promotion.short_name(name)} would drop out of the Draw page and the sidebar: its weights were "
            f"fitted to the {family} being replaced. Rolling back this promotion brings it back; the Train page "
            f"cannot retrain it, `python -m digitlab train --model {name} --out FOLDER` fits a new one to the "
            "models in FOLDER."
        )
    return "\n\n".join(lines)


def _accuracy_change(plan: promotion.PromotionPlan, family: str) -> str:
    new = "no recorded score" if plan.new_accuracy is None else f"{plan.new_accuracy:.2%}"
    if plan.current_accuracy is None:
        return f"Its {family} ({new} test accuracy) would be the first {family} in use."
    sentence = f"Its {family} would replace the {family} in use: test accuracy {plan.current_accuracy:.2%} → {new}"
    if plan.new_accuracy is None:
        return sentence + "."
    points = 100 * (plan.new_accuracy - plan.current_accuracy)
    if round(points, 2) == 0:
        return sentence + ", the same."
    return sentence + f", {abs(points):.2f} points {'higher' if points > 0 else 'lower'}."


def _forget_pending() -> None:
    st.session_state.pop(PENDING_KEY, None)


def _promote(run_id: int) -> None:
    _forget_pending()
    try:
        plan = promotion.plan_run_promotion(run_id)
        pointer = promotion.promote_run(run_id)
    except DigitlabError as error:
        st.session_state[OUTCOME_KEY] = ("error", str(error))
    else:
        st.session_state[OUTCOME_KEY] = ("success", promoted_message(plan, pointer))


def promoted_message(plan: promotion.PromotionPlan, pointer: dict) -> str:
    """The one message after a promotion: what is in use now, what it scored before, and what dropped out."""
    family = promotion.short_name(plan.family)
    message = f"Run #{plan.run_id}'s {family} is now in use on the Draw page and in `predict`"
    if plan.new_accuracy is not None and plan.current_accuracy is not None:
        message += f": test accuracy {plan.new_accuracy:.2%}, {plan.current_accuracy:.2%} before"
    message += f" (promoted {pointer['promoted_at']})."
    dropped = [promotion.short_name(name) for name in pointer.get("left_out") or {}]
    if dropped:
        message += (
            f" The {' and the '.join(dropped)} left the Draw page and the sidebar, as its weights were fitted to "
            f"the {family} replaced; rolling back brings it back."
        )
    return message


def _rollback() -> None:
    try:
        restored = promotion.rollback()
    except DigitlabError as error:
        st.session_state[OUTCOME_KEY] = ("error", str(error))
    else:
        st.session_state[OUTCOME_KEY] = ("success", f"Rolled back. {promotion.describe_pointer(restored)}")


def show_run_comparison() -> None:
    """The Compare page's section on training runs: their scores side by side and learning curves per family."""
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
        placeholder=MISSING,
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


def show_training_recipe(hyperparameters: dict, notes: dict) -> None:
    """A model's hyperparameters as a setting/value table and its training notes as sentences."""
    if hyperparameters:
        rows = [(name.replace("_", " "), recipe_value(value)) for name, value in hyperparameters.items()]
        st.markdown(markdown_table(["setting", "value"], rows))
    for name, note in notes.items():
        st.markdown(f"- **{name.replace('_', ' ').capitalize()}**: {recipe_value(note)}")


def recipe_value(value) -> str:
    """One hyperparameter or note as words: lists joined, tables as ``key value`` pairs, nothing as a dash."""
    if value is None:
        return "-"
    if isinstance(value, dict):
        return ", ".join(f"{key} {recipe_value(item)}" for key, item in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(recipe_value(item) for item in value)
    return str(value)
