"""Large stored files on a real S3-compatible server (`rclone serve s3`): downloads stream or
redirect and header checks read a few KB, never copying an object into the web's temp
folder (django-storages' S3File downloads the whole object there on its first read).

The bytes the web process fetches from the bucket are counted on the S3 client itself, as
they are read from every GetObject's body (ranged or not, the transfer manager's included).
"""

import io
import json
import tempfile
import zipfile
from pathlib import Path

import psutil
import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage

from hub.services.adapters import adapter_create
from hub.services.base_models import base_model_register
from hub.services.shapes import base_model_weight_shapes, version_shapes
from hub.views.files import archive_response
from tests.big_files import MIB, big_model_folder, counting_reads, fill, temp_bytes
from tests.hub.test_streaming import write_big_adapter
from tests.jobs.conftest import on_s3, s3  # noqa: F401 (fixtures)
from tests.jobs.test_s3 import follow_to_store

pytestmark = pytest.mark.django_db


@pytest.fixture
def fetched(on_s3):  # noqa: F811
    """The sizes of the reads of every GetObject's body in this process."""
    with counting_reads(default_storage.bucket.meta.client) as sizes:
        yield sizes


@pytest.fixture
def web_temp(settings, tmp_path, monkeypatch) -> Path:
    """An empty temp folder for this process: FILE_UPLOAD_TEMP_DIR and tempfile's."""
    folder = tmp_path / "web-temp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = folder
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def rss() -> int:
    return psutil.Process().memory_info().rss


def test_an_archive_streams_from_the_bucket_without_temp_files(
    on_s3,  # noqa: F811
    fetched,
    web_temp,
    alice,
    tmp_path,
):
    folder = write_big_adapter(tmp_path / "big", 128 * 1024)  # 64 MiB of weights
    weights = fill(folder / "adapter_model.safetensors")
    adapter = adapter_create(owner=alice, name="big", files={p.name: p for p in folder.iterdir()})
    fetched.clear()

    response = archive_response(adapter.current_version)
    before, peak_rss, peak_temp = rss(), 0, 0
    body = io.BytesIO()
    for chunk in response.streaming_content:
        body.write(chunk)
        peak_temp = max(peak_temp, temp_bytes(web_temp))
        peak_rss = max(peak_rss, rss() - before - body.tell())
    response.close()

    assert peak_temp == 0, f"{peak_temp} bytes spooled to the temp folder"
    assert peak_rss < 24 * MIB, f"{peak_rss / MIB:.0f} MiB beyond what the test kept"
    with zipfile.ZipFile(body) as zf:
        assert zf.read("big/adapter_model.safetensors") == weights
    assert sum(fetched) < len(weights) + MIB  # each stored byte fetched once
    assert list(web_temp.iterdir()) == []


def test_header_checks_fetch_a_few_kilobytes_once(on_s3, fetched, web_temp, alice, tmp_path):  # noqa: F811
    cache.clear()
    folder = write_big_adapter(tmp_path / "big", 128 * 1024)
    adapter = adapter_create(owner=alice, name="big", files={p.name: p for p in folder.iterdir()})
    base = base_model_register("org/big-model", big_model_folder(tmp_path / "model"))
    fetched.clear()

    shapes = version_shapes(adapter.current_version, "big")
    weights = base_model_weight_shapes(base)
    first = sum(fetched)
    assert 0 < first < 16 * 1024, f"{first} bytes fetched for two headers"
    assert weights == {"encoder.q.weight": (4096, 4096)}
    assert shapes.modules  # the adapter's module shapes, from its header

    assert version_shapes(adapter.current_version, "big") == shapes
    assert base_model_weight_shapes(base) == weights
    assert sum(fetched) == first, "shapes are cached per sha256: no second read"
    assert temp_bytes(web_temp) == 0


def test_base_model_files_redirect_or_stream_their_ranges(
    on_s3,  # noqa: F811
    fetched,
    web_temp,
    client,
    settings,
    tmp_path,
):
    folder = big_model_folder(tmp_path / "model")
    weights = (folder / "model.safetensors").read_bytes()
    base_model_register("org/big-model", folder)
    url = "/org/big-model/resolve/main/model.safetensors"

    redirected = client.get(url)
    assert redirected["X-Linked-Size"] == str(len(weights))
    assert follow_to_store(redirected, on_s3) == weights

    settings.LORAHUB_S3_REDIRECT_MIN_BYTES = 1 << 40  # served through the web instead
    fetched.clear()
    first, last = 40 * MIB, 40 * MIB + 3 * MIB - 1
    partial = client.get(url, HTTP_RANGE=f"bytes={first}-{last}")
    assert partial.status_code == 206
    assert b"".join(partial.streaming_content) == weights[first : last + 1]
    partial.close()
    assert sum(fetched) <= 4 * MIB, f"{sum(fetched)} bytes fetched for a 3 MiB range"
    assert temp_bytes(web_temp) == 0


def test_an_api_commit_checks_the_files_it_keeps_by_their_headers(
    on_s3,  # noqa: F811
    fetched,
    web_temp,
    client,
    alice,
    tmp_path,
):
    """A commit that changes only the card validates the large weights it keeps again:
    their header, not their bytes."""
    import base64

    from hfapi.tokens import token_create

    folder = write_big_adapter(tmp_path / "big", 128 * 1024)
    adapter = adapter_create(owner=alice, name="big", files={p.name: p for p in folder.iterdir()})
    token = token_create(user=alice, name="laptop", scope="write")[1]
    card = base64.b64encode(b"# Big\n").decode()
    lines = [
        {"key": "header", "value": {"summary": "card"}},
        {"key": "file", "value": {"path": "README.md", "content": card, "encoding": "base64"}},
    ]
    body = "".join(json.dumps(line) + "\n" for line in lines)
    fetched.clear()
    response = client.post(
        "/api/models/alice/big/commit/main",
        body,
        content_type="application/x-ndjson",
        HTTP_AUTHORIZATION=f"Bearer {token}",
    )
    assert response.status_code == 200, response.content
    assert adapter.versions.count() == 2
    assert sum(fetched) < 64 * 1024, f"{sum(fetched)} bytes fetched for a card change"
    assert temp_bytes(web_temp) == 0


def test_a_stream_the_store_drops_goes_on_where_it_stopped(on_s3, fetched, tmp_path):  # noqa: F811
    from hub.services.stored_reads import StoredFile

    data = fill(write_big_adapter(tmp_path / "big", 16 * 1024) / "adapter_model.safetensors")
    name = default_storage.save("blobs/dropped", io.BytesIO(data))
    with StoredFile(default_storage, name, len(data)) as f:
        got = f.read(MIB) + f.read(MIB)  # a ranged read, then the rest as one stream
        f._body._raw_stream.shutdown()  # the store's connection breaks mid-body
        while chunk := f.read(MIB):
            got += chunk
    assert got == data
