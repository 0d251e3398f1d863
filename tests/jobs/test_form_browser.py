"""In headless Chromium at 1366 and 390 px: the LoraHub form shows the fields that the
chosen candidates use (the adapters to tick only for "the adapters I pick", the base model
and N for the others); a field with an error stays shown; nothing scrolls sideways."""

import os

import pytest
from django.urls import reverse

from tests.jobs.conftest import logged_in_context

# Playwright's sync API keeps an event loop in this thread (see tests/jobs/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def shown(page) -> set[str]:
    fields = ("adapters", "base_model", "top_n", "examples")
    return {f for f in fields if page.locator(f"#field-{f}").is_visible()}


@pytest.mark.parametrize("width", [1366, 390])
def test_lorahub_form_shows_the_fields_of_the_chosen_candidates(
    browser, live_server, client, alice, catalog, width
):
    context = logged_in_context(browser, live_server, client, alice, width)
    page = context.new_page()
    page.goto(f"{live_server.url}{reverse('composer:new', args=['lorahub'])}")
    assert shown(page) == {"base_model", "examples"}  # every compatible adapter: the default
    page.check("input[name=candidates][value=top]")
    assert shown(page) == {"base_model", "top_n", "examples"}
    page.check("input[name=candidates][value=pick]")
    assert shown(page) == {"adapters", "examples"}
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    # N typed, then another choice made: refused, the field with the reason is shown.
    page.check("input[name=candidates][value=top]")
    page.fill("input[name=top_n]", "1")
    page.check("input[name=candidates][value=all]")
    page.fill("textarea[name=examples]", "abc\tcba\n")
    page.click("main form button[type=submit]:has-text('Launch')")
    assert page.locator("#field-top_n .field-error").is_visible()
    context.close()
