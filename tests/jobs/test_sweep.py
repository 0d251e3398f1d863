"""`manage.py blobs_sweep` removes every kind of leftover once it is old enough, and
nothing that is still in use."""

import os
import time
from io import StringIO
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command

from composer.models import Job

pytestmark = pytest.mark.django_db


def aged(path: Path, hours: float = 2) -> Path:
    """Create `path` (a folder unless it has a suffix) and make it `hours` old."""
    if path.suffix or path.name == ".lock":
        path.write_bytes(b"x")
    else:
        path.mkdir()
    then = time.time() - hours * 3600
    os.utime(path, (then, then))
    return path


def test_leftovers_are_swept_by_age(alice, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.COMPOSER_WORK_DIR = work = tmp_path / "work"
    settings.FILE_UPLOAD_TEMP_DIR = uploads = tmp_path / "uploads"
    for folder in (work / "jobs", work / "adapters", uploads):
        folder.mkdir(parents=True)
    done = Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Job.Status.SUCCEEDED)
    running = Job.objects.create(owner=alice, kind=Job.Kind.LEGO, status=Job.Status.RUNNING)

    # Stored results: the job's own and one a failed final save left behind.
    kept_result = default_storage.save(f"jobs/{done.pk}/lego.zip", ContentFile(b"zip"))
    orphan_result = default_storage.save(f"jobs/{done.pk}/lego-orphan.zip", ContentFile(b"z"))
    Job.objects.filter(pk=done.pk).update(result_file=kept_result)
    for name in (kept_result, orphan_result):
        path = Path(default_storage.path(name))
        os.utime(path, (time.time() - 7200,) * 2)
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

    out = StringIO()
    call_command("blobs_sweep", "--grace-minutes", "60", stdout=out)
    assert not default_storage.exists(orphan_result) and default_storage.exists(kept_result)
    assert not old_upload.exists() and new_upload.exists()
    assert not killed.exists() and live.exists()
    assert not half.exists() and cached.exists()
    assert not download.exists() and lock.exists() and not unpacked.exists()
    text = out.getvalue()
    assert "results: 1 deleted" in text and "uploads: 1 deleted" in text
    assert "scratch: 4 deleted" in text
