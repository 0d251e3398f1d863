"""Every page at phone and desktop widths in a real Chromium: nothing scrolls sideways, the
menu folds behind a button on phones, the site's own 404 page, sign-up keeps ?next=."""

import pytest
from django.urls import reverse

from composer.models import Job, JobInput, Trial
from hfapi.models import Transfer
from hfapi.tokens import token_create
from tests.jobs.test_comparison import ROWS

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("django_sync_under_playwright"),
]
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1366, "height": 800}
PASSWORD = "a-Long-pass-word-42"
WIDE = "document.documentElement.scrollWidth <= window.innerWidth"


# The comparison rows with a long adapter name (a phone must not scroll sideways).
COMPARISON = [{**r, "name": r["name"].replace("t5-a", "alice/" + "a-long-name" * 6)} for r in ROWS]


def log_in(page, base_url, username):
    page.goto(f"{base_url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base_url}/")


def finished_job(owner, versions) -> Job:
    """A finished LoraHub job as the worker leaves it: history, weights, evaluation."""
    weights = [0.8, -0.35]
    history = [
        {"step": i, "loss": 3 - 0.1 * i, "best_loss": 3 - 0.1 * i, "weights": weights}
        for i in range(1, 11)
    ]
    evaluation = {
        "base": {"n": 2, "loss": 3.1, "exact_match": 0.0, "predictions": []},
        "composed": {"n": 2, "loss": 1.2, "exact_match": 0.5, "predictions": []},
    }
    job = Job.objects.create(
        owner=owner,
        kind=Job.Kind.LORAHUB,
        status=Job.Status.SUCCEEDED,
        parameters={"budget": 10, "seed": 0, "optimizer": "NGOpt"},
        step=10,
        budget=10,
        best_loss=2.0,
        history=history,
        best_weights=weights,
        result={"weights": weights, "evaluation": evaluation},
    )
    for i, v in enumerate(versions):
        JobInput.objects.create(job=job, position=i, version=v, label=f"alice/{v.adapter.name} v1")
    return job


@pytest.fixture
def site(django_user_model, make_adapter):
    alice = django_user_model.objects.create_user("alice", password=PASSWORD)
    a = make_adapter(alice, "a-rather-long-adapter-name-for-phones", tags=["reverse", "vowels"])
    b = make_adapter(alice, "second", tags=["reverse"])
    job = finished_job(alice, [a.current_version, b.current_version])
    compared = finished_job(alice, [a.current_version, b.current_version])
    compared.result["comparison"] = {"on": "heldout", "n": 2, "rows": COMPARISON}
    compared.result["evaluation"]["composed"]["predictions"] = [
        {"input": "a-long-input-" * 6, "output": "cba", "prediction": "cba", "correct": True}
    ]
    compared.save()
    trial = Trial.objects.create(
        owner=alice,
        version=a.current_version,
        base_model=a.base_model,
        text="a fairly long input " * 8,
        status=Trial.Status.DONE,
        base_output="base-output-without-any-spaces-" * 4,
        adapter_output="adapter output " * 10,
    )
    transfer = Transfer.objects.create(
        owner=alice,
        kind=Transfer.Kind.IMPORT,
        endpoint="https://huggingface.co",
        repo_id="someone/a-rather-long-repository-name-for-phones",
        status=Transfer.Status.FAILED,
        error="The upstream hub could not be reached: " + "x" * 80,
    )
    token_create(user=alice, name="nightly-training-scripts-on-the-cluster-" * 2, scope="write")
    return {
        "alice": alice,
        "adapter": a,
        "job": job,
        "compared": compared,
        "trial": trial,
        "transfer": transfer,
    }


