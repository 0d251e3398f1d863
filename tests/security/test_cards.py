"""Model cards: rendered once when written, in linear time, with one size limit on every way
a card arrives (README upload, the forms, a Hub API commit)."""

import base64
import json
import time

from django.urls import reverse

from hfapi.tokens import token_create
from hub.models import Adapter
from tests.hub.conftest import uploads

BRACKETS = "[" * 16_000  # Python-Markdown took 37 s of CPU on this card, on every view


def test_a_bracket_card_is_rendered_once_and_fast(alice_client, alice, make_adapter):
    adapter = make_adapter(alice, "brackets")
    url = reverse("hub:adapter_edit", args=["alice", "brackets"])
    started = time.process_time()
    response = alice_client.post(url, {"description": BRACKETS, "task": "", "license": ""})
    write_cpu = time.process_time() - started
    assert response.status_code == 302
    adapter.refresh_from_db()
    assert adapter.description == BRACKETS and BRACKETS in adapter.description_html
    # Views show the stored HTML and parse no Markdown: even many views cost little.
    started = time.process_time()
    for _ in range(5):
        page = alice_client.get(reverse("hub:adapter_detail", args=["alice", "brackets"]))
        assert page.status_code == 200 and BRACKETS in page.content.decode()
    views_cpu = time.process_time() - started
    assert write_cpu < 10 and views_cpu < 5, (write_cpu, views_cpu)


def test_card_is_sanitised_when_stored(alice, make_adapter):
    card = "<script>alert(1)</script>\n\n[x](javascript:alert(2)) <img src=x onerror=alert(3)>"
    adapter = make_adapter(alice, "xss", description=card)
    html = adapter.description_html
    assert "<script" not in html and "href=" not in html and "onerror" not in html
    assert '<img src="x">' in html


def test_card_over_the_limit_is_refused_by_the_edit_form(alice_client, alice, make_adapter):
    make_adapter(alice, "big", description="small")
    url = reverse("hub:adapter_edit", args=["alice", "big"])
    response = alice_client.post(url, {"description": "a" * (64 * 1024 + 1)})
    assert response.status_code == 400  # the form again, with the error
    assert "at most 64.0" in response.content.decode()
    assert Adapter.objects.get(name="big").description == "small"


def test_card_over_the_limit_is_refused_in_an_upload(alice_client, adapter_dirs, tmp_path):
    files = uploads(adapter_dirs["r4"], names=("adapter_config.json", "adapter_model.safetensors"))
    from django.core.files.uploadedfile import SimpleUploadedFile

    files.append(SimpleUploadedFile("README.md", b"# big\n" + b"a" * 64 * 1024))
    response = alice_client.post(reverse("hub:adapter_new"), {"name": "big", "files": files})
    assert response.status_code == 400
    assert "README.md is 64.0" in response.content.decode()
    assert not Adapter.objects.filter(name="big").exists()


def test_card_over_the_limit_is_refused_in_an_api_commit(client, alice, make_adapter):
    adapter = make_adapter(alice, "api-card")
    token = token_create(user=alice, name="w", scope="write")[1]
    card = base64.b64encode(b"a" * (64 * 1024 + 1)).decode()
    body = "\n".join(
        json.dumps(line)
        for line in (
            {"key": "header", "value": {"summary": "big card"}},
            {"key": "file", "value": {"path": "README.md", "content": card, "encoding": "base64"}},
        )
    )
    response = client.post(
        "/api/models/alice/api-card/commit/main",
        body,
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 400 and "at most 64.0" in response.json()["error"]
    assert adapter.versions.count() == 1
