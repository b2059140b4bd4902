"""Browse the test images a model gets wrong, a random sample, a map of the test set and suspect labels.

Reads the probabilities stored when the models were evaluated and the
precomputed map and look-alikes, so it opens quickly; a model runs only when
the user asks why it gave an answer.
"""

import streamlit as st

from digitlab.insight.explorer import mistake_indices, predicted_digits, usable_probabilities
from ui import explorer_view, insight_resources, problems, resources
from ui.sidebar import route_through_app

route_through_app()
st.title("Misclassification explorer")

manifest = problems.trained_manifest_or_stop()
titles = resources.model_titles(manifest)
images, labels = problems.mnist_or_stop("test", "The explorer")
probabilities, unusable = usable_probabilities(problems.test_probabilities_or_stop(), manifest.models, len(labels))
for message in unusable:
    st.warning(message, icon=":material/warning:")
if not probabilities:
    st.stop()
predicted = predicted_digits(probabilities)
issues, issue_models = insight_resources.label_issues(probabilities, labels)
insight, insight_reason = insight_resources.insight_or_reason()
data = explorer_view.ExplorerData(
    images=images,
    labels=labels,
    probabilities=probabilities,
    predicted=predicted,
    mistakes=mistake_indices(predicted, labels),
    titles=titles,
    issues=issues,
    issue_models=issue_models,
    insight=insight,
    insight_reason=insight_reason,
)
selection = explorer_view.map_selection()
# The Compare page hands over a confusion-matrix cell to open pre-filtered.
explorer_view.take_handoff(probabilities)

mistakes_tab, sample_tab, map_tab, labels_tab = st.tabs(
    [
        ":material/error: Mistakes",
        ":material/casino: Sample",
        ":material/scatter_plot: Map",
        ":material/label_off: Doubtful labels",
    ]
)
with mistakes_tab:
    explorer_view.show_mistakes_tab(data, selection)
with sample_tab:
    explorer_view.show_sample_tab(data)
with map_tab:
    explorer_view.show_map_tab(data, selection)
with labels_tab:
    explorer_view.show_label_issues_tab(data)
