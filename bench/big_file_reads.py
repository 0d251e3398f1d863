"""What large stored files cost the web process on S3 (`rclone serve s3`), before and after.

Before: django-storages' S3File, which downloads the whole object into the temp folder
(FILE_UPLOAD_TEMP_DIR) on its first read. After: hub.services.stored_reads, ranged GETs
and one streamed body.

- Slow readers of an archive: READERS downloads of a zip of one BIG_FILE_MIB file, each
  read as far as its first chunk and then held (a client that reads slowly). Seconds until
  all have a first chunk, the bytes spooled to the temp folder meanwhile, the memory added.
- A header check: the shapes of the same file (hub.services.shapes reads its safetensors
  header). Seconds, bytes fetched from the bucket, bytes spooled.

Run by `python -m bench hostile_inputs`; needs no database.
"""

import os
import shutil
import tempfile
import time
from pathlib import Path

import psutil

READERS = 3
BIG_FILE_MIB = int(os.environ.get("BENCH_BIG_FILE_MIB", "256"))
MIB = 1024 * 1024


def big_file_rows() -> list[dict]:
    from django.core.files import File
    from django.core.files.storage import default_storage
    from django.test import override_settings

    from tests.big_files import big_model_folder
    from tests.s3_server import S3Server

    folder = Path(tempfile.mkdtemp(prefix="bench-big-files-"))
    s3 = S3Server(folder / "s3").start()
    try:
        side = int((BIG_FILE_MIB * MIB // 4) ** 0.5)
        model = big_model_folder(folder / "model", side) / "model.safetensors"
        temp = folder / "web-temp"
        temp.mkdir()
        storages = {"default": s3.storage()}
        with override_settings(STORAGES=storages, FILE_UPLOAD_TEMP_DIR=temp):
            with open(model, "rb") as fh:
                name = default_storage.save("blobs/bench/model.safetensors", File(fh))
            size = default_storage.size(name)
            rows = []
            for way, opener in _openers(name, size):
                rows.append({"attack": "slow archive readers", "way": way} | _readers(opener, temp))
                rows.append({"attack": "header check", "way": way} | _header(opener, size, temp))
            for row in rows:
                print({"file_mib": size // MIB, **row}, flush=True)
            return rows
    finally:
        s3.stop()
        shutil.rmtree(folder, ignore_errors=True)


def _openers(name: str, size: int):
    from django.core.files.storage import default_storage

    from hub.services.stored_reads import stored_open

    yield "before: S3File", lambda: default_storage.open(name, "rb")
    yield "after: ranged and streamed", lambda: stored_open(name, size)


def _readers(opener, temp: Path) -> dict:
    from hub.services.zips import zip_stream
    from tests.big_files import temp_bytes

    rss = psutil.Process().memory_info().rss
    started = time.perf_counter()
    streams = []
    for _ in range(READERS):
        f = opener()
        stream = zip_stream([("a/model.safetensors", f.size, f)])
        next(stream)  # the entry's header and first chunk: the file's first read
        streams.append(stream)
    row = {
        "seconds": round(time.perf_counter() - started, 2),
        "temp_mib": round(temp_bytes(temp) / MIB, 1),
        "rss_added_mib": round((psutil.Process().memory_info().rss - rss) / MIB, 1),
    }
    for stream in streams:
        stream.close()
    return row


def _header(opener, size: int, temp: Path) -> dict:
    from django.core.files.storage import default_storage

    from hub.services.safetensors_header import read_safetensors_header
    from hub.services.validation import MAX_HEADER_BYTES
    from tests.big_files import counting_reads, temp_bytes

    peak = 0
    started = time.perf_counter()
    with counting_reads(default_storage.bucket.meta.client) as fetched, opener() as f:
        read_safetensors_header(f, size, filename="model", max_header_bytes=MAX_HEADER_BYTES)
        peak = temp_bytes(temp)
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "fetched_bytes": sum(fetched),
        "temp_mib": round(peak / MIB, 1),
    }
