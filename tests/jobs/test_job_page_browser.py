"""In headless Chromium at 1366 and 390 px: the page of a job that screened 500 candidates
shows the mixed ones with their bars and folds the rest; nothing scrolls sideways."""

import os
from pathlib import Path

import pytest

from tests.conftest import PASSWORD
from tests.jobs.screened import screened_job

# Playwright's sync API keeps an event loop in this thread (see tests/jobs/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT_DIR = Path(os.environ.get("JOBS_SCREENSHOT_DIR", "var/screenshots"))


@pytest.mark.parametrize("width", [1366, 390])
def test_a_job_of_500_candidates_reads_at_any_width(browser, live_server, alice, bob, width):
    job = screened_job(alice, bob, n=500)
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}{job.get_absolute_url()}")

    assert page.locator("#weights tbody tr").count() == 5
    assert page.locator("#weights .weight-bar").count() == 5
    assert not page.locator("#weights-zero tbody tr").first.is_visible()  # folded
    page.click("#weights-zero summary")
    assert page.locator("#weights-zero tbody tr").count() == 100
    assert page.locator("#weights-zero tbody tr").first.is_visible()
    page.click("#job-inputs summary")
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"job_500_{width}.png"), full_page=True)
    page.close()
