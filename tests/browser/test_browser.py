"""The dashboard in a real browser: drawing digits on the canvas, and every page at desktop and phone width.

Starts ``streamlit run app.py`` on a free port and drives Debian's Chromium
with Playwright. Screenshots and the server log go to ``test-artifacts/``.
"""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from digitlab import settings
from digitlab.data.mnist import FILES, load_mnist
from digitlab.errors import DigitlabError
from digitlab.insight.comparison import largest_confusion
from digitlab.persistence import read_manifest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
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
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"streamlit exited with {server.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read().strip() == b"ok":
                    return
        except OSError:
            time.sleep(0.5)
    pytest.fail(f"streamlit did not answer within {SERVER_START_TIMEOUT} s:\n{log.read_text()}")


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
        cwd=ROOT,
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
    wait_until_healthy(url, server, log_path)
    return url


@pytest.fixture(scope="module")
def server_url(request):
    # The session's MNIST folder is in the environment (tests/conftest.py), so the server reads the same data.
    return start_dashboard(request, dict(os.environ), ARTIFACTS / "streamlit-server.log")


@pytest.fixture(scope="module")
def browser(server_url):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        # Until some session has run app.py, Streamlit treats pages/ as an old-style multipage folder and runs a
        # deep-linked page without app.py (no page config, no sidebar); opening the entry page first avoids that.
        open_page(chromium, server_url, PAGES["draw"][1], DESKTOP).close()
        yield chromium
        chromium.close()


def open_page(browser, url: str, heading: str, viewport: dict):
    page = browser.new_page(viewport=viewport)
    page.goto(url)
    page.get_by_role("heading", name=heading).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    return page


def wait_until_idle(page) -> None:
    """Wait for the script run to finish and for lazily loaded elements such as charts to replace their skeletons."""
    page.wait_for_timeout(500)
    page.locator(IDLE_APP).wait_for(timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function(f"!document.querySelector('{SKELETON}')", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_timeout(500)


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


def trained_manifest_or_skip() -> dict:
    """The manifest of the models the dashboard serves; the test is skipped when none has been trained."""
    manifest = read_manifest()
    if not manifest["models"]:
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


@pytest.fixture(scope="module")
def drawn_readings(browser, server_url):
    """What every model reads for a drawn "1" and a drawn "7", keyed by digit and model title."""
    manifest = trained_manifest_or_skip()
    page = open_page(browser, server_url, PAGES["draw"][1], DESKTOP)
    canvas = page.locator("canvas.upper-canvas").first
    canvas.wait_for(timeout=MODEL_LOAD_TIMEOUT_MS)
    strokes = {
        "1": [[(0.5, 0.15), (0.5, 0.85)]],
        "7": [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]],
    }
    readings = {}
    for digit, digit_strokes in strokes.items():
        if readings:
            page.get_by_role("button", name="Clear the canvas").click()
            page.wait_for_function(f"!document.querySelector('{METRICS}')", timeout=PREDICTION_TIMEOUT_MS)
            wait_until_idle(page)
        canvas = page.locator("canvas.upper-canvas").first
        canvas.wait_for()
        draw(page, canvas, digit_strokes)
        readings[digit] = model_readings(page, len(manifest["models"]))
        assert page.locator('[data-testid="stException"]').count() == 0
        screenshot_whole_page(page, ARTIFACTS / f"draw-{digit}.png", DESKTOP)
    page.close()
    return readings


def test_every_model_answers_a_drawn_digit(drawn_readings):
    titles = {entry.get("title", name) for name, entry in read_manifest()["models"].items()}

    for digit, readings in drawn_readings.items():
        assert set(readings) == titles, f"predictions shown for the drawn {digit}: {readings}"
        assert all(value.isdigit() and len(value) == 1 for value in readings.values()), readings


def test_cnn_reads_the_drawn_digits(drawn_readings):
    cnn = read_manifest()["models"].get("cnn")
    if cnn is None:
        pytest.skip(f"The manifest in {settings.models_dir()} has no cnn, so there is no CNN reading to check.")
    for digit, readings in drawn_readings.items():
        assert readings[cnn["title"]] == digit, f"the CNN read the drawn {digit} as {readings[cnn['title']]}"


@pytest.mark.parametrize("viewport_name", ["desktop", "phone"])
@pytest.mark.parametrize("page_name", list(PAGES))
def test_page_renders_without_exception(browser, server_url, page_name, viewport_name):
    path, heading = PAGES[page_name]
    viewport = DESKTOP if viewport_name == "desktop" else PHONE
    page = open_page(browser, f"{server_url}/{path}", heading, viewport)

    assert page.locator('[data-testid="stException"]').count() == 0
    # On a phone the page may scroll down, but nothing may stick out sideways.
    overflow = horizontal_overflow(page)
    screenshot_whole_page(page, ARTIFACTS / f"{page_name}-{viewport_name}.png", viewport)
    page.close()
    assert overflow <= 1, f"{page_name} is {overflow} px wider than a {viewport['width']} px screen"


def cell_centre(page, title: str, true_digit: int, predicted_digit: int) -> tuple[float, float]:
    """Where on the screen the confusion heatmap titled ``title`` draws one cell."""
    return page.evaluate(
        """([title, row, column]) => {
            const plot = Array.from(document.querySelectorAll(".js-plotly-plot")).find(element =>
                element._fullLayout.title.text.includes(title) && element._fullData.some(t => t.type === "heatmap"));
            plot.scrollIntoView({block: "center"});
            const box = plot.getBoundingClientRect(), x = plot._fullLayout.xaxis, y = plot._fullLayout.yaxis;
            return [box.left + x._offset + x.l2p(column), box.top + y._offset + y.l2p(row)];
        }""",
        [title, true_digit, predicted_digit],
    )


def test_a_clicked_confusion_cell_lists_its_images_and_opens_the_explorer(browser, server_url):
    manifest = trained_manifest_or_skip()
    try:
        load_mnist("test", download=False)
    except DigitlabError as error:
        pytest.skip(f"MNIST test images unavailable: {error}")
    entry = list(manifest["models"].values())[-1]
    matrix = np.asarray(entry["metrics"]["confusion_matrix"])
    true_digit, predicted_digit = largest_confusion(matrix)
    count = int(matrix[true_digit, predicted_digit])
    page = open_page(browser, f"{server_url}/compare", PAGES["compare"][1], DESKTOP)

    page.mouse.click(*cell_centre(page, entry["title"], true_digit, predicted_digit))
    wait_until_idle(page)

    listed = f"{count:,} test images of a {true_digit} that {entry['title']} reads as {predicted_digit}"
    page.get_by_text(listed).wait_for(timeout=PAGE_TIMEOUT_MS)
    screenshot_whole_page(page, ARTIFACTS / "compare-cell-clicked.png", DESKTOP)

    page.get_by_role("button", name="Open these mistakes in the explorer").click()
    page.get_by_role("heading", name=PAGES["explore"][1]).first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.url.endswith("/explore")
    assert page.get_by_text(f"of {count:,} matching images").count() == 1
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "explore-from-cell.png", DESKTOP)
    page.close()


