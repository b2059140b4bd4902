"""The Compare page's time-to-accuracy section: the quick recipes' test-accuracy curves against Keras' examples."""

import streamlit as st

from digitlab.checks.time_to_accuracy import FamilyCurves, recorded_curves
from ui import charts, resources

EXPLANATION = (
    "How fast each recipe gets good, measured by `python -m digitlab bench --time-to-accuracy`: the quick recipe "
    "(the Train page's default) and Keras' own example for the same kind of network, trained one after the other "
    "on this machine, each measured on the 10,000 test images four times an epoch. The test images only report: "
    "nothing is chosen or stopped on them, and the time spent measuring is not counted."
)


def comparison_sentence(curves: FamilyCurves) -> str:
    """What the curves say, in one sentence with the ratios to the example's whole training time."""
    comparison = curves.comparison
    # The example's epochs are named with its accuracy: beside "the quick CNN" they read as the quick run's own.
    reference = (
        f"{comparison['reference_final_accuracy']:.2%} (the example's accuracy after its {curves.reference.epochs} "
        "epochs)"
    )

    def reached(seconds, ratio, what: str) -> str:
        if seconds is None:
            return f"never reached {what}"
        whole = curves.reference.training_seconds
        return f"reached {what} in {seconds:.0f} s ({ratio:.0%} of the example's {whole:.0f} s)"

    return (
        f"The quick {curves.family.upper()} "
        + reached(comparison["quick_seconds_to_reference_final"], comparison["ratio_to_reference_final"], reference)
        + " and "
        + reached(
            comparison["quick_seconds_to_milestone"], comparison["ratio_to_milestone"], f"{comparison['milestone']:.0%}"
        )
        + "."
    )


def show_time_to_accuracy(colours: dict[str, str]) -> None:
    """One chart per family with recorded curves, or how to record them."""
    recorded = recorded_curves(resources.benchmark())
    if not recorded:
        st.info(
            "No time-to-accuracy curves have been recorded for these models: run "
            "`python -m digitlab bench --time-to-accuracy` (about 8 minutes).",
            icon=":material/timer:",
        )
        return
    st.caption(EXPLANATION)
    with st.grid(columns=2, min_column_width=420):
        for curves in recorded:
            with st.container():
                st.plotly_chart(
                    charts.time_to_accuracy_chart(curves, colours.get(curves.family, charts.PALETTE[0])),
                    key=f"time-to-accuracy-{curves.family}",
                )
                st.caption(comparison_sentence(curves))
