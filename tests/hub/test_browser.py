"""The catalog in a real headless Chromium: sign up, upload, search, open, download, privacy."""

import hashlib
import pickle
import zipfile

import pytest
from django.db import connection

from tests.hub.conftest import ADAPTER_FILES

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("django_sync_under_playwright"),
]
PASSWORD = "a-Long-pass-word-42"


def sign_up(page, base_url, username):
    page.goto(f"{base_url}/accounts/signup/")
    page.fill("#id_username", username)
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"{base_url}/")
    assert page.locator("nav").get_by_text(username).is_visible()


def upload(page, base_url, name, files, *, private=False, tags="news, summarization"):
    page.goto(f"{base_url}/new/")
    page.fill("#id_name", name)
    page.set_input_files("#id_files", [str(f) for f in files])
    page.select_option("#id_license", "apache-2.0")
    page.fill("#id_tags", tags)
    if private:
        page.check("#id_private")
    page.click("main button[type=submit]")


def test_sign_up_upload_search_open_download(browser, live_server, adapter_dirs, tmp_path):
    base_url = live_server.url
    context = browser.new_context(accept_downloads=True)
    page = context.new_page()
    sign_up(page, base_url, "carol")

    # Upload through the progress-bar form: the POST goes out as an XMLHttpRequest.
    posts = []
    page.on("request", lambda r: posts.append(r.resource_type) if r.method == "POST" else None)
    folder = adapter_dirs["r8"]
    upload(page, base_url, "news-summarizer", [folder / f for f in ADAPTER_FILES])
    page.wait_for_url(f"{base_url}/carol/news-summarizer")
    assert posts == ["xhr"]
    assert page.locator("table.metadata").get_by_text("Rank (r)").is_visible()
    assert "8" in page.locator("table.metadata tr", has_text="Rank (r)").inner_text()

    # Find it by search from the home page, open it.
    page.goto(f"{base_url}/")
    page.fill("input[name=q]", "summarization")
    page.press("input[name=q]", "Enter")
    page.wait_for_url(f"{base_url}/adapters/?q=summarization")
    page.click("a.adapter-name:has-text('news-summarizer')")
    page.wait_for_url(f"{base_url}/carol/news-summarizer")
    if connection.vendor == "postgresql":  # a typo is respelled by PostgreSQL search
        page.goto(f"{base_url}/adapters/?q=sumarizer")
        assert "showing results for “summarizer”" in page.locator("p.respelled").inner_text()
        page.click("a.adapter-name:has-text('news-summarizer')")
        page.wait_for_url(f"{base_url}/carol/news-summarizer")

    # The peft snippet copies to the clipboard.
    context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base_url)
    page.click("button[data-copy='#snippet']")
    copied = page.evaluate("navigator.clipboard.readText()")
    assert 'PeftModel.from_pretrained(base, "carol/news-summarizer")' in copied
    assert f'os.environ["HF_ENDPOINT"] = "{base_url}"' in copied

    # Download all: a zip of the folder with the uploaded bytes.
    with page.expect_download() as download_info:
        page.click("#download-zip")
    path = tmp_path / "download.zip"
    download_info.value.save_as(path)
    with zipfile.ZipFile(path) as zf:
        for name in ADAPTER_FILES:
            if name != "README.md":
                assert zf.read(f"news-summarizer/{name}") == (folder / name).read_bytes()
        # The form's license and tags win over the card's: its front matter says them.
        card = zf.read("news-summarizer/README.md").decode()
        assert "license: apache-2.0" in card and "- summarization" in card
    page.reload()
    assert "1 download" in page.locator("#downloads").inner_text()

    # A refused upload shows its message in the form, nothing is created.
    bad = tmp_path / "adapter_model.bin"
    bad.write_bytes(pickle.dumps({"weights": [1, 2]}))
    upload(page, base_url, "pickled", [folder / "adapter_config.json", bad])
    page.wait_for_selector(".field-error")
    assert "is a pickle file" in page.locator(".field-error").inner_text()
    assert page.goto(f"{base_url}/carol/pickled").status == 404
    context.close()


def test_private_adapter_is_invisible_to_another_user(browser, live_server, adapter_dirs):
    base_url = live_server.url
    owner = browser.new_context()
    page = owner.new_page()
    sign_up(page, base_url, "dave")
    upload(page, base_url, "hidden-gem", [adapter_dirs["r4"] / f for f in ADAPTER_FILES],
           private=True, tags="secretsauce")  # fmt: skip
    page.wait_for_url(f"{base_url}/dave/hidden-gem")
    assert page.locator("h1 .badge.private").is_visible()
    weights_url = f"{base_url}/dave/hidden-gem/resolve/main/adapter_model.safetensors"
    got = page.request.get(weights_url)
    assert got.status == 200
    expected = (adapter_dirs["r4"] / "adapter_model.safetensors").read_bytes()
    assert hashlib.sha256(got.body()).hexdigest() == hashlib.sha256(expected).hexdigest()
    owner.close()

    other = browser.new_context()
    page = other.new_page()
    sign_up(page, base_url, "erin")
    assert page.goto(f"{base_url}/dave/hidden-gem").status == 404
    assert page.request.get(weights_url).status == 404
    assert page.request.get(f"{base_url}/dave/hidden-gem/archive/main.zip").status == 404
    page.goto(f"{base_url}/adapters/?q=secretsauce")
    assert page.locator("a.adapter-name").count() == 0
    page.goto(f"{base_url}/dave/")
    assert "hidden-gem" not in page.content()
    other.close()
