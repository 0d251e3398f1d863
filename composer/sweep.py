"""What interrupted work leaves behind, removed by age (`manage.py blobs_sweep`, and every
worker on its own schedule):

- stored adapter files that no Blob names (an upload rolled back after storing them);
- stored job results that no Job names (a result stored just before a failed final save);
- temporary upload files of a web process killed mid-upload (FILE_UPLOAD_TEMP_DIR);
- scratch folders of job attempts and trials killed mid-run, half-copied inputs and base models,
  and job results unpacked outside the input cache by earlier versions (COMPOSER_WORK_DIR).

Each only once older than the grace period, so work in progress is spared; a scratch
folder of a job that is still running is kept whatever its age.
"""

import logging
import re
import shutil
import time
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.files.storage import default_storage
from django.utils import timezone

from composer.models import Job
from hub.services.storage import blobs_sweep, storage_delete, stored_folders

log = logging.getLogger(__name__)
RESULTS_DIR = "jobs"
SCRATCH = re.compile(r"job-(\d+)-")


def leftovers_sweep(grace: timedelta) -> dict[str, list[str]]:
    """Remove every kind of leftover older than `grace`; what was removed, by kind."""
    swept = {
        "blobs": blobs_sweep(grace),
        "results": results_sweep(grace),
        "uploads": local_sweep(Path(settings.FILE_UPLOAD_TEMP_DIR), grace),
        "scratch": scratch_sweep(grace),
    }
    if any(swept.values()):
        log.info("swept leftovers: %s", {k: len(v) for k, v in swept.items()})
    return swept


def results_sweep(grace: timedelta) -> list[str]:
    cutoff = timezone.now() - grace
    swept = []
    for folder, names in stored_folders(RESULTS_DIR):
        paths = [f"{folder}/{name}" for name in names]
        known = set(Job.objects.filter(result_file__in=paths).values_list("result_file", flat=True))
        stale = [
            p for p in paths if p not in known and default_storage.get_modified_time(p) < cutoff
        ]
        storage_delete(stale)
        swept += stale
    return swept


def _older(path: Path, grace: timedelta) -> bool:
    try:
        return path.lstat().st_mtime < time.time() - grace.total_seconds()
    except FileNotFoundError:
        return False


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def local_sweep(folder: Path, grace: timedelta, keep=lambda path: False) -> list[str]:
    """Remove the entries of a local folder older than `grace` (unless `keep(path)`)."""
    if not folder.is_dir():
        return []
    swept = []
    for path in folder.iterdir():
        if _older(path, grace) and not keep(path):
            _remove(path)
            swept.append(str(path))
    return swept


def scratch_sweep(grace: timedelta) -> list[str]:
    work = Path(settings.COMPOSER_WORK_DIR)
    running = set(Job.objects.filter(status=Job.Status.RUNNING).values_list("pk", flat=True))

    def still_running(path: Path) -> bool:
        match = SCRATCH.match(path.name)
        return bool(match) and int(match.group(1)) in running

    swept = local_sweep(work / "jobs", grace, keep=still_running)
    # In the caches, half-copied entries start with "." (a lock file stays).
    unfinished = lambda p: p.name.startswith(".") and p.name != ".lock"  # noqa: E731
    for cache in ("adapters", "blobs", "base-models"):
        swept += local_sweep(work / cache, grace, keep=lambda p: not unfinished(p))
    # Job results that Try it once unpacked outside the input cache, on workers that kept them.
    swept += local_sweep(work / "results", grace)
    return swept
