"""Column settings that the dashboard's tables share."""

import streamlit as st

# The model's name, pinned to the left: at a phone's width the figures scroll sideways, and a pinned name keeps
# each row's model in view while they do.
MODEL_COLUMN = st.column_config.TextColumn("Model", pinned=True)
