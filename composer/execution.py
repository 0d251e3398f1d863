"""Running one job inside a worker: claim, translate rows into plain objects, call the
engine, report progress, store the result, and end in exactly one final state."""

import logging
import tempfile
from pathlib import Path

from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from composer.device import pick_device
from composer.dispatch import job_send, job_turn_for_owner, jobs_maintain
from composer.lifecycle import job_claim_next, job_finish, job_release, time_limit_message
from composer.models import Job
from composer.progress import JobMonitor, WriteRefused, db_retry, refused_as
from composer.worker_health import health_beat, job_decline

log = logging.getLogger(__name__)
Status = Job.Status
RELEASED = "released"  # the worker is stopping: the job goes back to the queue


def job_execute(sent_for: int | None, *, task_id: str = "") -> str | None:
    """Claim the next queued job and run it; its final status (None: nothing claimable)."""
    jobs_maintain()
    problem = db_retry(health_beat)
    if problem:  # too little disk or memory: the job waits for another worker
        job_decline(sent_for, problem)
        return None
    device = pick_device()
    job = job_claim_next(device=device, task_id=task_id)
    if job is None:
        log.info("message for job %s: no queued job may run now; dropped", sent_for)
        return None
    log.info("job %s: started (message sent for job %s)", job.pk, sent_for)
    work_root = Path(settings.COMPOSER_WORK_DIR) / "jobs"
    work_root.mkdir(parents=True, exist_ok=True)
    stored = None
    try:
        with (
            JobMonitor(job) as monitor,
            tempfile.TemporaryDirectory(dir=work_root, prefix=f"job-{job.pk}-") as tmp,
        ):
            status, fields = _outcome(job, monitor, device, Path(tmp))
            if status == RELEASED:
                return _release(job, monitor)
            stored = fields.get("result_file")
            try:
                with refused_as("result"):
                    monitor.flush()
                    finished = db_retry(lambda: job_finish(job, status, **fields))
            except WriteRefused as exc:  # failed, not left running for the reaper to rerun
                log.exception("job %s: the database refused its outcome", job.pk)
                status, error = Status.FAILED, str(exc)
                finished = db_retry(lambda: job_finish(job, status, error=error))
            if monitor.lost or not finished:
                log.warning("job %s: taken away from this worker; its outcome is dropped", job.pk)
                status = None
    except SoftTimeLimitExceeded:
        # Past the limit outside the engine's run (setting up, finishing): failed once, not
        # left running for the dead-worker check to queue again.
        error = time_limit_message(settings.CELERY_TASK_SOFT_TIME_LIMIT)
        status = (
            Status.FAILED if db_retry(lambda: job_finish(job, Status.FAILED, error=error)) else None
        )
    if status != Status.SUCCEEDED and stored and not result_named(job, stored):
        from composer.results import result_delete

        result_delete(stored)
    log.info("job %s: %s", job.pk, status)
    job_turn_for_owner(job.owner_id)
    return status


def result_named(job: Job, name: str) -> bool:
    """Whether the job's row names the stored result `name` (then it ended, or ends, with
    it: see lifecycle.job_recover), so it must stay."""
    return db_retry(lambda: Job.objects.filter(pk=job.pk, result_file=name).exists())


def _release(job: Job, monitor: JobMonitor) -> str | None:
    """The worker is stopping (a restart, a deploy) and the search stopped at a step: the
    job goes back to the queue with its checkpoint, for the next worker to resume."""
    checkpoint = monitor.checkpoint.to_json() if monitor.checkpoint is not None else None
    status = db_retry(lambda: job_release(job, checkpoint))
    if status == Status.QUEUED:
        job_send(job.pk)  # no worker of this one's takes it: it is stopping
    log.info("job %s: the worker is stopping; the job is %s", job.pk, status or "taken away")
    return status


def _outcome(job: Job, monitor: JobMonitor, device: str, tmp: Path) -> tuple[str, dict]:
    from composer.engine.lorahub import Cancelled
    from composer.inputs import inputs_named, inputs_scratch
    from composer.results import job_run_engine

    try:
        return Status.SUCCEEDED, job_run_engine(job, monitor, device, tmp)
    except Cancelled:
        if monitor.stopping:  # not the user's cancel: the worker's stop
            return RELEASED, {}
        return Status.CANCELLED, {"error": ""}
    except WriteRefused as exc:
        return Status.FAILED, {"error": str(exc)}
    except SoftTimeLimitExceeded:
        return Status.FAILED, {"error": time_limit_message(settings.CELERY_TASK_SOFT_TIME_LIMIT)}
    except ValueError as exc:  # the engine's own errors carry a message meant for the user
        return Status.FAILED, {"error": inputs_named(str(exc), job, inputs_scratch(tmp))}
    except Exception as exc:
        log.exception("job %s failed", job.pk)
        message = inputs_named(f"{type(exc).__name__}: {exc}", job, inputs_scratch(tmp))
        return Status.FAILED, {"error": f"Internal error ({message})."}
