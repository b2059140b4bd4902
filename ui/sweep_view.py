"""Sweeps on the Train and Compare pages: choosing what to sweep, and each sweep as a learning curve or heat map."""

import pandas as pd
import streamlit as st

from digitlab.insight import comparison
from digitlab.lab import sweeps
from ui import charts, run_charts
from ui.training_view import FAMILY_COLOURS, MISSING, open_registry

# How many of the newest sweeps the Train page draws; the Compare page can open any of them.
RECENT_SWEEPS = 2
MODE_TITLES = {"run": "One run", "sweep": "A sweep"}


def choose_mode() -> str:
    """Whether the form starts one run or a sweep."""
    mode = st.segmented_control(
        "Start",
        list(MODE_TITLES),
        default="run",
        format_func=MODE_TITLES.get,
        key="start_mode",
        help="A sweep queues several runs that differ in one or two settings and draws them together: a learning "
        "curve for one setting, a heat map for two.",
    )
    return mode or "run"


def choose_swept_settings(family: str) -> list[str]:
    """The one or two settings a sweep of ``family`` varies (the training-set size to begin with)."""
    chosen = st.pills(
        "Settings to sweep (one or two)",
        list(sweeps.sweepable_settings(family)),
        selection_mode="multi",
        default=["train_size"],
        format_func=lambda name: sweeps.SWEEPABLE[name].capitalize(),
        key=f"swept_{family}",
    )
    return list(chosen)


def values_input(name: str, family: str, container) -> list[float]:
    """A multiselect of the values to try for one swept setting."""
    offered = sweeps.offered_values(name, family)
    return container.multiselect(
        f"{sweeps.SWEEPABLE[name].capitalize()} to try",
        offered,
        default=[value for value in sweeps.STARTING_VALUES[name] if value in offered],
        format_func=lambda value: sweeps.format_value(name, value),
        key=f"sweep_values_{family}_{name}",
    )


def sweep_message(sweep_id: int, run_count: int) -> str:
    return f"Sweep #{sweep_id}: {run_count} runs are in line; they start in order as training slots free."


def _results(limit: int | None = None) -> list[sweeps.SweepResult]:
    with open_registry() as registry:
        records = registry.list_sweeps()[:limit]
        return [sweeps.sweep_result(record, registry.sweep_runs(record.id)) for record in records]


def sweep_figure(result: sweeps.SweepResult):
    if len(result.settings) == 1:
        return run_charts.sweep_curve(result, FAMILY_COLOURS.get(result.sweep.family, charts.MUTED))
    return run_charts.sweep_heatmap(result)


def show_recent_sweeps() -> None:
    """The Train page's newest sweeps, each as its chart; the Compare page opens any sweep and its runs."""
    results = _results(RECENT_SWEEPS)
    if not results:
        st.caption("No sweep yet: choose “A sweep” above to queue runs that differ in one or two settings.")
        return
    with st.grid(columns=2, min_column_width=420):
        for result in results:
            with st.container():
                st.plotly_chart(sweep_figure(result), key=f"recent-sweep-{result.sweep.id}")
                cancel_button(result)
    st.caption("The Compare page shows every sweep, and the run behind each point.")


def cancel_button(result: sweeps.SweepResult) -> None:
    """A button that cancels a sweep's unfinished runs, for a sweep that still has some not yet asked to stop."""
    if result.cancellable:
        st.button(
            f"Cancel its {result.cancellable} unfinished {'run' if result.cancellable == 1 else 'runs'}",
            key=f"cancel-sweep-{result.sweep.id}",
            icon=":material/cancel:",
            on_click=_cancel_sweep,
            args=(result.sweep.id,),
            help="Runs still in line never start, a training one stops within a second or so, and finished runs stay.",
        )


def _cancel_sweep(sweep_id: int) -> None:
    with open_registry() as registry:
        cancelled = registry.cancel_sweep(sweep_id)
    st.toast(f"Sweep #{sweep_id}: {cancelled} unfinished {'run' if cancelled == 1 else 'runs'} cancelled.")


def show_sweep_explorer() -> None:
    """The Compare page's sweeps: one sweep's chart, a table of its runs, and the run of a clicked point."""
    results = {result.sweep.id: result for result in _results()}
    if not results:
        st.info("No sweep yet; start one on the Train page (“A sweep”).", icon=":material/model_training:")
        return
    sweep_id = st.selectbox("Sweep", list(results), format_func=lambda key: results[key].title(), key="compared-sweep")
    result = results[sweep_id]
    event = st.plotly_chart(
        sweep_figure(result), on_select="rerun", selection_mode="points", key=f"sweep-chart-{sweep_id}"
    )
    st.dataframe(
        pd.DataFrame(sweeps.result_table(result)),
        hide_index=True,
        column_config={
            "run": st.column_config.NumberColumn("Run", format="#%d"),
            **{name: st.column_config.NumberColumn(sweeps.SWEEPABLE[name].capitalize()) for name in result.settings},
            "status": st.column_config.TextColumn("Status"),
            "accuracy": st.column_config.NumberColumn("Test accuracy", format="percent"),
            "training_seconds": st.column_config.NumberColumn("Training (s)", format="%.1f"),
        },
        placeholder=MISSING,
        key=f"sweep-table-{sweep_id}",
    )
    picked = selected_run(event)
    if picked is None:
        st.caption("Click a point of the chart to see its run: its settings, scores and training curves.")
        return
    show_run(picked)


def selected_run(event) -> int | None:
    """The run id of the point clicked in a sweep chart, if any."""
    points = charts.selected_points(event)
    for point in points:
        run_id = point.get("customdata")
        if isinstance(run_id, list):
            run_id = run_id[0] if run_id else None
        if run_id is not None:
            return int(run_id)
    return None


def show_run(run_id: int) -> None:
    """One run of a sweep: its label, scores and, for the networks, its epoch curves."""
    with open_registry() as registry:
        run = registry.get_run(run_id)
    with st.container(border=True):
        st.markdown(f"**{run.label}** · {run.status}")
        test = run.metrics.get("test", {})
        if "accuracy" in test:
            st.markdown(
                f"Test accuracy **{test['accuracy']:.2%}** ({test['errors']} errors), trained in "
                f"{run.training_seconds:.1f} s; its model is in `{run.artifact}`, and the Train page can promote it."
            )
        elif run.error:
            st.markdown(run.error)
        history = run.metrics.get("history", {})
        if history.get("loss"):
            st.plotly_chart(
                charts.training_curves(
                    comparison.history_rows(history), run.label, FAMILY_COLOURS.get(run.family, charts.MUTED)
                ),
                key=f"sweep-run-curves-{run.id}",
            )
