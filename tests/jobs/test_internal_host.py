"""Workers reach the web under its internal name (COMPOSER_BASE_MODEL_ENDPOINT's host,
`web` in docker-compose.yml), whatever public names ALLOWED_HOSTS lists and with HTTPS on:
the README's `ALLOWED_HOSTS=hub.example.org` must not refuse every base model download.

The web is gunicorn in its own process with the production settings of that recipe; the
worker's download runs here, as a worker's does.
"""

import pytest

from composer.base_model_fetch import base_model_path
from config import health
from hub.models import BaseModel
from hub.services.base_models import base_model_register
from tests.jobs.toys import T5_NAME
from tests.security import gunicorn_server

pytestmark = pytest.mark.django_db(transaction=True)
PUBLIC = "hub.example.org"
INTERNAL = "localhost"  # the name the workers use (`web` in docker-compose.yml)


def get(host: str, proto: str = "https") -> bytes:
    return (
        f"GET /accounts/login/ HTTP/1.1\r\nHost: {host}\r\nX-Forwarded-Proto: {proto}\r\n"
        "Connection: close\r\n\r\n"
    ).encode()


@pytest.fixture
def storage_dirs(settings, tmp_path):
    """The catalog's files where the web process reads them (its MEDIA_ROOT)."""
    settings.MEDIA_ROOT = tmp_path / "web" / "media"
    settings.COMPOSER_WORK_DIR = tmp_path / "worker-work"


@pytest.fixture
def web(storage_dirs, tmp_path):
    env = {
        "ALLOWED_HOSTS": PUBLIC,
        "LORAHUB_HTTPS": "1",
        "COMPOSER_BASE_MODEL_ENDPOINT": f"http://{INTERNAL}:8000",
    }
    url = gunicorn_server.test_database_url()
    process, port = gunicorn_server.start(url, tmp_path / "web", env, ready=get(PUBLIC))
    yield port
    gunicorn_server.stop(process)


@pytest.fixture(autouse=True)
def _close_client_connections():
    yield
    from huggingface_hub.utils import close_session

    close_session()


def test_a_worker_downloads_a_base_model_from_a_web_serving_a_public_name(
    web, settings, monkeypatch, catalog, toys
):
    # The web is strict: another name is refused, plain HTTP is redirected.
    assert gunicorn_server.raw_request(web, get("127.0.0.1"))[0] == 400
    assert gunicorn_server.raw_request(web, get(PUBLIC, proto="http"))[0] == 301
    # Its health check (docker-compose.yml) asks under the workers' name.
    monkeypatch.setenv("COMPOSER_BASE_MODEL_ENDPOINT", f"http://{INTERNAL}:8000")
    # (a generous timeout: a worker's first request is slow on a loaded machine)
    assert health.check(f"http://127.0.0.1:{web}/accounts/login/", timeout=120) == 200
    BaseModel.objects.filter(identifier=T5_NAME).update(local_path="")
    t5 = base_model_register(T5_NAME, toys / "t5")
    # The worker's settings are the web's (the same environment in docker-compose.yml).
    settings.COMPOSER_BASE_MODEL_ENDPOINT = f"http://{INTERNAL}:{web}"
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

    folder = base_model_path(t5)
    assert (folder / "config.json").read_bytes() == (toys / "t5" / "config.json").read_bytes()
