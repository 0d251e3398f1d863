"""Presigned download links point at the store's public address
(LORAHUB_S3_PUBLIC_ENDPOINT_URL), not at the one the web uses inside its network: users
cannot reach `http://minio:9000`. Against `rclone serve s3`, reached by the web as
127.0.0.1 and by users as localhost (the name a link is signed for is the one it works at).
"""

from urllib.parse import urlsplit

import pytest
import requests

from config.settings import s3_storage
from tests.jobs import test_s3
from tests.jobs.conftest import publish_toys

# The store and this process on it, as the storage tests have them.
s3, on_s3 = test_s3.s3, test_s3.on_s3
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
