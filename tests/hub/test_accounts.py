from django.contrib.auth import get_user_model
from django.urls import reverse

PASSWORD = "a-Long-pass-word-42"


def signup(client, username):
    data = {"username": username, "email": "", "password1": PASSWORD, "password2": PASSWORD}
    return client.post(reverse("signup"), data)


def test_signup_logs_in_and_logout(client, db):
    response = signup(client, "carol")
    assert response.status_code == 302
    assert get_user_model().objects.filter(username="carol").exists()
    home = client.get("/").content.decode()
    assert "carol" in home and "Log out" in home
    assert client.post(reverse("logout")).status_code == 302
    assert "Log in" in client.get("/").content.decode()
    assert client.login(username="carol", password=PASSWORD)


def test_reserved_and_taken_usernames_are_refused(client, alice):
    for name, message in (
        ("adapters", "reserved"),
        ("new", "reserved"),
        ("Alice", "taken"),
        ("../x", "Use letters"),
    ):
        response = signup(client, name)
        assert response.status_code == 400
        assert message in response.content.decode()
    assert get_user_model().objects.count() == 1


def test_login_page(client, alice):
    from tests.conftest import PASSWORD as ALICE_PASSWORD

    response = client.post(reverse("login"), {"username": "alice", "password": ALICE_PASSWORD})
    assert response.status_code == 302
    client.logout()
    response = client.post(reverse("login"), {"username": "alice", "password": "wrong"})
    assert (
        response.status_code == 400 and "correct username and password" in response.content.decode()
    )
