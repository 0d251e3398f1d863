"""What interrupted work leaves behind, removed by age (`manage.py blobs_sweep`, and every
worker on its own schedule):

- stored files that the database marks as garbage (hub.services.storage_ledger): adapter
  files and job results of rolled-back uploads and failed final saves, and the files of
  deleted rows; never a file the database does not mention, and nothing in a store that
  another database marked, or beside a database that looks empty (StoreRefused);
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

from composer.models import Job
from hub.services.storage_sweep import ledger_sweep

log = logging.getLogger(__name__)
SCRATCH = re.compile(r"job-(\d+)-")


def leftovers_sweep(grace: timedelta) -> dict[str, list[str]]:
    """Remove every kind of leftover older than `grace`; what was removed, by kind. The
    local folders are swept even when the store is refused (StoreRefused, raised after)."""
    swept = {
        "uploads": local_sweep(Path(settings.FILE_UPLOAD_TEMP_DIR), grace),
        "scratch": scratch_sweep(grace),
    }
    try:
        swept["stored"] = ledger_sweep(grace)
    finally:
        if any(swept.values()):
            log.info("swept leftovers: %s", {k: len(v) for k, v in swept.items()})
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
