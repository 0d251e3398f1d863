import pytest
from django.contrib.auth import get_user_model

from tests.services import chromium_path, port_open, require

PASSWORD = "correct-horse-battery"


@pytest.fixture
def alice(db):
    return get_user_model().objects.create_user("alice", "alice@example.com", PASSWORD)


@pytest.fixture
def bob(db):
    return get_user_model().objects.create_user("bob", "bob@example.com", PASSWORD)


@pytest.fixture
def alice_client(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture
def redis_url():
    from tests.services import REDIS_HOST, REDIS_PORT, TEST_REDIS_URL

    require(port_open(REDIS_HOST, REDIS_PORT), "Redis on 127.0.0.1:6379")
    return TEST_REDIS_URL


@pytest.fixture(scope="session")
def browser():
    """A real headless Chromium driven by Playwright (Debian's chromium, no download)."""
    path = chromium_path()
    require(path is not None, "Chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(
            executable_path=path,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        yield b
        b.close()


@pytest.fixture(autouse=True)
def broker_not_away():
    """Each test starts with this process's memory of a failed broker call cleared
    (composer.dispatch.broker_away): a broker frozen by one test is not the next one's."""
    from composer import dispatch

    dispatch._away_until = 0.0
