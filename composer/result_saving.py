"""A finished job's result survives a store outage and the worker's death while saving.

The zip is first kept on the worker's disk (COMPOSER_WORK_DIR/kept-results/job-<id>.zip, with
the fields the job ends with beside it in job-<id>.json, both renamed into place when
complete), then written to STORAGES["default"], tried again with backoff while the store
is away (the job's phase says "Saving result"), for up to COMPOSER_RESULT_SAVE_SECONDS.
Once stored, the name is written on the job's row while it still runs: from then on the
job is never run again (lifecycle.job_recover ends it SUCCEEDED). A later attempt on the
same disk (the worker died while saving) stores the kept result instead of computing it.
"""

import json
import logging
import os
from pathlib import Path

from django.conf import settings

from composer.lifecycle import running
from composer.models import Job
from composer.progress import db_retry, refused_as
from composer.retry import with_backoff
from hub.services.outages import store_unreachable

log = logging.getLogger(__name__)
# What the job's row holds of its progress, kept with the result for a later attempt.
PROGRESS = ("step", "budget", "best_loss", "history", "weights", "best_weights")


def kept_root() -> Path:
    return Path(settings.COMPOSER_WORK_DIR) / "kept-results"


def kept_paths(job_id: int) -> tuple[Path, Path]:
    return kept_root() / f"job-{job_id}.zip", kept_root() / f"job-{job_id}.json"


def result_keep(job: Job, zip_path: Path, fields: dict) -> None:
    """Keep the zip at `zip_path` (moved) and the job's final fields on this disk."""
    kept_zip, kept_json = kept_paths(job.pk)
    kept_root().mkdir(parents=True, exist_ok=True)
    progress = db_retry(lambda: Job.objects.filter(pk=job.pk).values(*PROGRESS).first()) or {}
    tmp = kept_json.with_suffix(".json.tmp")
    tmp.write_text(json.dumps({**progress, **fields}))
    os.replace(zip_path, kept_zip)
    os.replace(tmp, kept_json)  # last: a json names a complete zip


def result_kept(job: Job) -> dict | None:
    """The fields of a result an earlier attempt kept on this disk, or None."""
    kept_zip, kept_json = kept_paths(job.pk)
    if not (kept_zip.is_file() and kept_json.is_file()):
        return None
    try:
        return json.loads(kept_json.read_text())
    except ValueError:
        return None


def kept_forget(job_id: int) -> None:
    for path in kept_paths(job_id):
        path.unlink(missing_ok=True)


def result_save(job: Job, fields: dict, sleep) -> dict:
    """Store the kept result (trying again while the store is away; `sleep` may raise to
    give up), then write its name and `fields` on the job's row; the fields to finish with.
    The kept copy goes once the row names the stored file."""
    from composer.results import result_delete, result_upload

    kept_zip, _ = kept_paths(job.pk)
    # What the job did before (a download) is shown again once the result is stored.
    earlier = db_retry(
        lambda: Job.objects.filter(pk=job.pk).values_list("phase", flat=True).first()
    )
    earlier = "" if (earlier or "").startswith("Saving") else earlier or ""
    phase(job, "Saving result")

    def waiting(error, attempt, pause) -> None:
        phase(
            job,
            f"Saving result: the file store is unreachable ({type(error).__name__}); "
            f"trying again in {pause:.0f} s (attempt {attempt + 1})",
        )

    try:
        name = with_backoff(
            lambda: result_upload(job, kept_zip),
            transient=store_unreachable,
            total=settings.COMPOSER_RESULT_SAVE_SECONDS,
            what=f"job {job.pk}: storing the result",
            waiting=waiting,
            sleep=sleep,
        )
    except Exception as error:
        if not store_unreachable(error):
            raise
        minutes = settings.COMPOSER_RESULT_SAVE_SECONDS / 60
        raise ValueError(
            f"The result could not be stored: the file store was unreachable for "
            f"{minutes:g} minutes ({type(error).__name__})."
        ) from error
    fields = {
        **fields,
        "result_file": name,
        "phase": "" if earlier.startswith("Saving") else earlier,
    }
    try:
        with refused_as("result"):
            recorded = db_retry(lambda: running(job).update(**fields))
    except BaseException:
        result_delete(name)
        raise
    if recorded:
        kept_forget(job.pk)
    return fields


def phase(job: Job, text: str) -> None:
    try:
        running(job).update(phase=text[:200])
    except Exception:  # the phase is a courtesy; the save goes on
        log.warning("job %s: could not write its phase", job.pk, exc_info=True)


def kept_results_sweep() -> list[int]:
    """Forget kept results whose job no longer waits for them (finished, or gone)."""
    root = kept_root()
    if not root.is_dir():
        return []
    ids = {int(p.stem[4:]) for p in root.glob("job-*.json") if p.stem[4:].isdigit()}
    ids |= {int(p.stem[4:]) for p in root.glob("job-*.zip") if p.stem[4:].isdigit()}
    active = set(
        Job.objects.filter(
            pk__in=ids, status__in=(Job.Status.QUEUED, Job.Status.RUNNING)
        ).values_list("pk", flat=True)
    )
    gone = sorted(ids - active)
    for job_id in gone:
        kept_forget(job_id)
    return gone
