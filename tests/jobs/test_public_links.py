"""Presigned download links point at the store's public address
(LORAHUB_S3_PUBLIC_ENDPOINT_URL), not at the one the web uses inside its network: users
cannot reach `http://minio:9000`. Against `rclone serve s3`, reached by the web as
127.0.0.1 and by users as localhost (the name a link is signed for is the one it works at).
"""

from urllib.parse import urlsplit

import pytest
import requests
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from config.settings import s3_storage
from hub.models import Adapter
from tests.s3_server import S3Server

pytestmark = [pytest.mark.django_db(transaction=True)]
FILES = ("adapter_config.json", "adapter_model.safetensors")


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()


def public_endpoint(s3) -> str:
    return f"http://localhost:{s3.port}"


@pytest.fixture
def on_s3(settings, s3, tmp_path):
    settings.STORAGES = {
        **settings.STORAGES,
        "default": s3.storage(),  # the internal address
        "links": s3_storage(s3.bucket, public_endpoint(s3), s3.access_key, s3.secret_key),
    }
    settings.MEDIA_ROOT = tmp_path / "no-media-here"
    settings.LORAHUB_S3_REDIRECT_MIN_BYTES = 4000  # the weights, not the config
    return s3


def test_download_links_are_signed_for_the_public_address(on_s3, client, alice, toys):
    folder = toys / "adapters" / "t5-a"
    client.force_login(alice)
    files = [SimpleUploadedFile(n, (folder / n).read_bytes()) for n in FILES]
    r = client.post(reverse("hub:adapter_new"), {"name": "public", "files": files})
    assert r.status_code == 302, r.content.decode()[-2000:]
    adapter = Adapter.objects.get(name="public")

    r = client.get(f"/{adapter.full_name}/resolve/main/adapter_model.safetensors")
    assert r.status_code == 302
    link = r["Location"]
    assert urlsplit(link).netloc == f"localhost:{on_s3.port}", link
    fetched = requests.get(link, timeout=30)
    assert fetched.status_code == 200
    assert fetched.content == (folder / "adapter_model.safetensors").read_bytes()
    # The signature covers the host: the same link under another name is refused.
    internal = link.replace(f"localhost:{on_s3.port}", f"127.0.0.1:{on_s3.port}")
    assert requests.get(internal, timeout=30).status_code == 403
