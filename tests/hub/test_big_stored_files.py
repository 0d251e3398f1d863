"""Large stored files on a real S3-compatible server (`rclone serve s3`): downloads stream or
redirect and header checks read a few KB, never copying an object into the web's temp
folder (django-storages' S3File downloads the whole object there on its first read).

The bytes the web process fetches from the bucket are counted on the S3 client itself, as
they are read from every GetObject's body (ranged or not, the transfer manager's included).
"""

import io
import json
import os
import struct
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import psutil
import pytest
from django.core.cache import cache
from django.core.files.storage import default_storage

from hub.services.adapters import adapter_create
from hub.services.base_models import base_model_register
from hub.services.shapes import base_model_weight_shapes, version_shapes
from hub.views.files import archive_response
from tests.hub.test_streaming import write_big_adapter
from tests.jobs.test_s3 import follow_to_store, on_s3, s3  # noqa: F401 (fixtures)

pytestmark = pytest.mark.django_db
MIB = 1024 * 1024
BLOCK = np.arange(MIB // 4, dtype=np.float32) % 251  # finite values, one MiB


def fill(path: Path) -> bytes:
    """Overwrite a safetensors file's data with a deterministic pattern; its bytes."""
    with open(path, "r+b") as f:
        (header_len,) = struct.unpack("<Q", f.read(8))
        f.seek(8 + header_len)
        left, i = path.stat().st_size - 8 - header_len, 0
        while left > 0:
            block = (BLOCK + i).tobytes()[:left]
            f.write(block)
            left, i = left - len(block), i + 1
    return path.read_bytes()


def big_model_folder(folder: Path, side: int = 4096) -> Path:
    """A base model folder whose one matrix, [side, side] float32, is 64 MiB."""
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["T5Model"]}))
    nbytes = side * side * 4
    header = json.dumps(
        {"encoder.q.weight": {"dtype": "F32", "shape": [side, side], "data_offsets": [0, nbytes]}}
    ).encode()
    with open(folder / "model.safetensors", "wb") as f:
        f.write(struct.pack("<Q", len(header)) + header)
        f.truncate(8 + len(header) + nbytes)
    fill(folder / "model.safetensors")
    return folder


@pytest.fixture
def fetched(on_s3):  # noqa: F811
    """A list of the sizes of every read of a GetObject's body in this process."""
    sizes = []

    def count(http_response, parsed, **kwargs):
        body = parsed["Body"]
        read = body.read

        def counted(*args, **kwargs):
            data = read(*args, **kwargs)
            sizes.append(len(data))
            return data

        body.read = counted

    events = default_storage.bucket.meta.client.meta.events
    events.register("after-call.s3.GetObject", count)
    yield sizes
    events.unregister("after-call.s3.GetObject", count)


@pytest.fixture
def web_temp(settings, tmp_path, monkeypatch) -> Path:
    """An empty temp folder for this process: FILE_UPLOAD_TEMP_DIR and tempfile's."""
    folder = tmp_path / "web-temp"
    folder.mkdir()
    settings.FILE_UPLOAD_TEMP_DIR = folder
    monkeypatch.setattr(tempfile, "tempdir", str(folder))
    return folder


def temp_bytes(folder: Path) -> int:
    """Bytes in `folder`'s files, open unnamed ones included (a temporary file has no name
    once created: it is seen only through this process's open descriptors)."""
    total = sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(str(folder)):
                total += os.stat(f"/proc/self/fd/{fd}").st_size
        except OSError:  # closed meanwhile
            continue
    return total


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
