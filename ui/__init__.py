"""Streamlit helpers shared by the dashboard's pages: cached resources, messages, charts and digit images.

Caching and everything else that needs Streamlit lives here, never in ``digitlab``.
"""
