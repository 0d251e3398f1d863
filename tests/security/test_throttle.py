"""Log-ins are throttled per account and address (site and admin); uploads and Hub API writes
per user and hour. 40 wrong passwords in a row used to go through."""

import pytest
from django.test import Client
from django.urls import reverse

from hfapi.tokens import token_create
from tests.conftest import PASSWORD


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_account_for_a_while(db, alice, url):
    alice.is_staff = True
    alice.save()
    client = Client()
    refused = 0
    for _ in range(40):
        page = client.post(url, {"username": "alice", "password": "wrong"}).content.decode()
        refused += "Too many failed log-ins" in page
    assert refused == 35  # the first 5 were checked, the other 35 refused unchecked
    # Locked: even the right password is refused, from another address too.
    other = Client(REMOTE_ADDR="10.9.9.9")
    page = other.post(url, {"username": "alice", "password": PASSWORD}).content.decode()
    assert "Too many failed log-ins" in page and "_auth_user_id" not in other.session


def test_one_address_cannot_try_many_accounts(db, settings):
    settings.LORAHUB_LOGIN_FAILURES_PER_ADDRESS = 10
    client = Client()
    for i in range(10):
        client.post("/accounts/login/", {"username": f"user{i}", "password": "x"})
    page = client.post("/accounts/login/", {"username": "someone", "password": "x"})
    assert page.status_code == 429 and "Too many failed log-ins" in page.content.decode()


def test_a_good_login_still_works_below_the_limit(db, alice):
    client = Client()
    for _ in range(4):
        client.post("/accounts/login/", {"username": "alice", "password": "wrong"})
    assert (
        client.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code
        == 302
    )


def test_uploads_per_hour_are_limited(alice_client, settings):
    settings.LORAHUB_WRITES_PER_HOUR = 2
    url = reverse("hub:adapter_new")
    for _ in range(2):
        assert alice_client.post(url, {"name": "x"}).status_code == 400  # counted, refused
    response = alice_client.post(url, {"name": "x"})
    assert response.status_code == 429 and b"the limit" in response.content


def test_api_writes_per_hour_are_limited(client, alice, settings):
    settings.LORAHUB_WRITES_PER_HOUR = 2
    token = token_create(user=alice, name="w", scope="write")[1]
    statuses = [
        client.post(
            "/api/repos/create",
            f'{{"name": "r{i}"}}',
            content_type="application/json",
            HTTP_AUTHORIZATION=f"Bearer {token}",
        ).status_code
        for i in range(3)
    ]
    assert statuses == [200, 200, 429]
