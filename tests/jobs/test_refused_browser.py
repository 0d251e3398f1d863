"""In headless Chromium at 1366 and 390 px: a refused "Try it" (answered 400 to its htmx post)
shows the reason in the box, without leaving the page; nothing scrolls sideways."""

import os
from pathlib import Path

import pytest
from django.urls import reverse

from composer.models import Trial
from tests.jobs.conftest import logged_in_context

# Playwright's sync API keeps an event loop in this thread (see tests/jobs/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT_DIR = Path(os.environ.get("JOBS_SCREENSHOT_DIR", "var/screenshots"))


@pytest.mark.parametrize("width", [1366, 390])
def test_a_refused_try_says_why_in_the_box(browser, live_server, client, alice, catalog, width):
    context = logged_in_context(browser, live_server, client, alice, width)
    page = context.new_page()
    url = f"{live_server.url}{catalog['t5-a'].get_absolute_url()}"
    page.goto(url)
    page.fill("#try-text", " ")  # passes the browser's `required`, refused by the server
    with page.expect_response(lambda r: r.url.endswith(reverse("composer:trial_new"))) as answer:
        page.click("#try-it button[type=submit]")
    assert answer.value.status == 400
    error = page.wait_for_selector("#try-result #trial-error", timeout=10_000)
    assert "Type an input, or pick one of the examples." in error.inner_text()
    assert page.url == url  # swapped into the page, not a navigation
    assert not Trial.objects.exists()
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.locator("#try-it").screenshot(path=str(SCREENSHOT_DIR / f"try-refused-{width}.png"))
    context.close()