def page_paths(site) -> list[str]:
    a, job = site["adapter"], site["job"]
    args = [a.owner.username, a.name]
    return [
        "/",
        reverse("hub:adapter_list"),
        reverse("hub:adapter_list") + "?q=reverse",
        reverse("hub:base_model_list"),
        a.base_model.get_absolute_url(),
        reverse("hub:user_detail", args=[a.owner.username]),
        a.get_absolute_url(),
        reverse("hub:adapter_new"),
        reverse("hub:adapter_new_version", args=args),
        reverse("hub:adapter_edit", args=args),
        reverse("hub:adapter_delete", args=args),
        reverse("composer:list"),
        reverse("composer:new", args=["lorahub"]) + f"?adapters={a.pk}",
        reverse("composer:new", args=["lego"]),
        reverse("composer:new", args=["merge"]) + f"?adapters={a.pk}",
        job.get_absolute_url(),
        site["compared"].get_absolute_url(),
        reverse("hfapi:tokens"),
        reverse("hfapi:import"),
        reverse("hfapi:push", args=args),
        reverse("composer:trial", args=[site["trial"].pk]),
        reverse("hfapi:transfer", args=[site["transfer"].pk]),
        "/no/such/page/here",
    ]


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1366px"])
def test_no_page_scrolls_sideways(browser, live_server, site, viewport):
    context = browser.new_context(viewport=viewport)
    page = context.new_page()
    anonymous = ["/accounts/signup/", "/accounts/login/", "/", site["adapter"].get_absolute_url()]
    for path in anonymous:
        page.goto(live_server.url + path)
        assert page.evaluate(WIDE), f"{path} scrolls sideways at {viewport['width']} px"
    log_in(page, live_server.url, "alice")
    for path in page_paths(site):
        response = page.goto(live_server.url + path)
        assert response.status < 500, path
        assert page.evaluate(WIDE), f"{path} scrolls sideways at {viewport['width']} px"
    # The tokens table reads without scrolling inside itself either (a card a token on phones).
    page.goto(live_server.url + reverse("hfapi:tokens"))
    assert page.locator("#tokens tbody tr").count() == 1
    assert page.evaluate(INNER_SCROLL, "main *") == [], f"at {viewport['width']} px"
    context.close()


# Elements (of those `selector` names) that scroll sideways inside themselves, and those of
# the adapter page's files and versions that reach past the window's right edge.
INNER_SCROLL = """selector => Array.from(document.querySelectorAll(selector)).filter(e =>
    ["auto", "scroll"].includes(getComputedStyle(e).overflowX) && e.scrollWidth > e.clientWidth
).map(e => e.tagName)"""
PAST_THE_EDGE = """Array.from(document.querySelectorAll("#files td > *, #versions td > *")).filter(
    e => e.getBoundingClientRect().right > window.innerWidth).map(e => e.outerHTML)"""
# Each sha256 of the files table: its text, its title and whether it keeps to one line.
SHAS = """Array.from(document.querySelectorAll("#files code.sha")).map(e => {
    const style = getComputedStyle(e);
    const text = e.clientHeight - parseFloat(style.paddingTop) - parseFloat(style.paddingBottom);
    return [e.textContent, e.title, text < 2 * parseFloat(style.fontSize)];
})"""


def test_adapter_page_files_and_versions_read_on_a_phone(browser, live_server, site, adapter_dirs):
    from hub.services.adapters import adapter_upload

    adapter = site["adapter"]
    for n in range(8):
        folder = adapter_dirs["r8" if n % 2 == 0 else "r4"]
        adapter_upload(
            adapter=adapter,
            files={f: folder / f for f in ("adapter_config.json", "adapter_model.safetensors")},
            user=site["alice"],
            message=f"Retrained on the {'longer-than-usual-' * 4}examples, round {n}",
        )
    adapter.refresh_from_db()  # the last upload's version
    shas = sorted(f.blob_id for f in adapter.current_version.files.all())
    for viewport in (PHONE, DESKTOP):
        context = browser.new_context(viewport=viewport)
        context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_server.url)
        page = context.new_page()
        page.goto(live_server.url + adapter.get_absolute_url())
        width = viewport["width"]
        assert page.locator("#versions tbody tr").count() == 9
        assert page.evaluate(WIDE), f"the adapter page scrolls sideways at {width} px"
        assert page.evaluate(INNER_SCROLL, "#files *, #versions *") == [], (
            f"a table scrolls inside itself at {width} px"
        )
        assert page.evaluate(PAST_THE_EDGE) == [], f"cut at the right edge at {width} px"
        shown = page.evaluate(SHAS)
        assert sorted(text for text, _, _ in shown) == shas  # the whole value is in the page
        assert all(text == title and one_line for text, title, one_line in shown), shown
        page.click("#files button[data-copy='#sha-1']")
        assert page.evaluate("navigator.clipboard.readText()") == shown[0][0]
        context.close()


