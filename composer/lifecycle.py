"""State changes of a job: enqueue, claim, recover from a dead worker, cancel, finish.

Every transition is a conditional UPDATE on the status (and, while running, on the
attempt number), so two processes racing for the same job cannot both win:
- a job is claimed once (QUEUED -> RUNNING); a redelivered message finds it taken;
- a RUNNING job whose worker died goes back to QUEUED (while attempts are left) or
  to FAILED with a reason the user can read; never stays "running" forever;
- a worker that lost its job (recovered by someone else) can no longer write to it.
"""

import logging
import os
import socket
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from composer.models import Job

log = logging.getLogger(__name__)
Status = Job.Status


def job_enqueue(job: Job) -> None:
    """Send the job's Celery message once the surrounding transaction has committed."""
    transaction.on_commit(lambda: _send(job.pk))


def _send(job_id: int) -> None:
    from composer.tasks import run_job

    try:
        result = run_job.apply_async((job_id,), retry=True, retry_policy={"max_retries": 3})
    except Exception as exc:  # the broker is unreachable: say so instead of a silent queue
        log.exception("could not enqueue job %s", job_id)
        Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
            status=Status.FAILED,
            error=f"The job queue could not be reached ({type(exc).__name__}); "
            "please try again later.",
            finished_at=timezone.now(),
        )
        return
    Job.objects.filter(pk=job_id).update(task_id=result.id)


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def holder_is_dead(job: Job, now=None) -> bool:
    """Whether the worker that holds a RUNNING job is gone.

    A stale heartbeat means dead wherever the worker ran; on the same host a vanished
    pid says so at once (a killed worker child, a worker restarted on this machine).
    """
    now = now or timezone.now()
    stale = timedelta(seconds=settings.COMPOSER_HEARTBEAT_STALE_SECONDS)
    if job.heartbeat_at is None or job.heartbeat_at < now - stale:
        return True
    return (
        job.worker_host == socket.gethostname()
        and job.worker_pid is not None
        and not pid_alive(job.worker_pid)
    )


def job_recover(job: Job) -> str | None:
    """Take a RUNNING job away from a dead worker: re-queue it or fail it.

    Returns the new status, or None when the job was not running or its worker is alive
    (or another process recovered it first).
    """
    now = timezone.now()
    if job.status != Status.RUNNING or not holder_is_dead(job, now):
        return None
    held = Job.objects.filter(
        pk=job.pk, status=Status.RUNNING, attempts=job.attempts, worker_pid=job.worker_pid
    )
    where = f"{job.worker_host or 'unknown host'}"
    max_attempts = settings.COMPOSER_JOB_MAX_ATTEMPTS
    if job.cancel_requested:
        changed = held.update(
            status=Status.CANCELLED,
            finished_at=now,
            error="Cancelled (the worker stopped before it could confirm).",
        )
        return Status.CANCELLED if changed else None
    if job.attempts < max_attempts:
        note = (
            f"{now:%Y-%m-%d %H:%M:%S} UTC: the worker on {where} stopped during attempt "
            f"{job.attempts} of {max_attempts}; the job was queued again."
        )
        changed = held.update(status=Status.QUEUED, notes=[*job.notes, note])
        return Status.QUEUED if changed else None
    error = (
        f"The worker running this job stopped unexpectedly (on {where}, attempt "
        f"{job.attempts} of {max_attempts}), for example because it ran out of memory or "
        "was restarted. The job was not retried again; you can launch it anew."
    )
    changed = held.update(status=Status.FAILED, finished_at=now, error=error)
    return Status.FAILED if changed else None


def jobs_reap(queryset=None) -> dict[int, str]:
    """Recover every RUNNING job whose worker is gone; re-queued jobs are sent again."""
    queryset = Job.objects.filter(status=Status.RUNNING) if queryset is None else queryset
    outcome = {}
    for job in queryset.filter(status=Status.RUNNING):
        status = job_recover(job)
        if status is None:
            continue
        outcome[job.pk] = status
        log.warning("job %s: worker gone, now %s", job.pk, status)
        if status == Status.QUEUED:
            job_enqueue(job)
    return outcome


def job_claim(job_id: int, *, device: str, task_id: str = "") -> Job | None:
    """Make this worker process the job's only runner, or return None.

    A message for a job that is already running elsewhere, finished or cancelled is
    dropped. A redelivered message whose runner died first recovers the job (re-queue
    within the attempt limit, or fail) and then claims it like a queued one.
    """
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return None
    if job.status == Status.RUNNING:
        job_recover(job)
    now = timezone.now()
    claimed = Job.objects.filter(pk=job_id, status=Status.QUEUED).update(
        status=Status.RUNNING,
        attempts=F("attempts") + 1,
        started_at=now,
        heartbeat_at=now,
        worker_host=socket.gethostname(),
        worker_pid=os.getpid(),
        device=device,
        task_id=task_id,
        step=0,
        best_loss=None,
        history=[],
        weights=[],
        best_weights=[],
        error="",
    )
    return Job.objects.get(pk=job_id) if claimed else None


def job_request_cancel(job: Job) -> str:
    """Cancel a queued job at once; ask a running one to stop at its next step."""
    now = timezone.now()
    if Job.objects.filter(pk=job.pk, status=Status.QUEUED).update(
        status=Status.CANCELLED, cancel_requested=True, finished_at=now
    ):
        return Status.CANCELLED
    Job.objects.filter(pk=job.pk, status=Status.RUNNING).update(cancel_requested=True)
    job.refresh_from_db()
    if job.status == Status.RUNNING:
        job_recover(job)  # a dead worker cannot confirm: settle it here
        job.refresh_from_db()
    return job.status


def running(job: Job):
    """The rows of `job` as long as this attempt still holds it."""
    return Job.objects.filter(
        pk=job.pk, status=Status.RUNNING, attempts=job.attempts, worker_pid=job.worker_pid
    )


def job_finish(job: Job, status: str, **fields) -> bool:
    """End this attempt; False when the job was taken away from it meanwhile."""
    return bool(running(job).update(status=status, finished_at=timezone.now(), **fields))
