"""In headless Chromium at 1366 and 390 px: the page of a job that screened 500 candidates
shows the mixed ones with their bars and folds the rest; My jobs shows every job's score;
nothing scrolls sideways. A page followed live shows Try it once the job succeeds."""

import os
from pathlib import Path

import pytest
from django.urls import reverse
from django.utils import timezone

from composer.models import Job
from hub.models import BaseModel
from tests.conftest import PASSWORD
from tests.jobs.conftest import logged_in_context
from tests.jobs.screened import screened_job

# Playwright's sync API keeps an event loop in this thread (see tests/jobs/test_browser.py).
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]
SCREENSHOT_DIR = Path(os.environ.get("JOBS_SCREENSHOT_DIR", "var/screenshots"))


def job_page(browser, live_server, job, width: int):
    """A new page at `width` px, logged in as alice, on `job`'s page."""
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", PASSWORD)
    page.click("main form button[type=submit]")
    page.wait_for_url(f"{live_server.url}/")
    page.goto(f"{live_server.url}{job.get_absolute_url()}")
    return page


@pytest.mark.parametrize("width", [1366, 390])
def test_a_job_of_500_candidates_reads_at_any_width(browser, live_server, alice, bob, width):
    job = screened_job(alice, bob, n=500)
    page = job_page(browser, live_server, job, width)

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


@pytest.mark.parametrize("width", [1366, 390])
def test_my_jobs_shows_each_score_at_any_width(browser, live_server, client, alice, width):
    now = timezone.now()
    name = "composition of reverse-lower + upper-lower + shift1-lower + 18 more"
    for loss in (0.25, 0.5):
        Job.objects.create(
            owner=alice,
            kind=Job.Kind.LORAHUB,
            name=name,
            status=Job.Status.SUCCEEDED,
            best_loss=loss,
            started_at=now - timezone.timedelta(seconds=42),
            finished_at=now,
        )
    context = logged_in_context(browser, live_server, client, alice, width)
    page = context.new_page()
    page.goto(live_server.url + reverse("composer:list"))
    scores = page.locator("#jobs tbody td.num:has-text('loss')")
    assert scores.count() == 2
    for n in range(2):
        box = scores.nth(n).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, box
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    table = page.locator("#jobs").locator("..")  # nor the table inside its box
    assert table.evaluate("box => box.scrollWidth <= box.clientWidth")
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"my_jobs_{width}.png"), full_page=True)
    context.close()


def test_a_job_followed_live_shows_try_it_once_it_succeeds(browser, live_server, alice, bob):
    """Try it lies outside the polled fragment: the poll that sees the job end fills it in
    (no reload), and its example buttons work; the publish form comes with it."""
    job = screened_job(alice, bob, n=5)
    BaseModel.objects.filter(pk=job.base_model_id).update(local_path="/models/flan-t5-large")
    running = {"status": Job.Status.RUNNING, "heartbeat_at": timezone.now(), "worker_host": "gpu-7"}
    examples = [{"input": "abc=", "output": "cba"}, {"input": "hello=", "output": "olleh"}]
    Job.objects.filter(pk=job.pk).update(examples=examples, **running)
    page = job_page(browser, live_server, job, 390)
    page.wait_for_selector('[data-status="running"]')
    assert page.locator("#try-it").count() == 0
    page.evaluate("window.notReloaded = true")
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED)
    page.wait_for_selector("#try-it #try-text", timeout=10_000)
    assert page.evaluate("window.notReloaded") is True
    assert page.locator("#job-try").count() == 1
    page.click("#try-it button.try-example >> nth=1")
    assert page.input_value("#try-text") == "hello="
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    # The publish form: each help text sits under its own field, not above the next one.
    gap = page.evaluate(
        "document.getElementById('help-name').getBoundingClientRect().top"
        " - document.getElementById('id_name').getBoundingClientRect().bottom"
    )
    assert 0 <= gap < 8, gap
    page.close()
