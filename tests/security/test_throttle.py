"""Log-ins are throttled per account and address (site and admin); sign-ups per address and
hour; uploads and Hub API writes per user and hour. 40 wrong passwords in a row used to go
through, and sign-ups were unlimited (each new account a fresh set of per-user limits)."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from hfapi.tokens import token_create
from tests.conftest import PASSWORD

SIGNUP_PASSWORD = "a-Long-pass-word-42"


@pytest.mark.parametrize("url", ["/accounts/login/", "/admin/login/"])
def test_wrong_passwords_lock_the_guessing_address_out_of_the_account(db, alice, url):
    alice.is_staff = True
    alice.save()
    attacker = Client(REMOTE_ADDR="10.6.6.6")
    refused = 0
    for _ in range(40):
        page = attacker.post(url, {"username": "alice", "password": "wrong"}).content.decode()
        refused += "Too many failed log-ins" in page
    assert refused == 35  # the first 5 were checked, the other 35 refused unchecked
    # Locked at the attacker's address: even the right password is refused there.
    page = attacker.post(url, {"username": "alice", "password": PASSWORD}).content.decode()
    assert "Too many failed log-ins" in page and "_auth_user_id" not in attacker.session
    # The owner, at another address, is not locked out by the attacker's failures.
    owner = Client(REMOTE_ADDR="10.9.9.9")
    assert owner.post(url, {"username": "alice", "password": PASSWORD}).status_code == 302
    assert owner.session["_auth_user_id"] == str(alice.pk)


def test_guesses_from_many_addresses_are_bounded_but_the_owner_gets_in(db, alice, settings):
    settings.LORAHUB_LOGIN_FAILURES_PER_ACCOUNT = 6
    url = "/accounts/login/"
    home = Client(REMOTE_ADDR="10.9.9.9")
    assert home.post(url, {"username": "alice", "password": PASSWORD}).status_code == 302
    for i in range(6):  # a few guesses from each of many addresses
        Client(REMOTE_ADDR=f"10.6.6.{i}").post(url, {"username": "Alice", "password": "x"})
    # A new address is refused even with the right password: the account is under attack...
    fresh = Client(REMOTE_ADDR="10.7.7.7")
    assert fresh.post(url, {"username": "alice", "password": PASSWORD}).status_code == 429
    # ...but the address the owner logged in from before still lets the owner in.
    home = Client(REMOTE_ADDR="10.9.9.9")
    assert home.post(url, {"username": "alice", "password": PASSWORD}).status_code == 302


def test_one_address_cannot_try_many_accounts(db, settings):
    settings.LORAHUB_LOGIN_FAILURES_PER_ADDRESS = 10
    client = Client()
    for i in range(10):
        client.post("/accounts/login/", {"username": f"user{i}", "password": "x"})
    page = client.post("/accounts/login/", {"username": "someone", "password": "x"})
    assert page.status_code == 429 and "Too many failed log-ins" in page.content.decode()


def test_behind_a_proxy_log_in_failures_count_per_client(db, alice, settings):
    settings.LORAHUB_LOGIN_FAILURES_PER_ADDRESS = 10
    settings.LORAHUB_PROXY_HOPS = 1
    guesser = Client(HTTP_X_FORWARDED_FOR="10.1.1.1")
    for i in range(11):
        page = guesser.post("/accounts/login/", {"username": f"user{i}", "password": "x"})
    assert page.status_code == 429
    # Every client reaches the site from the proxy's address: the others still log in.
    other = Client(HTTP_X_FORWARDED_FOR="10.2.2.2")
    page = other.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
    assert page.status_code == 302


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


def test_signups_per_address_are_limited(db, settings):
    settings.LORAHUB_SIGNUPS_PER_HOUR = 3
    users = get_user_model().objects

    def signup(client, username):
        data = {"username": username, "password1": SIGNUP_PASSWORD, "password2": SIGNUP_PASSWORD}
        return client.post("/accounts/signup/", data)

    statuses = [signup(Client(), f"user{i}").status_code for i in range(3)]
    refused = signup(Client(), "user3")
    assert statuses == [302, 302, 302] and refused.status_code == 429
    assert "At most 3 sign-ups an hour" in refused.content.decode()
    assert not users.filter(username="user3").exists() and users.count() == 3
    # Another address still signs up.
    assert signup(Client(REMOTE_ADDR="10.9.9.9"), "user3").status_code == 302


def test_signups_are_counted_per_client_behind_a_proxy(db, settings):
    settings.LORAHUB_SIGNUPS_PER_HOUR = 1
    settings.LORAHUB_PROXY_HOPS = 1
    data = {"password1": SIGNUP_PASSWORD, "password2": SIGNUP_PASSWORD}
    for i, status in enumerate([302, 429]):
        client = Client(HTTP_X_FORWARDED_FOR="10.1.1.1")
        assert client.post("/accounts/signup/", {**data, "username": f"a{i}"}).status_code == status
    client = Client(HTTP_X_FORWARDED_FOR="10.2.2.2")
    assert client.post("/accounts/signup/", {**data, "username": "b"}).status_code == 302
