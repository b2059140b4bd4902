"""Driving the dashboard in Debian's Chromium with Playwright: starting a server, opening pages, drawing, reading.

Screenshots and server logs go to ``test-artifacts/``.
"""

import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from playwright.sync_api import expect

from digitlab import settings
from digitlab.manifest import Manifest
from digitlab.persistence import read_manifest
from tests.support import PROJECT_ROOT, free_port, wait_until_ready

ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# Seconds; the first page loads TensorFlow and the models, which takes a while on a small machine.
SERVER_START_TIMEOUT = 90
MODEL_LOAD_TIMEOUT_MS = 180_000
PREDICTION_TIMEOUT_MS = 60_000
PAGE_TIMEOUT_MS = 90_000
# URL path and the heading each page shows once it has rendered.
PAGES = {
    "draw": ("", "Draw a digit"),
    "compare": ("compare", "Compare models"),
    "explore": ("explore", "Misclassification explorer"),
    "dataset": ("dataset", "The MNIST dataset"),
}
DESKTOP = {"width": 1440, "height": 1000}
MAIN = '[data-testid="stMain"]'
METRICS = f'{MAIN} [data-testid="stMetric"]'
SKELETON = '[data-testid="stSkeleton"]'
IDLE_APP = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CANVAS = "canvas.upper-canvas"
PHONE = {"width": 390, "height": 844}


def answers_health_check(url: str) -> bool:
    """Whether the Streamlit server at ``url`` says it is healthy."""
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().strip() == b"ok"
    except OSError:
        return False


def start_dashboard(request, environment: dict[str, str], log_path: Path) -> str:
    """Run ``streamlit run app.py`` on a free port until the requesting test or module ends; return its URL."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing; install it with 'apt-get install -y chromium chromium-driver'.")
    ARTIFACTS.mkdir(exist_ok=True)
    port = free_port()
    log = open(log_path, "w")  # noqa: SIM115 - it stays open for the server's lifetime and is closed in the finalizer.
    server = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
        + ["--server.port", str(port), "--server.address", "127.0.0.1"],
        cwd=PROJECT_ROOT,
        env=environment,
        stdout=log,
        stderr=subprocess.STDOUT,
    )

    def stop_server():
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()

    request.addfinalizer(stop_server)
    url = f"http://127.0.0.1:{port}"
    wait_until_ready(
        server, lambda: answers_health_check(url), name="streamlit", log=log_path, seconds=SERVER_START_TIMEOUT
    )
    return url


def open_page(browser, url: str, heading: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    return page


def open_draw_page(browser, url: str, viewport: dict):
    """The Draw page and its canvas, once it shows: the first reading loads every model, which takes a while."""
    page = open_page(browser, url, PAGES["draw"][1], viewport)
    canvas = page.locator(CANVAS).first
    canvas.wait_for(timeout=MODEL_LOAD_TIMEOUT_MS)
    return page, canvas


def wait_until_idle(page) -> None:
    """Wait for the script run to finish and for lazily loaded elements such as charts to replace their skeletons."""
    page.wait_for_timeout(500)
    page.locator(IDLE_APP).wait_for(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(f"!document.querySelector('{SKELETON}')", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)


def choose_whole_number(page) -> None:
    """Switch the Draw page to reading a whole number and wait until the strip has replaced the square canvas.

    On a busy machine the rerun the click starts can begin after :func:`wait_until_idle`'s first pause, which
    would then find the page idle with the square canvas still shown; the strip's size choice comes with the strip.
    """
    page.get_by_text("A whole number").click()
    page.get_by_text("Strip size").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)


def choose_strip(page, strip: str) -> None:
    """Choose the number strip's size and wait until the canvas on the page has changed to it.

    Another size replaces the canvas in a rerun that, on a busy machine, can begin after
    :func:`wait_until_idle`'s first pause; strokes drawn then went to the canvas about to be replaced and were lost.
    """
    if page.get_by_role("radio", name=strip, exact=True).is_checked():
        return
    canvas = page.locator(CANVAS).first
    width = canvas.get_attribute("width")
    page.get_by_text(strip, exact=True).click()
    expect(canvas).not_to_have_attribute("width", width, timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)


def screenshot_whole_page(page, path: Path, viewport: dict) -> None:
    """Streamlit scrolls inside its main area, so the window is made as tall as the page before the shot."""
    height = page.evaluate(f"document.querySelector('{MAIN}').scrollHeight")
    page.set_viewport_size({"width": viewport["width"], "height": min(max(height, viewport["height"]), 16_000)})
    wait_until_idle(page)
    page.screenshot(path=path)
    page.set_viewport_size(viewport)


def horizontal_overflow(page) -> int:
    """How many pixels the widest of the window and the main area is wider than the screen."""
    return page.evaluate(
        f"""Math.max(
            document.documentElement.scrollWidth - document.documentElement.clientWidth,
            document.querySelector('{MAIN}').scrollWidth - document.querySelector('{MAIN}').clientWidth)"""
    )


def trained_manifest_or_skip() -> Manifest:
    """The manifest of the models the dashboard serves; the test is skipped when none has been trained."""
    manifest = read_manifest()
    if not manifest.models:
        pytest.skip(f"No trained models in {settings.models_dir()}; run 'python -m digitlab train'.")
    return manifest


def draw(page, canvas, strokes, steps: int = 25) -> None:
    """Draw each stroke (a list of points as fractions of the canvas) with real mouse moves."""
    box = canvas.bounding_box()
    for stroke in strokes:
        points = [(box["x"] + x * box["width"], box["y"] + y * box["height"]) for x, y in stroke]
        page.mouse.move(*points[0])
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*point, steps=steps)
        page.mouse.up()


def model_readings(page, count: int) -> dict[str, str]:
    """Wait for ``count`` prediction cards and return each model's digit by its title."""
    metrics = page.locator(METRICS)
    page.wait_for_function(
        f"n => document.querySelectorAll('{METRICS}').length === n", arg=count, timeout=PREDICTION_TIMEOUT_MS
    )
    wait_until_idle(page)
    readings = {}
    for position in range(metrics.count()):
        metric = metrics.nth(position)
        title = metric.locator('[data-testid="stMetricLabel"]').inner_text().strip()
        readings[title] = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
    return readings


