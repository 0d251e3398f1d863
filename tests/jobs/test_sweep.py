"""`manage.py blobs_sweep` removes every kind of leftover once it is old enough, and
nothing that is still in use. Stored files go only when the database marks them garbage
(the storage ledger), never from a store that another database marked, nor beside a
database that looks empty."""

import os
import time
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from composer.lifecycle import job_finish
from composer.models import Job
from composer.results import result_store
from hub.models import Adapter, Blob, Installation, StorageEntry
from hub.services.adapters import adapter_delete
from hub.services.storage_sweep import MARKER, installation_check, ledger_sweep
from tests.jobs.conftest import publish_toys

pytestmark = pytest.mark.django_db(transaction=True)
EVERYTHING = timedelta(minutes=-1)  # a grace period every entry has passed
HOUR = timedelta(hours=1)


def aged(path: Path, hours: float = 2) -> Path:
    """Create `path` (a folder unless it has a suffix) and make it `hours` old."""
    if path.suffix or path.name == ".lock":
        path.write_bytes(b"x")
    else:
        path.mkdir()
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def stored() -> set[str]:
    """Every file in the store (the file system's), the installation marker aside."""
    root = Path(default_storage.location)
    names = {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}
    return names - {MARKER}


def attempt_result(job: Job, tmp_path: Path, finish=True) -> str:
    """A result stored as a worker stores it; named by the job when the attempt finishes,
    else left by an attempt whose final save failed."""
    Job.objects.filter(pk=job.pk).update(status=Job.Status.RUNNING, attempts=1, worker_pid=1)
    job.refresh_from_db()
    out = tmp_path / f"out-{job.pk}-{time.monotonic_ns()}"
    out.mkdir()
    (out / "README.md").write_text("a result")
    name = result_store(job, out, out.with_suffix(".zip"))
    if finish:
        assert job_finish(job, Job.Status.SUCCEEDED, result_file=name)
    else:
        assert job_finish(job, Job.Status.FAILED, error="the final save failed")
    return name


def sweep(*args) -> str:
    out = StringIO()
    call_command("blobs_sweep", *args, stdout=out)
    return out.getvalue()


def test_leftovers_are_swept_by_age(alice, storage_dirs, settings, tmp_path):
    work = Path(settings.COMPOSER_WORK_DIR)
    settings.FILE_UPLOAD_TEMP_DIR = uploads = tmp_path / "uploads"
    for folder in (work / "jobs", work / "adapters", uploads):
        folder.mkdir(parents=True)
    done = Job.objects.create(owner=alice, kind=Job.Kind.LEGO)
    failed = Job.objects.create(owner=alice, kind=Job.Kind.LEGO)
    running = Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Job.Status.RUNNING)

    # Stored results: the job's own, one of an attempt whose final save failed (its intent
    # stays in the ledger), and one the database does not mention (kept, reported).
    kept_result = attempt_result(done, tmp_path)
    orphan_result = attempt_result(failed, tmp_path, finish=False)
    unknown = default_storage.save(f"jobs/{done.pk}/put-there-by-hand.zip", ContentFile(b"z"))
    assert StorageEntry.objects.filter(name=orphan_result).exists()
    assert not StorageEntry.objects.filter(name=kept_result).exists()
    StorageEntry.objects.update(since=timezone.now() - timedelta(hours=2))
    # A killed upload's temporary file, old and new.
    old_upload = aged(uploads / "tmpa1b2.upload.safetensors")
    new_upload = aged(uploads / "tmpc3d4.upload.safetensors", hours=0)
    # Scratch folders: a killed attempt's, a running job's (kept whatever its age), a
    # half-copied input, a finished input directory (a cache entry, kept).
    killed = aged(work / "jobs" / f"job-{done.pk}-abc")
    live = aged(work / "jobs" / f"job-{running.pk}-def")
    half = aged(work / "adapters" / ".abc123-tmp")
    cached = aged(work / "adapters" / "abc123")
    (work / "base-models").mkdir()
    lock = aged(work / "base-models" / ".lock")
    download = aged(work / "base-models" / ".download-x1")
    (work / "results").mkdir()
    unpacked = aged(work / "results" / f"job-{done.pk}")  # unpacked outside the input cache

    text = sweep("--grace-minutes", "60", "--report-unknown")
    assert stored() == {kept_result, unknown}
    assert not old_upload.exists() and new_upload.exists()
    assert not killed.exists() and live.exists()
    assert not half.exists() and cached.exists()
    assert not download.exists() and lock.exists() and not unpacked.exists()
    assert "stored: 1 deleted" in text and "uploads: 1 deleted" in text
    assert "scratch: 4 deleted" in text
    assert f"unknown {unknown}" in text and "unknown: 1 kept" in text
    assert not StorageEntry.objects.filter(name=orphan_result).exists()