def test_explorer_sample_tab_marks_each_models_answers(browser, server_url):
    page = open_page(browser, f"{server_url}/explore", PAGES["explore"][1], DESKTOP)

    page.get_by_role("tab", name="Random sample").click()
    page.get_by_text("In this sample:").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.get_by_text("✓").count() + page.get_by_text("✗").count() > 0
    screenshot_whole_page(page, ARTIFACTS / "explore-sample-desktop.png", DESKTOP)
    page.close()


def test_a_first_visit_to_the_explorer_downloads_mnist_into_a_fresh_data_folder(
    request, browser, tmp_path, http_mirror
):
    trained_manifest_or_skip()
    fresh = tmp_path / "fresh-cache" / "mnist"
    environment = dict(os.environ)
    environment.update({settings.DATA_DIR_VARIABLE: str(fresh), settings.MNIST_MIRRORS_VARIABLE: http_mirror})
    url = start_dashboard(request, environment, ARTIFACTS / "streamlit-server-fresh-data.log")
    page = open_page(browser, url, PAGES["draw"][1], DESKTOP)

    page.get_by_role("link", name=PAGES["explore"][1]).first.click()
    page.get_by_text("matching images").first.wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert sorted(path.name for path in fresh.iterdir()) == sorted(spec.gz_name for spec in FILES.values())
    assert page.locator('[data-testid="stException"]').count() == 0
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "explore-fresh-data.png", DESKTOP)
    page.close()


def test_server_log_has_no_tracebacks_or_deprecations(browser, server_url):
    for path, heading in PAGES.values():
        open_page(browser, f"{server_url}/{path}", heading, DESKTOP).close()
    log = (ARTIFACTS / "streamlit-server.log").read_text()

    assert "Traceback" not in log, log
    assert "deprecat" not in log.lower(), log
