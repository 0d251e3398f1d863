"""Access tokens: created and revoked on the settings page, shown once, stored hashed."""

import hashlib

import pytest
from huggingface_hub.errors import HfHubHTTPError

from hfapi.models import AccessToken


def test_create_token_shows_it_once_and_stores_only_its_hash(alice_client, alice):
    response = alice_client.post("/settings/tokens/", {"name": "laptop", "scope": "write"})
    assert response.status_code == 200
    plain = response.context["new_token"]
    assert plain.startswith("hf_") and len(plain) > 30
    assert plain.encode() in response.content
    token = AccessToken.objects.get(user=alice)
    assert token.scope == "write"
    assert token.token_hash == hashlib.sha256(plain.encode()).hexdigest()
    assert plain not in {token.token_hash, token.prefix, token.name}
    again = alice_client.get("/settings/tokens/")
    assert plain.encode() not in again.content
    assert token.prefix.encode() in again.content


def test_a_refused_token_form_is_400_and_says_why(alice_client):
    response = alice_client.post("/settings/tokens/", {"name": "laptop", "scope": "root"})
    assert response.status_code == 400
    assert "Select a valid choice" in response.content.decode()
    assert response.context["new_token"] is None and not AccessToken.objects.exists()


def test_settings_page_needs_login_and_csrf(client, alice):
    assert client.get("/settings/tokens/").status_code == 302
    from django.test import Client

    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post("/settings/tokens/", {"name": "x", "scope": "read"}).status_code == 403
    assert not AccessToken.objects.exists()


def test_revoke_only_own_tokens(alice_client, alice, bob, alice_write, bob_write):
    bobs = AccessToken.objects.get(user=bob)
    alice_client.post(f"/settings/tokens/{bobs.id}/revoke/")
    assert AccessToken.objects.filter(id=bobs.id).exists()
    alices = AccessToken.objects.get(user=alice)
    alice_client.post(f"/settings/tokens/{alices.id}/revoke/")
    assert not AccessToken.objects.filter(id=alices.id).exists()


def test_whoami_with_token_and_revoked_token(api, alice, alice_write):
    me = api(alice_write).whoami()
    assert me["name"] == "alice"
    assert me["auth"]["accessToken"]["role"] == "write"
    assert AccessToken.objects.get(user=alice).last_used_at is not None
    AccessToken.objects.filter(user=alice).delete()
    with pytest.raises(HfHubHTTPError) as info:
        api(alice_write).whoami()
    assert info.value.response.status_code == 401
