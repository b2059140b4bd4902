"""Measurements of the models as a whole: the benchmark, the real-world validation and the README tables built
from them."""
