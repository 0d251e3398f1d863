"""Presigned download links point at the store's public address
(LORAHUB_S3_PUBLIC_ENDPOINT_URL), not at the one the web uses inside its network: users
cannot reach `http://minio:9000`. Against `rclone serve s3`, reached by the web as
127.0.0.1 and by users as localhost (the name a link is signed for is the one it works at).
"""

from urllib.parse import urlsplit

import pytest
import requests

from config.settings import s3_storage
from tests.jobs.conftest import publish_toys
from tests.security.test_settings import manage

pytestmark = [pytest.mark.django_db(transaction=True)]


@pytest.fixture
def on_public_s3(settings, on_s3):
    """The bucket at its internal address, and at its public one for links."""
    public = f"http://localhost:{on_s3.port}"
    links = s3_storage(on_s3.bucket, public, on_s3.access_key, on_s3.secret_key)
    settings.STORAGES = {**settings.STORAGES, "links": links}
    return on_s3


def test_download_links_are_signed_for_the_public_address(on_public_s3, client, alice, toys):
    folder = toys / "adapters" / "t5-a"
    adapter = publish_toys(alice, toys, ["t5-a"])["t5-a"]

    r = client.get(f"/{adapter.full_name}/resolve/main/adapter_model.safetensors")
    assert r.status_code == 302
    link = r["Location"]
    assert urlsplit(link).netloc == f"localhost:{on_public_s3.port}", link
    fetched = requests.get(link, timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == (folder / "adapter_model.safetensors").read_bytes()
    # The signature covers the host: the same link under another name is refused.
    internal = link.replace(f"localhost:{on_public_s3.port}", f"127.0.0.1:{on_public_s3.port}")
    assert requests.get(internal, timeout=30).status_code == 403


def test_the_settings_sign_links_for_the_public_endpoint_from_the_environment(tmp_path):
    code = (
        "import config.settings as s; "
        "print(s.STORAGES['default']['OPTIONS']['endpoint_url'], "
        "s.STORAGES.get('links', {}).get('OPTIONS', {}).get('endpoint_url'))"
    )
    env = {
        "LORAHUB_S3_BUCKET": "b",
        "LORAHUB_S3_ENDPOINT_URL": "http://minio:9000",
        "AWS_ACCESS_KEY_ID": "k",
        "AWS_SECRET_ACCESS_KEY": "s",
    }
    public = "https://s3.example.org"
    out = manage(tmp_path, "-c", code, LORAHUB_S3_PUBLIC_ENDPOINT_URL=public, **env)
    assert out.stdout.split() == ["http://minio:9000", public], out.stderr
    # Without it, links are the default store's, as before.
    assert manage(tmp_path, "-c", code, **env).stdout.split() == ["http://minio:9000", "None"]


def test_workers_asking_under_the_internal_name_get_internal_links(
    on_public_s3, client, settings, tmp_path
):
    """Workers fetch base models from the web under its internal name (`web` in compose)
    and reach the store only at its internal address: their links are signed for that."""
    from hub.services.base_models import base_model_register
    from tests.big_files import big_model_folder

    settings.LORAHUB_INTERNAL_HOST = "web"
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "web"]
    settings.LORAHUB_S3_REDIRECT_MIN_BYTES = 1
    folder = big_model_folder(tmp_path / "model", side=64)
    base_model_register("org/linked-model", folder)
    url = "/org/linked-model/resolve/main/model.safetensors"
    port = on_public_s3.port

    worker = client.get(url, HTTP_HOST="web:8000")
    assert worker.status_code == 302
    assert urlsplit(worker["Location"]).netloc == f"127.0.0.1:{port}"
    fetched = requests.get(worker["Location"], timeout=30)
    assert fetched.content == (folder / "model.safetensors").read_bytes()
    # Anyone else gets the public address.
    user = client.get(url)
    assert urlsplit(user["Location"]).netloc == f"localhost:{port}"