def test_phone_menu_folds_behind_a_button(browser, live_server, site):
    context = browser.new_context(viewport=PHONE)
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    jobs_link = page.locator("#nav-links").get_by_text("My jobs")
    assert not jobs_link.is_visible()
    page.click("button.nav-toggle")
    assert jobs_link.is_visible()
    assert page.get_attribute("button.nav-toggle", "aria-expanded") == "true"
    jobs_link.click()
    page.wait_for_url(f"{live_server.url}/jobs/")
    context.close()

    context = browser.new_context(viewport=DESKTOP)
    page = context.new_page()
    log_in(page, live_server.url, "alice")
    assert not page.locator("button.nav-toggle").is_visible()
    assert page.locator("#nav-links").get_by_text("My jobs").is_visible()
    context.close()


def test_sign_up_returns_to_the_page_that_asked(browser, live_server, site):
    page = browser.new_page(viewport=PHONE)
    adapter_url = site["adapter"].get_absolute_url()
    page.goto(live_server.url + adapter_url)
    page.click("button.nav-toggle")
    page.click("#nav-links a:has-text('Sign up')")
    page.fill("#id_username", "dave")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(live_server.url + adapter_url)
    page.close()


def test_sign_up_never_redirects_off_site(client, db):
    response = client.post(
        "/accounts/signup/?next=https://evil.example/",
        {"username": "erin", "password1": PASSWORD, "password2": PASSWORD},
    )
    assert response.status_code == 302 and response.url == "/"


def test_login_page_links_to_sign_up_with_next(client, db):
    page = client.get("/accounts/login/?next=/jobs/").content.decode()
    assert 'href="/accounts/signup/?next=/jobs/"' in page


@pytest.mark.parametrize("debug", [True, False])
def test_the_sites_own_404_without_the_url_list(client, settings, site, debug):
    settings.DEBUG = debug
    client.force_login(site["alice"])
    for path in ("/no/such/page/here", "/alice/no-such-adapter", "/jobs/999999/"):
        response = client.get(path)
        assert response.status_code == 404, path
        page = response.content.decode()
        assert "Page not found" in page and "URLconf" not in page, path
    # A path missing only its slash is still redirected (APPEND_SLASH sees the 404).
    assert client.get("/adapters").status_code == 301


def test_api_404_stays_json(client, db, settings):
    settings.DEBUG = True
    response = client.get("/api/no-such-endpoint")
    assert response.status_code == 404 and response.json() == {"error": "Not found"}


def test_the_sites_own_500(client, db, settings):
    from hub.views.errors import server_error

    response = server_error(client.get("/").wsgi_request)
    assert response.status_code == 500 and "Something went wrong" in response.content.decode()


def test_home_says_what_a_visitor_can_do(client, site):
    page = client.get("/").content.decode()
    for what in ("Compose", "Merge", "Try"):
        assert f"<h2>{what}</h2>" in page
    # The placeholder suggests words that find something: the most used tags.
    assert 'placeholder="Search 2 adapters: reverse, vowels…"' in page
    assert '<a href="/adapters/?q=vowels">vowels</a>' in page


@pytest.mark.parametrize("viewport", [PHONE, DESKTOP], ids=["390px", "1366px"])
def test_upload_takes_metadata_from_the_cards_front_matter(
    browser, live_server, site, adapter_dirs, tmp_path, viewport
):
    card = tmp_path / "README.md"
    card.write_text(
        "---\nlicense: mit\ntags: [palindromes]\ndatasets: [acme/palindromes]\n"
        "language: [en, fr]\n---\n# Palindromes\n"
    )
    folder = adapter_dirs["r4"]
    files = [folder / "adapter_config.json", folder / "adapter_model.safetensors", card]
    page = browser.new_page(viewport=viewport)
    log_in(page, live_server.url, "alice")
    page.goto(f"{live_server.url}/new/")
    page.fill("#id_name", "palindromes")
    page.set_input_files("#id_files", [str(f) for f in files])
    page.click("main button[type=submit]")  # license and tags left empty in the form
    page.wait_for_url(f"{live_server.url}/alice/palindromes")
    header = page.inner_text("main")
    assert "MIT" in header and "palindromes" in page.inner_text(".tags")
    assert "acme/palindromes" in page.inner_text("#card-datasets")
    assert page.inner_text("#card-language").strip().endswith("en, fr")
    assert "license: mit" not in header  # the block is metadata, not card text
    assert page.evaluate(WIDE)
    page.close()
