"""Full-page screenshots of every dashboard page at a desktop and a phone size, for looking the layout over.

The Draw page is shot with a digit drawn on it and again in whole-number mode with a number written on the
strip; the explorer with its first mistake opened with Inspect. The shots go to
``test-artifacts/screenshots/<page>-desktop.png`` and ``<page>-phone.png``.

Run from the repository root, with the MNIST folder the dashboard should use:
``DIGITLAB_DATA_DIR=/path/to/mnist .venv/bin/python scripts/screenshots.py``. It starts its own Streamlit server
and stops it at the end; ``--url`` shoots a dashboard that is already running instead.
"""

import argparse
import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import sync_playwright  # noqa: E402

from tests.browser.dashboard import (  # noqa: E402
    ARTIFACTS,
    CANVAS,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGE_TIMEOUT_MS,
    PHONE,
    PREDICTION_TIMEOUT_MS,
    SERVER_START_TIMEOUT,
    answers_health_check,
    choose_strip,
    choose_whole_number,
    draw,
    open_draw_page,
    open_page,
    screenshot_whole_page,
    wait_until_idle,
)
from tests.support import PROJECT_ROOT, free_port, wait_until_ready  # noqa: E402

SCREENSHOTS = ARTIFACTS / "screenshots"
VIEWPORTS = {"desktop": {"width": 1440, "height": 900}, "phone": PHONE}
# URL path and the heading each page shows once it has rendered.
PAGES = {
    "compare": ("compare", "Compare models"),
    "dataset": ("dataset", "The MNIST dataset"),
    "my-digits": ("my_digits", "My digits"),
    "train": ("train", "Train a model"),
}
# Strokes as fractions of the canvas: a 7 on the square, and "107" on the whole-number strip.
SEVEN = [[(0.25, 0.2), (0.75, 0.2), (0.42, 0.85)]]
NUMBER = [
    [(0.22, 0.14), (0.22, 0.86)],
    [(0.45, 0.14), (0.38, 0.3), (0.38, 0.7), (0.45, 0.86), (0.52, 0.7), (0.52, 0.3), (0.45, 0.14), (0.41, 0.2)],
    [(0.62, 0.18), (0.78, 0.18), (0.67, 0.86)],
]


@contextlib.contextmanager
def dashboard_server() -> Iterator[str]:
    """A ``streamlit run app.py`` on a free port for as long as the block runs; yields its URL."""
    port = free_port()
    log_path = SCREENSHOTS / "streamlit-server.log"
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true"]
            + ["--server.port", str(port), "--server.address", "127.0.0.1"],
            cwd=PROJECT_ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            url = f"http://127.0.0.1:{port}"
            wait_until_ready(
                server, lambda: answers_health_check(url), name="streamlit", log=log_path, seconds=SERVER_START_TIMEOUT
            )
            yield url
        finally:
            server.terminate()
            server.wait(timeout=30)


def shoot_draw(browser, url: str, viewport_name: str) -> None:
    viewport = VIEWPORTS[viewport_name]
    page, canvas = open_draw_page(browser, url, viewport)
    draw(page, canvas, SEVEN)
    page.get_by_text("Why this answer").first.wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    screenshot_whole_page(page, SCREENSHOTS / f"draw-{viewport_name}.png", viewport)
    page.close()


def shoot_draw_number(browser, url: str, viewport_name: str) -> None:
    viewport = VIEWPORTS[viewport_name]
    page, _ = open_draw_page(browser, url, viewport)
    choose_whole_number(page)
    if viewport_name == "desktop":
        choose_strip(page, "Wide")
    draw(page, page.locator(CANVAS).first, NUMBER)
    page.get_by_text("Digit 1", exact=True).wait_for(timeout=PREDICTION_TIMEOUT_MS)
    wait_until_idle(page)
    screenshot_whole_page(page, SCREENSHOTS / f"draw-number-{viewport_name}.png", viewport)
    page.close()


def shoot_explore(browser, url: str, viewport_name: str) -> None:
    viewport = VIEWPORTS[viewport_name]
    page = open_page(browser, f"{url}/explore", "Misclassification explorer", viewport)
    page.get_by_role("button", name="Inspect").first.click()
    page.locator('[role="dialog"]').get_by_text("Test image #").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)
    screenshot_whole_page(page, SCREENSHOTS / f"explore-{viewport_name}.png", viewport)
    page.close()


def shoot_plain(browser, url: str, viewport_name: str, name: str) -> None:
    viewport = VIEWPORTS[viewport_name]
    path, heading = PAGES[name]
    page = open_page(browser, f"{url}/{path}", heading, viewport)
    screenshot_whole_page(page, SCREENSHOTS / f"{name}-{viewport_name}.png", viewport)
    page.close()


def shoot_all(url: str) -> None:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        for viewport_name in VIEWPORTS:
            shoot_draw(browser, url, viewport_name)
            shoot_draw_number(browser, url, viewport_name)
            shoot_explore(browser, url, viewport_name)
            for name in PAGES:
                shoot_plain(browser, url, viewport_name, name)
            print(f"{viewport_name}: done", flush=True)
        browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="a dashboard already running, e.g. http://127.0.0.1:8501")
    arguments = parser.parse_args()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    if arguments.url:
        shoot_all(arguments.url.rstrip("/"))
        return
    with dashboard_server() as url:
        shoot_all(url)
    print(f"Screenshots in {SCREENSHOTS}")


if __name__ == "__main__":
    main()
