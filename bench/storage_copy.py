"""Moving stored files between stores, as `manage.py storage_copy` does (its `stored_copy`:
streamed, each copy's sha256 checked): one 512 MiB file from the file system into an
S3-compatible store (`rclone serve s3` on this machine) and back to another folder.

Each step runs in a fresh process, warmed by copying a small file first (boto3 loaded, its
client made): seconds, MB/s and the process's peak RSS above what it held before the copy
(the kernel's VmHWM, reset then). The steps: into the store; again (nothing to copy); back
to the file system; into the store under another prefix with boto3's default transfer
buffers instead of the site's. Then a plain `shutil.copyfile` of the same file. Writes
bench/results/storage_copy.json.
"""

import hashlib
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import django
import psutil

from bench.catalog_memory import MB, peak_rss, reset_peak

SIZE = 512 * MB
STEPS = ("fs_to_s3", "fs_to_s3_again", "s3_to_fs", "fs_to_s3_boto3_defaults")


def _random_file(path) -> str:
    """Write SIZE random bytes to `path`; their sha256."""
    digest = hashlib.sha256()
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as fh:
        for _ in range(SIZE // MB):
            chunk = os.urandom(MB)
            digest.update(chunk)
            fh.write(chunk)
    return digest.hexdigest()


def _step(step: str, var, sha: str, bucket_args: tuple) -> dict:
    """One step, in this (fresh) process."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.files.base import ContentFile
    from django.core.files.storage import FileSystemStorage, storages

    from config.settings import s3_storage
    from hub.services.storage import blob_path, stored_copy

    config = s3_storage(*bucket_args)
    if step == "fs_to_s3_boto3_defaults":
        config["OPTIONS"].update(transfer_config=None, location="boto3-defaults")
    bucket = storages.create_storage(config)
    source, back = FileSystemStorage(var / "media"), FileSystemStorage(var / "back")
    warm = source.save(f"warm-{step}", ContentFile(b"warm"))
    stored_copy(source, bucket, warm)
    stored_copy(bucket, back, warm)

    name = blob_path(sha)
    into, out = (bucket, back) if step == "s3_to_fs" else (source, bucket)
    process = psutil.Process()
    before = process.memory_info().rss
    reset_peak(process.pid)
    start = time.perf_counter()
    copied = stored_copy(into, out, name, sha)
    seconds = time.perf_counter() - start
    measured = {
        "copied": copied,
        "seconds": round(seconds, 2),
        "peak_rss_growth_mb": round((peak_rss(process.pid) - before) / MB, 1),
    }
    if copied:
        measured["mb_per_s"] = round(SIZE / MB / seconds, 1)
    return measured


def main() -> dict:
    from bench.catalog_report import ROOT, write_result
    from tests.s3_server import S3Server

    var = ROOT / "var" / "bench-storage-copy"
    shutil.rmtree(var, ignore_errors=True)
    (var / "s3").mkdir(parents=True)
    probe = var / "media" / "probe"
    sha = _random_file(probe)
    path = var / "media" / "blobs" / sha[:2] / sha[2:4] / sha
    os.renames(probe, path)
    server = S3Server(var / "s3").start()
    bucket_args = (server.bucket, server.endpoint_url, server.access_key, server.secret_key)
    result = {"size_mb": SIZE // MB}
    try:
        for step in STEPS:
            with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
                result[step] = fresh.submit(_step, step, var, sha, bucket_args).result()
    finally:
        server.stop()
    start = time.perf_counter()
    shutil.copyfile(path, var / "plain-copy")
    result["plain_copy_s"] = round(time.perf_counter() - start, 2)
    result["cores"] = os.cpu_count()
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(var, ignore_errors=True)
    print(write_result("storage_copy", result))
    print(result)
    return result
