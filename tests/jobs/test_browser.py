"""In headless Chromium: log in, compose the demo adapters, watch the job page update live
(no reload), download the result, publish it and see the lineage on both pages."""

import io
import os
import re
import time
import zipfile
from pathlib import Path

import pytest
from django.core.management import call_command

from composer.models import Job, Lineage

# Playwright's sync API keeps an event loop in this thread; the ORM calls of the test are
# still synchronous, so Django's async-context guard would refuse them.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.celery,
    pytest.mark.django_db(transaction=True),
]

PARENTS = ["reverse-lower", "upper-lower", "shift1-lower"]  # trained demo adapters
# Long enough (several seconds on a quiet machine) for the 1 s poll to see steps in between.
BUDGET = 600
SCREENSHOT_DIR = Path(os.environ.get("JOBS_SCREENSHOT_DIR", "var/screenshots"))


@pytest.fixture(scope="module")
def worker(worker_factory):
    return worker_factory()


@pytest.fixture
def demo(settings, jobs_env):
    cache = Path(os.environ.get("LORAHUB_CACHE", Path.home() / ".cache" / "lorahub"))
    settings.LORAHUB_DEMO_DIR = cache / "demo-for-tests"
    call_command("seed_demo", stdout=io.StringIO())


def login(page, base: str) -> None:
    page.goto(f"{base}/accounts/login/")
    page.fill("input[name=username]", "demo")
    page.fill("input[name=password]", "demo-password")
    page.click("form button[type=submit]")


def test_compose_follow_download_publish(browser, live_server, worker, demo, tmp_path):
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    base = live_server.url
    login(page, base)

    page.goto(f"{base}/demo/{PARENTS[0]}")
    page.click("#compose")
    assert page.is_checked(f"#field-adapters label:has-text('demo/{PARENTS[0]}') input")
    for name in PARENTS[1:]:
        page.check(f"#field-adapters label:has-text('demo/{name}') input")
    # The demo's decoder-only base model reads an input up to "=" (hub.demo).
    page.fill("textarea[name=examples]", "abc=\tcba\nhello=\tolleh\nlora=\tarol\n")
    page.fill("textarea[name=heldout]", "hub=\tbuh\n")
    page.click("details summary")
    page.fill("input[name=budget]", str(BUDGET))
    page.click("form button[type=submit]:has-text('Launch')")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    job = Job.objects.get()
    page.evaluate("window.notReloaded = true")

    # The status fragment is swapped in place by htmx: record the steps it shows.
    seen = set()
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = page.get_attribute("[data-status]", "data-status")
        step = page.locator("#job-step")
        if step.count():
            n = int(step.inner_text().split("/")[0])
            if 0 < n < BUDGET and not any(0 < s < BUDGET for s in seen):
                page.screenshot(path=str(SCREENSHOT_DIR / "job_running.png"), full_page=True)
            seen.add(n)
        if status in ("succeeded", "failed", "cancelled"):
            break
        time.sleep(0.2)
    job.refresh_from_db()
    assert job.status == "succeeded", f"{job.error}\n{worker.log_tail()}"
    assert page.evaluate("window.notReloaded") is True
    assert any(0 < s < BUDGET for s in seen), seen
    assert page.locator("#loss-curve polyline").count() == 2
    assert page.locator("#weights .weight-bar").count() == 3
    assert page.locator("#evaluation").count() == 0  # its rows are in #comparison
    assert page.inner_text("#job-device").startswith("cpu")
    # what composing paid: base model, uniform average, best single candidate, the result
    rows = page.locator("#comparison tbody tr")
    assert rows.count() == 4 and "this result" in rows.nth(3).inner_text()
    assert "demo/" in rows.nth(2).inner_text()  # the best single candidate, by catalog name
    assert page.get_attribute("#comparison", "data-on") == "heldout"
    page.screenshot(path=str(SCREENSHOT_DIR / "job_page.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOT_DIR / "job_page_390.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 800})

    with page.expect_download() as download:
        page.click("#download")
    path = tmp_path / "result.zip"
    download.value.save_as(path)
    names = set(zipfile.ZipFile(path).namelist())
    assert {"adapter_config.json", "adapter_model.safetensors", "README.md"} <= names

    page.fill("input[name=name]", "composed-demo")
    page.click("#publish button[type=submit]")
    page.wait_for_url(re.compile(r"/demo/composed-demo"))
    lineage = page.inner_text("#lineage")
    # the parents that carry weight are listed, rounded as the page rounds them (a weight of
    # -0.0001 reads 0.000, not -0.000); the screened candidates at weight 0 are counted
    links = list(Lineage.objects.filter(child__adapter__name="composed-demo"))
    carriers = [link for link in links if link.weight]
    assert carriers and len(links) == len(PARENTS)
    for link in carriers:
        assert f"{link.parent_label} · weight {round(link.weight, 3) + 0.0:.3f}" in lineage
    unweighted = len(links) - len(carriers)
    assert (f"{unweighted} other screened candidate" in lineage) == (unweighted > 0), lineage
    assert "lorahub" in page.inner_text("#lineage-details")
    page.screenshot(path=str(SCREENSHOT_DIR / "published.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 800})
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    page.screenshot(path=str(SCREENSHOT_DIR / "published_390.png"), full_page=True)
    page.set_viewport_size({"width": 1366, "height": 800})

    page.goto(f"{base}{carriers[0].parent.adapter.get_absolute_url()}")
    assert "demo/composed-demo" in page.inner_text("#lineage-children")
    page.close()


@pytest.mark.parametrize("width", [1366, 390])
def test_merge_with_examples_shows_parents_and_merge(browser, live_server, worker, demo, width):
    from hub.models import Adapter

    pks = [Adapter.objects.get(owner__username="demo", name=n).pk for n in PARENTS[:2]]
    page = browser.new_page(viewport={"width": width, "height": 900})
    page.set_default_timeout(30_000)
    base = live_server.url
    login(page, base)
    page.goto(f"{base}/jobs/new/merge/?adapters={pks[0]}&adapters={pks[1]}")
    assert page.evaluate("document.documentElement.scrollWidth") <= width  # every knob shown
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"merge_form_{width}.png"), full_page=True)
    page.select_option("select[name=merge_method]", "task_arithmetic")
    # one set per adapter, in the order listed: reverse, then upper
    page.fill(
        "textarea[name=examples]",
        "abc=\tcba\nhello=\tolleh\nlora=\tarol\n---\nabc=\tABC\nhello=\tHELLO\n",
    )
    page.click("form button[type=submit]:has-text('Launch')")
    page.wait_for_url(re.compile(r"/jobs/\d+/$"))
    page.wait_for_selector("#merge-check", timeout=120_000)
    job = Job.objects.get()
    assert job.status == "succeeded", job.error
    rows = page.locator("#merge-check tbody tr")
    assert rows.count() == 2
    assert f"demo/{PARENTS[0]}" in rows.nth(0).inner_text()
    assert rows.nth(1).locator("td").first.inner_text() == "2"  # examples in the second set
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT_DIR / f"merge_check_{width}.png"), full_page=True)
    page.close()