def heatmap_cell_centre(page, title: str, row: int, column: int) -> tuple[float, float]:
    """Where on the screen the heat map whose title holds ``title`` draws one cell, scrolled into view."""
    return page.evaluate(
        """([title, row, column]) => {
            const plot = Array.from(document.querySelectorAll(".js-plotly-plot")).find(element =>
                element._fullLayout.title.text.includes(title) && element._fullData.some(t => t.type === "heatmap"));
            plot.scrollIntoView({block: "center"});
            const box = plot.getBoundingClientRect(), x = plot._fullLayout.xaxis, y = plot._fullLayout.yaxis;
            return [box.left + x._offset + x.l2p(column), box.top + y._offset + y.l2p(row)];
        }""",
        [title, row, column],
    )


def plot_point_centre(page, title: str, index: int) -> tuple[float, float, list]:
    """Where on the screen the plot whose title holds ``title`` draws point ``index`` of its scatter trace, scrolled
    into view, and that point's customdata."""
    return page.evaluate(
        """([title, index]) => {
            const plot = Array.from(document.querySelectorAll(".js-plotly-plot")).find(element =>
                element._fullLayout.title.text.includes(title));
            plot.scrollIntoView({block: "center"});
            const points = plot._fullData.find(trace => trace.type === "scatter");
            const box = plot.getBoundingClientRect(), x = plot._fullLayout.xaxis, y = plot._fullLayout.yaxis;
            return [box.left + x._offset + x.l2p(points.x[index]), box.top + y._offset + y.l2p(points.y[index]),
                    points.customdata[index]];
        }""",
        [title, index],
    )
