"""In headless Chromium at 1366 and 390 px: Try it on a demo adapter shows the base model's
output beside the adapter's, which does the adapter's task."""

import io
import os
from pathlib import Path

import pytest
from django.core.management import call_command

from composer.models import Trial

# Playwright's sync API keeps an event loop in this thread (see tests/jobs/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.celery, pytest.mark.django_db(transaction=True)]
SCREENSHOT_DIR = Path(os.environ.get("JOBS_SCREENSHOT_DIR", "var/screenshots"))


@pytest.fixture
def demo(settings, jobs_env):
    cache = Path(os.environ.get("LORAHUB_CACHE", Path.home() / ".cache" / "lorahub"))
    settings.LORAHUB_DEMO_DIR = cache / "demo-for-tests"
    call_command("seed_demo", stdout=io.StringIO())


@pytest.mark.parametrize("width", [1366, 390])
def test_try_a_demo_adapter(browser, live_server, fast_lane, fast_worker, demo, width):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": 900})
    page = context.new_page()
    page.set_default_timeout(90_000)
    base = live_server.url
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo-password")
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{base}/")

    page.goto(f"{base}/demo/reverse-lower")
    example = page.locator("#try-it button.try-example").nth(1)  # one of the card's rows
    text = example.get_attribute("data-input")
    expected = example.get_attribute("title").removeprefix("expected: ")
    assert text.endswith("=") and expected == text[:-1][::-1]
    example.click()
    assert page.input_value("#try-text") == text
    page.click("#try-it button[type=submit]")
    page.wait_for_selector("#trial[data-status=done]")  # followed by polling, no reload
    base_out = page.inner_text("#trial-base").strip()
    adapter_out = page.inner_text("#trial-adapter").strip()
    assert adapter_out == expected  # the adapter reverses the string
    assert base_out != adapter_out  # the base model alone does not
    trial = Trial.objects.get()
    assert (trial.text, trial.adapter_output.strip()) == (text, expected)

    # Side by side on a wide screen, one under the other on a phone; nothing scrolls sideways.
    boxes = [page.locator(s).bounding_box() for s in ("#trial-base", "#trial-adapter")]
    if width > 700:
        assert boxes[0]["y"] == boxes[1]["y"] and boxes[0]["x"] < boxes[1]["x"]
    else:
        assert boxes[0]["y"] < boxes[1]["y"]
    section = page.locator("#try-it").bounding_box()
    assert section["x"] + section["width"] <= width
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    page.locator("#try-it").screenshot(path=str(SCREENSHOT_DIR / f"try-it-{width}.png"))
    context.close()