def test_an_empty_database_beside_a_populated_store_deletes_nothing(
    alice, catalog, tmp_path, caplog
):
    """The compose start (`migrate && blobs_sweep`) against a new, empty database, with the
    bucket of an installation that has files: it refuses, loudly, and deletes nothing."""
    result = attempt_result(Job.objects.create(owner=alice, kind=Job.Kind.LEGO), tmp_path)
    adapter_delete(adapter=catalog["t5-qk"])  # a tombstone: nothing left of it but its file
    sweep()  # marks the store as this installation's
    before = stored()
    named = set(Blob.objects.values_list("storage_name", flat=True)) | {result}
    tombstoned = set(StorageEntry.objects.values_list("name", flat=True))
    assert tombstoned and before == named | tombstoned
    call_command("flush", "--noinput")  # a fresh `migrate`
    assert not Blob.objects.exists() and not Job.objects.exists()

    with pytest.raises(CommandError, match="names no stored file: it looks empty or new"):
        sweep("--grace-minutes", "0")
    assert stored() == before
    # A store of an earlier version carries no id: refused the same.
    default_storage.delete(MARKER)
    with pytest.raises(CommandError, match="carries no installation id"):
        sweep("--grace-minutes", "0")
    # A worker's sweep says so in its log and goes on with its own folders.
    from composer.tasks import sweep_once

    sweep_once()
    assert "stored files were not swept" in caplog.text
    assert stored() == before and not default_storage.exists(MARKER)


def test_a_foreign_installation_is_refused(alice, catalog):
    ours = installation_check()
    assert Installation.objects.get().uid == ours
    with default_storage.open(MARKER) as fh:
        assert fh.read().decode() == ours
    before = stored()
    default_storage.delete(MARKER)
    default_storage.save(MARKER, ContentFile(b"another-installation"))
    StorageEntry.objects.create(name=sorted(before)[0], kind="tombstone", since=timezone.now())
    with pytest.raises(CommandError, match="belongs to installation another-installation"):
        sweep("--grace-minutes", "-1")
    assert stored() == before


def test_an_unmarked_store_is_adopted_by_the_database_that_names_its_files(catalog):
    assert not default_storage.exists(MARKER) and not Installation.objects.exists()
    sweep()
    with default_storage.open(MARKER) as fh:
        assert fh.read().decode() == Installation.objects.get().uid


def test_a_rolled_back_uploads_files_go_after_the_grace(alice, bob, toys, storage_dirs):
    """The intent is committed before the file is stored, whatever transaction the upload
    runs in: its rollback leaves the intent, and the sweep deletes the file."""
    publish_toys(bob, toys, ["t5-a"])
    kept = stored()
    with pytest.raises(RuntimeError), transaction.atomic():
        publish_toys(alice, toys, ["t5-b"])
        raise RuntimeError("a later step of the same transaction failed")
    orphans = stored() - kept
    assert len(orphans) == 1 and not Adapter.objects.filter(owner=alice).exists()  # the weights
    if connection.vendor == "sqlite":  # one writer: the intent went with the rollback
        assert ledger_sweep(EVERYTHING) == [] and stored() == kept | orphans  # kept, unknown
        return
    assert ledger_sweep(HOUR) == []
    assert stored() == kept | orphans
    assert sorted(ledger_sweep(EVERYTHING)) == sorted(orphans)
    assert stored() == kept
    for blob in Blob.objects.all():  # what is left is whole
        assert default_storage.size(blob.storage_name) == blob.size


def test_the_files_of_a_deleted_row_survive_the_grace_then_go(alice, catalog, toys, tmp_path):
    gone = catalog["t5-a"]
    blobs = Blob.objects.filter(files__version__adapter=gone)
    files = set(blobs.values_list("storage_name", flat=True))
    job = Job.objects.create(owner=alice, kind=Job.Kind.LEGO)
    result = attempt_result(job, tmp_path)
    adapter_delete(adapter=gone)
    alice.delete()  # her account, and her jobs with it
    dropped = files - set(Blob.objects.values_list("storage_name", flat=True))
    assert len(dropped) == 1  # its weights; its config is the other T5 adapters' too
    # Within the grace period a restored database still finds every file.
    assert ledger_sweep(HOUR) == []
    assert files | {result} <= stored()
    # Uploaded again meanwhile: stored under another name, which the sweep leaves alone.
    again = publish_toys(gone.owner, toys, ["t5-a"])["t5-a"]
    new_names = set(
        Blob.objects.filter(files__version__adapter=again).values_list("storage_name", flat=True)
    )
    assert new_names.isdisjoint(dropped)
    assert sorted(ledger_sweep(EVERYTHING)) == sorted(dropped | {result})
    assert not (dropped | {result}) & stored() and new_names <= stored()
    assert not StorageEntry.objects.exists()
