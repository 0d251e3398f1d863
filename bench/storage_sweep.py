"""The leftovers sweep against a database that is not the store's: how many stored objects
it deletes (target: 0) and whether it refuses, as the compose web start runs it
(`manage.py blobs_sweep`, a separate process) against an S3-compatible store (`rclone serve
s3` on this machine).

An installation stores 49 adapter files and 138 job results (the figures of the run that
found the old sweep deleting all of them) and sweeps once, which marks the store. Then:
- `empty_database`: a new database (dropped, created, migrated) beside the store;
- `empty_database_unmarked_store`: the same with the store's marker removed (a store of an
  earlier version);
- `foreign_database`: another installation's database, with files of its own, beside the
  (marked again) store.
Each sweep runs with --grace-minutes 0. Writes bench/results/storage_sweep.json.
Environment: LORAHUB_BENCH_PG (the PostgreSQL server).
"""

import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import psycopg
from psycopg import sql

from bench.catalog_report import write_result

ROOT = Path(__file__).resolve().parent.parent
VAR = ROOT / "var" / "bench-storage-sweep"
PG_SERVER = os.environ.get("LORAHUB_BENCH_PG", "postgres://postgres@127.0.0.1:5432")
DB_NAME = "lorahub_bench_sweep"
BLOBS, RESULTS = 49, 138
MARKER = ".lorahub/installation"


def _database_new() -> None:
    with psycopg.connect(f"{PG_SERVER}/postgres", autocommit=True) as conn:
        ident = sql.Identifier(DB_NAME)
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident))
    _manage("migrate", "--noinput", "-v", "0")


def _manage(*args) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, capture_output=True, text=True
    )


def _seed(blobs: int, results: int, owner: str) -> None:
    """Store `blobs` adapter files and `results` job results, as the site does (in this
    fresh process)."""
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.core.files.base import ContentFile
    from django.core.files.storage import default_storage

    from composer.models import Job
    from hub.services.storage import blob_store

    user = get_user_model().objects.create(username=owner)
    for n in range(blobs):
        path = VAR / f"blob-{owner}-{n}"
        path.write_bytes(f"{owner} adapter file {n} ".encode() * 100)
        blob_store(path)
        path.unlink()
    for _ in range(results):
        job = Job.objects.create(owner=user, kind=Job.Kind.LEGO, status=Job.Status.SUCCEEDED)
        name = default_storage.save(f"jobs/{job.pk}/lego-job{job.pk}.zip", ContentFile(b"z" * 100))
        Job.objects.filter(pk=job.pk).update(result_file=name)


def _marker_set(uid: str | None) -> None:
    """Write the store's installation marker, or remove it (None), through the S3 API."""
    import django

    django.setup()
    from django.core.files.storage import default_storage

    from hub.services.storage_sweep import marker_write

    if uid is None:
        default_storage.delete(MARKER)
    else:
        marker_write(uid)


def _in_fresh_process(fn, *args) -> None:
    with ProcessPoolExecutor(1, mp_context=get_context("spawn")) as fresh:
        fresh.submit(fn, *args).result()


def _sweep(server) -> dict:
    before = server.keys() - {MARKER}
    start = time.perf_counter()
    done = _manage("blobs_sweep", "--grace-minutes", "0")
    seconds = time.perf_counter() - start
    after = server.keys() - {MARKER}
    said = (done.stderr.strip().splitlines() or [""])[-1]
    return {
        "objects": len(before),
        "deleted": len(before - after),
        "exit_status": done.returncode,
        "refused": "not swept" in said,
        "message": said[:300],
        "seconds_with_process_start": round(seconds, 2),
    }


def main() -> dict:
    from tests.s3_server import S3Server

    shutil.rmtree(VAR, ignore_errors=True)
    (VAR / "s3").mkdir(parents=True)
    server = S3Server(VAR / "s3").start()
    os.environ.update(
        {
            **server.env(),
            "DATABASE_URL": f"{PG_SERVER}/{DB_NAME}",
            "DB_CONN_MAX_AGE": "0",
            "LORAHUB_VAR_DIR": str(VAR),
            "MEDIA_ROOT": str(VAR / "no-media"),
            "DJANGO_SETTINGS_MODULE": "config.settings",
        }
    )
    marker = server.folder / server.bucket / MARKER
    result = {"old_sweep_before_this_change": "deleted 49 of 49 and 138 of 138 (run report)"}
    try:
        _database_new()
        _in_fresh_process(_seed, BLOBS, RESULTS, "first")
        marked = _manage("blobs_sweep")
        assert marked.returncode == 0 and marker.exists(), marked.stderr
        uid = marker.read_text()

        _database_new()
        result["empty_database"] = _sweep(server)
        _in_fresh_process(_marker_set, None)
        result["empty_database_unmarked_store"] = _sweep(server)
        _in_fresh_process(_marker_set, uid)
        _in_fresh_process(_seed, 1, 1, "second")  # its own files, in the same store
        result["foreign_database"] = _sweep(server)
    finally:
        server.stop()
    result["cores"] = os.cpu_count()
    result["load_average"] = [round(x, 2) for x in os.getloadavg()]
    shutil.rmtree(VAR, ignore_errors=True)
    print(write_result("storage_sweep", result))
    print(result)
    return result
