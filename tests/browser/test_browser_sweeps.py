"""In a real browser: a sweep on the Train page and on the Compare page, where clicking a cell opens its run.

The server gets its own database, holding one recorded SVM sweep of C x gamma, through ``DIGITLAB_DB``.
"""

import os

import pytest

from digitlab import settings
from digitlab.lab import runs
from tests.browser.dashboard import (
    ARTIFACTS,
    DESKTOP,
    MAIN,
    PAGE_TIMEOUT_MS,
    PAGES,
    PHONE,
    heatmap_cell_centre,
    horizontal_overflow,
    open_page,
    screenshot_whole_page,
    start_dashboard,
    trained_manifest_or_skip,
    wait_until_idle,
)
from tests.support import recorded_sweep

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def sweep_server(request, tmp_path_factory):
    """A dashboard over a database with one sweep: three runs succeeded and the fourth cancelled in line (a run
    left in line would start training when the Train page opens)."""
    database = tmp_path_factory.mktemp("sweeps") / "browser.sqlite3"
    sweep_id, run_ids = recorded_sweep(database)
    with runs.RunRegistry(database) as registry:
        registry.request_cancel(run_ids[-1])
    environment = dict(os.environ)
    environment[settings.DATABASE_VARIABLE] = str(database)
    url = start_dashboard(request, environment, ARTIFACTS / "streamlit-server-sweeps.log")
    return url, sweep_id, run_ids


def test_a_clicked_sweep_cell_opens_its_run_on_the_compare_page(browser, sweep_server):
    trained_manifest_or_skip()
    url, sweep_id, run_ids = sweep_server
    page = open_page(browser, f"{url}/compare", PAGES["compare"][1], DESKTOP)

    # The section is far down the page; its chart is drawn once it scrolls into view.
    page.get_by_role("heading", name="Sweeps").scroll_into_view_if_needed()
    page.wait_for_function(
        """start => Array.from(document.querySelectorAll(".js-plotly-plot")).some(plot =>
            plot._fullLayout && plot._fullLayout.title.text.includes(start))""",
        arg=f"Sweep #{sweep_id}",
        timeout=PAGE_TIMEOUT_MS,
    )
    # Column C = 1, row gamma = 0.02: the second run of the sweep, 93 %.
    page.mouse.click(*heatmap_cell_centre(page, f"Sweep #{sweep_id}", 1, 0))
    wait_until_idle(page)

    page.locator(f"{MAIN} p", has_text="Test accuracy 93.00%").wait_for(timeout=PAGE_TIMEOUT_MS)
    assert page.locator(f"{MAIN} strong", has_text=f"#{run_ids[1]} SVM").count() >= 1
    assert page.locator('[data-testid="stException"]').count() == 0
    screenshot_whole_page(page, ARTIFACTS / "compare-sweep-clicked.png", DESKTOP)
    page.close()


@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_train_page_offers_a_sweep_and_draws_the_recent_ones(browser, sweep_server, viewport):
    url, sweep_id, _ = sweep_server
    page = open_page(browser, f"{url}/train", "Train a model", viewport)

    page.locator(MAIN).get_by_text("A sweep", exact=True).click()
    page.get_by_text("This sweep queues 4 runs").wait_for(timeout=PAGE_TIMEOUT_MS)
    wait_until_idle(page)

    assert page.get_by_role("button", name="Start sweep").count() == 1
    titles = page.evaluate(
        """() => Array.from(document.querySelectorAll(".js-plotly-plot")).map(plot => plot._fullLayout.title.text)"""
    )
    assert any(f"Sweep #{sweep_id} · SVM · C x gamma · 4 of 4 runs ended" in title for title in titles)
    assert page.locator('[data-testid="stException"]').count() == 0
    assert horizontal_overflow(page) <= 0
    name = "desktop" if viewport is DESKTOP else "phone"
    screenshot_whole_page(page, ARTIFACTS / f"train-sweep-{name}.png", viewport)
    page.close()
