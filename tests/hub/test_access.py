"""Who may see and change what: private adapters are 404 to others; only owners change."""

import pytest
from django.test import Client
from django.urls import reverse

from hub.models import Adapter

SECRET = ["alice", "secret"]


@pytest.fixture
def secret(alice, make_adapter):
    return make_adapter(alice, "secret", private=True, tags=["hidden-tag"], description="needle")


def private_urls():
    return [
        # Only the private adapter uses this base model: its page is no one else's business.
        reverse("hub:base_model_detail", args=["lorahub/tiny-t5"]),
        reverse("hub:adapter_detail", args=SECRET),
        reverse("hub:adapter_revision", args=[*SECRET, "v1"]),
        reverse("hub:adapter_resolve", args=[*SECRET, "main", "adapter_config.json"]),
        reverse("hub:adapter_resolve", args=[*SECRET, "main", "adapter_model.safetensors"]),
        reverse("hub:adapter_archive", args=[*SECRET, "main"]),
    ]


def listing_urls():
    return [
        reverse("hub:home"),
        reverse("hub:adapter_list"),
        reverse("hub:adapter_list") + "?q=secret",
        reverse("hub:adapter_list") + "?q=needle",
        reverse("hub:adapter_list") + "?tag=hidden-tag",
        reverse("hub:user_detail", args=["alice"]),
        reverse("hub:base_model_list"),
    ]


def test_private_adapter_is_invisible_to_others(client, bob, secret):
    bob_client = Client()
    bob_client.force_login(bob)
    for who in (client, bob_client):
        for url in private_urls():
            assert who.get(url).status_code == 404, url
        for url in listing_urls():
            response = who.get(url)
            assert response.status_code == 200, url
            assert b"alice/secret" not in response.content and b">secret<" not in response.content
    assert Adapter.objects.get(pk=secret.pk).downloads == 0


def test_owner_sees_private_adapter(alice_client, secret):
    for url in private_urls():
        assert alice_client.get(url).status_code == 200, url
    for url in listing_urls()[:6]:
        content = alice_client.get(url).content.decode()
        assert "secret" in content and "private" in content, url


def test_only_owner_changes(client, bob, alice, make_adapter, adapter_dirs):
    from tests.hub.conftest import uploads

    public = make_adapter(alice, "public")
    make_adapter(alice, "secret", private=True)
    client.force_login(bob)
    for name, status in (("public", 403), ("secret", 404)):
        for view in ("hub:adapter_edit", "hub:adapter_new_version", "hub:adapter_delete"):
            url = reverse(view, args=["alice", name])
            assert client.get(url).status_code == status, url
        edit = reverse("hub:adapter_edit", args=["alice", name])
        assert client.post(edit, {"description": "pwned", "tags": ""}).status_code == status
        delete = reverse("hub:adapter_delete", args=["alice", name])
        assert client.post(delete, {"confirm": name}).status_code == status
        upload = reverse("hub:adapter_new_version", args=["alice", name])
        assert client.post(upload, {"files": uploads(adapter_dirs["r8"])}).status_code == status
    public.refresh_from_db()
    assert public.description != "pwned" and public.versions.count() == 1
    assert Adapter.objects.filter(owner=alice).count() == 2
    # Anonymous visitors are sent to log in.
    client.logout()
    response = client.get(reverse("hub:adapter_edit", args=["alice", "public"]))
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")
    response = client.post(reverse("hub:adapter_new"), {"name": "x"})
    assert response.status_code == 302 and response["Location"].startswith("/accounts/login/")


def test_owner_page_offers_actions_only_to_owner(client, alice, bob, make_adapter):
    make_adapter(alice, "public")
    url = reverse("hub:adapter_detail", args=["alice", "public"])
    client.force_login(alice)
    assert b"Upload a new version" in client.get(url).content
    client.force_login(bob)
    assert b"Upload a new version" not in client.get(url).content


@pytest.mark.parametrize(
    "url_name, args, data",
    [
        ("hub:adapter_new", [], {"name": "x"}),
        ("hub:adapter_edit", ["alice", "public"], {"description": "changed"}),
        ("hub:adapter_delete", ["alice", "public"], {"confirm": "public"}),
        ("hub:adapter_new_version", ["alice", "public"], {"message": "x"}),
        ("logout", [], {}),
    ],
)
def test_csrf_is_enforced(alice, make_adapter, url_name, args, data):
    make_adapter(alice, "public")
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.post(reverse(url_name, args=args), data).status_code == 403
    adapter = Adapter.objects.get(name="public")
    assert adapter.description != "changed"


def test_csrf_on_signup_and_login(db):
    client = Client(enforce_csrf_checks=True)
    data = {"username": "mallory", "password1": "x-Long-pass-123", "password2": "x-Long-pass-123"}
    assert client.post(reverse("signup"), data).status_code == 403
    assert client.post(reverse("login"), {"username": "a", "password": "b"}).status_code == 403


def test_model_card_is_sanitised(alice_client, alice, make_adapter):
    card = (
        "# Card\n\n<script>alert('x')</script>\n\n<img src=x onerror=\"alert(1)\">\n\n"
        "[click](javascript:alert(2))\n\n**bold** and `code`"
    )
    make_adapter(alice, "carded", description=card)
    html = alice_client.get(reverse("hub:adapter_detail", args=["alice", "carded"])).content
    html = html.decode()
    card_html = html[html.index('class="model-card"') :]
    assert "<script>alert" not in html
    assert "onerror" not in card_html and 'href="javascript:' not in card_html
    assert "<strong>bold</strong>" in card_html and "<code>code</code>" in card_html
    assert "<h1>Card</h1>" in card_html
