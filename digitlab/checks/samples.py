"""What the benchmark and the load test share: a drawing like the canvas's, and how latencies are summarised."""

import numpy as np

# The Draw page's canvas, in pixels a side.
CANVAS_SIZE = 280


def latency_summary(milliseconds: np.ndarray) -> dict[str, float]:
    """The median and 95th percentile of some latencies in milliseconds."""
    return {
        "p50_ms": round(float(np.percentile(milliseconds, 50)), 3),
        "p95_ms": round(float(np.percentile(milliseconds, 95)), 3),
    }


def synthetic_canvas(seed: int = 0) -> np.ndarray:
    """An RGBA drawing like the dashboard's canvas returns: a white stroke on transparency."""
    rng = np.random.default_rng(seed)
    canvas = np.zeros((CANVAS_SIZE, CANVAS_SIZE, 4), dtype=np.uint8)
    column = CANVAS_SIZE // 2 + int(rng.integers(-30, 30))
    canvas[40:240, column - 9 : column + 9] = 255
    canvas[40:58, column - 60 : column + 9] = 255
    return canvas
